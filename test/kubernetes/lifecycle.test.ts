/**
 * Pod and container life cycles in Kubernetes mode: init containers while the
 * pod is Pending, deleted pods, watch expiry (410 -> relist), and where the
 * first connect starts (--tail-lines, --since-seconds, pods created later).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { addPods, cleanup, expectInstances, expectSeqs, kubeEnv, startKubeRelay, waitForStreams } from "./helpers.ts";

afterEach(cleanup);

function lines(prefix: string, from: number, to: number): string[] {
  const out: string[] = [];
  for (let i = from; i <= to; i++) out.push(`${prefix}-${i}`);
  return out;
}

describe("kubernetes: life cycle", () => {
  test("an init container runs while the pod is Pending, then two regular containers: every line, right container label", async () => {
    const env = await kubeEnv();
    const { kube, ns } = env;
    kube.addPod({
      namespace: ns,
      name: "web",
      initContainers: [{ name: "migrate", state: "running" }],
      containers: [{ name: "app", state: "waiting" }, { name: "proxy", state: "waiting" }],
    });
    expect(kube.getPod(ns, "web")?.status.phase).toBe("Pending");
    startKubeRelay(env);
    await waitForStreams(kube, 1, 20_000, { container: "migrate" });
    kube.appendLog(ns, "web", "migrate", lines("web-migrate", 1, 40));
    await env.records.waitComplete(new Map([["web-migrate", 40]]), 20_000, "the init container's lines");
    kube.appendLog(ns, "web", "migrate", lines("web-migrate", 41, 50));
    // The init container ends right after its last lines; then the regular containers start.
    kube.terminateContainer(ns, "web", "migrate");
    kube.startContainer(ns, "web", "app");
    kube.startContainer(ns, "web", "proxy");
    expect(kube.getPod(ns, "web")?.status.phase).toBe("Running");
    kube.appendLog(ns, "web", "app", lines("web-app", 1, 30));
    kube.appendLog(ns, "web", "proxy", lines("web-proxy", 1, 20));
    await env.records.expectExactly(
      new Map([
        ["web-migrate", 50],
        ["web-app", 30],
        ["web-proxy", 20],
      ]),
      20_000,
    );
    for (const r of env.records.update()) {
      expect(r.pod).toBe("web");
      expect(r.namespace).toBe(ns);
      expect(r.stream).toBe("output");
      expect(r.message.startsWith(`web-${r.container}-`)).toBe(true);
    }
  }, 60_000);

  test("a pod deleted right after its last lines: they arrive, and no retry storm follows", async () => {
    const env = await kubeEnv();
    const { kube, ns } = env;
    kube.addPod({ namespace: ns, name: "doomed", containers: [{ name: "app" }, { name: "side" }] });
    kube.addPod({ namespace: ns, name: "other", containers: [{ name: "app" }] });
    const relay = startKubeRelay(env);
    await waitForStreams(kube, 3);
    kube.appendLog(ns, "doomed", "app", lines("doomed-app", 1, 100));
    kube.appendLog(ns, "doomed", "side", lines("doomed-side", 1, 10));
    kube.deletePod(ns, "doomed");
    const deletedAt = Date.now();
    await env.records.waitComplete(
      new Map([
        ["doomed-app", 100],
        ["doomed-side", 10],
      ]),
      20_000,
      "the deleted pod's last lines",
    );
    // Let time pass the way the relay sees it: another pod's generator, ~2 s of lines.
    const gen = kube.startGenerator(ns, "other", "app", { linesPerSecond: 100 });
    await env.records.waitComplete(new Map([["other-app", 200]]), 20_000, "two seconds of another pod's lines");
    gen.stop();
    await env.records.expectExactly(
      new Map([
        ["doomed-app", 100],
        ["doomed-side", 10],
        ["other-app", gen.seq],
      ]),
    );
    const after = kube.requests.filter((r) => r.endpoint === "log" && r.path.includes("/pods/doomed/") && r.at >= deletedAt);
    // At most one last look per container (404), no loop.
    expect(after.length).toBeLessThanOrEqual(4);
    expect(kube.activeLogStreams({ pod: "doomed" })).toBe(0);
    expect(relay.proc.exitCode).toBeNull();
  }, 60_000);

  test("watch expiry: 410 -> relist; a pod added in the gap is streamed, one deleted stops, one restarted keeps every line", async () => {
    // No bookmarks: the relay's resourceVersion stays behind, so the re-watch gets 410 Expired.
    const env = await kubeEnv({ bookmarkIntervalMs: 0, namespaces: ["elsewhere"] });
    const { kube, ns } = env;
    addPods(kube, ns, "keep", 2);
    kube.addPod({ namespace: ns, name: "gone", containers: [{ name: "app" }] });
    startKubeRelay(env);
    await waitForStreams(kube, 3);
    await kube.waitFor(() => kube.activeWatches() === 1, { timeoutMs: 20_000, message: "the relay's watch" });
    kube.appendLog(ns, "keep-2", "app", lines("keep-2-app", 1, 3));
    await env.records.waitComplete(new Map([["keep-2-app", 3]]));
    const lists = kube.requestCount("list");
    // Changes the relay's watch does not see (another namespace) move the resourceVersion on.
    kube.addPod({ namespace: "elsewhere", name: "unrelated", containers: [{ name: "app" }] });
    kube.expireHistory({ closeWatches: true });
    // In the same tick, before the relay can watch again: a deletion, an addition, a restart.
    kube.deletePod(ns, "gone");
    kube.addPod({ namespace: ns, name: "fresh", containers: [{ name: "app" }] });
    kube.appendLog(ns, "fresh", "app", lines("fresh-app", 1, 25));
    kube.appendLog(ns, "keep-2", "app", lines("keep-2-app", 4, 5));
    kube.restartContainer(ns, "keep-2", "app");
    kube.appendLog(ns, "keep-2", "app", lines("keep-2-app", 6, 7));
    await kube.waitFor(() => kube.requestCount("list") > lists, { timeoutMs: 20_000, message: "a relist" });
    await env.records.waitComplete(new Map([["fresh-app", 25]]), 20_000, "the new pod's lines");
    kube.appendLog(ns, "keep-1", "app", lines("keep-1-app", 1, 5));
    kube.appendLog(ns, "fresh", "app", lines("fresh-app", 26, 30));
    kube.appendLog(ns, "keep-2", "app", lines("keep-2-app", 8, 9));
    await env.records.waitComplete(
      new Map([
        ["fresh-app", 30],
        ["keep-1-app", 5],
        ["keep-2-app", 9],
      ]),
      20_000,
    );
    const got = env.records.seqs();
    expectSeqs(
      got,
      new Map([
        ["fresh-app", 30],
        ["keep-1-app", 5],
      ]),
      true,
    );
    expectInstances(got.get("keep-2-app") ?? [], [5, 9]);
    await kube.waitFor(() => kube.activeWatches() === 1, { timeoutMs: 20_000, message: "the relay watching again" });
    expect(kube.activeLogStreams({ pod: "gone" })).toBe(0);
    const goneRequests = kube.requests.filter((r) => r.endpoint === "log" && r.path.includes("/pods/gone/")).length;
    expect(goneRequests).toBeLessThanOrEqual(3);
  }, 60_000);

  test("--tail-lines on first connect for pods that exist before the start; later pods from their first line", async () => {
    const env = await kubeEnv();
    const { kube, ns } = env;
    kube.addPod({ namespace: ns, name: "old", containers: [{ name: "app" }] });
    kube.appendLog(ns, "old", "app", lines("old-app", 1, 50));
    startKubeRelay(env, ["--tail-lines", "5"]);
    await waitForStreams(kube, 1);
    kube.addPod({ namespace: ns, name: "new", containers: [{ name: "app" }] });
    kube.appendLog(ns, "new", "app", lines("new-app", 1, 20));
    kube.appendLog(ns, "old", "app", lines("old-app", 51, 55));
    await env.records.waitLast(
      new Map([
        ["old-app", 55],
        ["new-app", 20],
      ]),
      20_000,
    );
    const got = env.records.seqs();
    expect(got.get("old-app")).toEqual([46, 47, 48, 49, 50, 51, 52, 53, 54, 55]);
    expect(got.get("new-app")).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    // A reconnect resumes exactly; it does not apply --tail-lines again.
    kube.closeAllLogStreams();
    await waitForStreams(kube, 2);
    kube.appendLog(ns, "old", "app", lines("old-app", 56, 57));
    await env.records.waitLast(new Map([["old-app", 57]]), 20_000);
    expect(env.records.seqs().get("old-app")).toEqual(Array.from({ length: 12 }, (_, i) => i + 46));
    const first = kube.requests.find((r) => r.endpoint === "log" && r.path.includes("/pods/old/"));
    expect(first?.query.get("tailLines")).toBe("5");
    const newFirst = kube.requests.find((r) => r.endpoint === "log" && r.path.includes("/pods/new/"));
    expect(newFirst?.query.get("tailLines")).toBeNull();
    expect(newFirst?.query.get("sinceSeconds")).toBeNull();
  }, 60_000);

  test("--tail-lines is not applied to containers that had ended before the start (a Job's history is not re-sent at every start); their --since-seconds window is", async () => {
    const env = await kubeEnv();
    const { kube, ns } = env;
    const longAgo = new Date(Date.now() - 600_000).toISOString().replace(/Z$/, "000000Z");
    for (const name of ["job-old", "job-just"]) kube.addPod({ namespace: ns, name, containers: [{ name: "app" }] });
    kube.appendLog(ns, "job-old", "app", lines("job-old-app", 1, 20), { timestamp: longAgo });
    kube.appendLog(ns, "job-just", "app", lines("job-just-app", 1, 3));
    kube.terminateContainer(ns, "job-old", "app", { exitCode: 0, reason: "Completed" });
    kube.terminateContainer(ns, "job-just", "app", { exitCode: 0, reason: "Completed" });
    kube.addPod({ namespace: ns, name: "live", containers: [{ name: "app" }] });
    kube.appendLog(ns, "live", "app", lines("live-app", 1, 20));
    startKubeRelay(env, ["--tail-lines", "5"]);
    await env.records.waitLast(new Map([["live-app", 20], ["job-just-app", 3]]), 20_000);
    // Both ended containers were read to their end (the requests returned), only the window of each.
    await kube.waitFor(() => kube.requests.filter((r) => r.endpoint === "log" && r.path.includes("/pods/job-")).length >= 2, { timeoutMs: 20_000, message: "the ended containers' requests" });
    kube.appendLog(ns, "live", "app", lines("live-app", 21, 21));
    await env.records.waitLast(new Map([["live-app", 21]]), 20_000);
    const got = env.records.seqs();
    expect(got.get("live-app")).toEqual([16, 17, 18, 19, 20, 21]);
    expect(got.get("job-just-app")).toEqual([1, 2, 3]);
    expect(got.get("job-old-app")).toBeUndefined();
    const oldReq = kube.requests.find((r) => r.endpoint === "log" && r.path.includes("/pods/job-old/"));
    expect(oldReq?.query.get("tailLines")).toBeNull();
    expect(oldReq?.query.get("sinceSeconds")).toBe("10");
  }, 60_000);

  test("--since-seconds on first connect for pods that exist before the start; later pods from their first line", async () => {
    const env = await kubeEnv();
    const { kube, ns } = env;
    kube.addPod({ namespace: ns, name: "old", containers: [{ name: "app" }] });
    const longAgo = new Date(Date.now() - 120_000).toISOString().replace(/Z$/, "000000Z");
    kube.appendLog(ns, "old", "app", lines("old-app", 1, 10), { timestamp: longAgo });
    kube.appendLog(ns, "old", "app", lines("old-app", 11, 15));
    startKubeRelay(env, ["--since-seconds", "30"]);
    await waitForStreams(kube, 1);
    kube.addPod({ namespace: ns, name: "new", containers: [{ name: "app" }] });
    kube.appendLog(ns, "new", "app", lines("new-app", 1, 10), { timestamp: longAgo });
    kube.appendLog(ns, "new", "app", lines("new-app", 11, 12));
    kube.appendLog(ns, "old", "app", lines("old-app", 16, 18));
    await env.records.waitLast(
      new Map([
        ["old-app", 18],
        ["new-app", 12],
      ]),
      20_000,
    );
    const got = env.records.seqs();
    expect(got.get("old-app")).toEqual([11, 12, 13, 14, 15, 16, 17, 18]);
    expect(got.get("new-app")).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    const first = kube.requests.find((r) => r.endpoint === "log" && r.path.includes("/pods/old/"));
    expect(first?.query.get("sinceSeconds")).toBe("30");
  }, 60_000);
});
