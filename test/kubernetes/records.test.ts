/**
 * What the relay forwards in Kubernetes mode: kubelet error text inside a 200
 * body, --split-streams (and its fallback), filters on the message,
 * --exclude-pod and --container, and the JSON envelope for awkward messages
 * (quotes, backslashes, control characters, emoji, invalid UTF-8).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { addPods, cleanup, kubeEnv, parseRecord, startKubeRelay, startRewriteProxy, track, waitForStreams, warnings } from "./helpers.ts";

afterEach(cleanup);

function lines(prefix: string, from: number, to: number): string[] {
  const out: string[] = [];
  for (let i = from; i <= to; i++) out.push(`${prefix}-${i}`);
  return out;
}

describe("kubernetes: records", () => {
  test("kubelet error text inside a 200 body: not forwarded, a warning, the following lines still forwarded", async () => {
    const env = await kubeEnv();
    const { kube, ns } = env;
    kube.addPod({ namespace: ns, name: "kl", containers: [{ name: "app" }] });
    const relay = startKubeRelay(env);
    await waitForStreams(kube, 1);
    kube.appendLog(ns, "kl", "app", lines("kl-app", 1, 10));
    await env.records.waitComplete(new Map([["kl-app", 10]]));
    const text = "unable to retrieve container logs for containerd://0123456789abcdef: rpc error: code = Unknown desc = failed to read log file";
    expect(kube.injectLogError(ns, "kl", "app", `${text}\n`)).toBe(1);
    await relay.stderr.waitFor("unable to retrieve container logs", 20_000);
    await waitForStreams(kube, 1);
    kube.appendLog(ns, "kl", "app", lines("kl-app", 11, 20));
    await env.records.expectExactly(new Map([["kl-app", 20]]), 20_000);
    expect(env.records.update().some((r) => r.message.includes("unable to retrieve"))).toBe(false);
    const warned = warnings(relay).filter((l) => l.includes("unable to retrieve container logs"));
    expect(warned.length).toBe(1);
    expect(warned[0]).toContain("kl/app");
  }, 60_000);

  test("--split-streams where the server honours stream=: records labelled stdout and stderr", async () => {
    const env = await kubeEnv({ streamGate: "on" });
    const { kube, ns } = env;
    addPods(kube, ns, "sp", 2);
    const relay = startKubeRelay(env, ["--split-streams"]);
    await waitForStreams(kube, 4);
    const gens = ["sp-1", "sp-2"].map((p) => kube.startGenerator(ns, p, "app", { linesPerSecond: 200, stderrEvery: 3 }));
    await kube.waitFor(() => gens.every((g) => g.seq >= 300), { timeoutMs: 20_000, message: "lines on both streams" });
    // A reconnect of both streams in the middle.
    kube.closeAllLogStreams();
    await kube.waitFor(() => gens.every((g) => g.seq >= 450), { timeoutMs: 20_000, message: "more lines" });
    kube.stopAllGenerators();
    const expected = new Map(gens.map((g, i) => [`sp-${i + 1}-app`, g.seq]));
    await env.records.waitComplete(expected, 30_000);
    const problems: string[] = [];
    const seen = new Map<string, number[]>();
    for (const r of env.records.update()) {
      const m = /^(.*)-(\d+)$/.exec(r.message);
      const seq = Number(m?.[2]);
      const want = seq % 3 === 0 ? "stderr" : "stdout";
      if (r.stream !== want) problems.push(`${r.message} labelled ${r.stream}`);
      const key = `${m?.[1]}/${r.stream}`;
      const list = seen.get(key) ?? [];
      if (list.length > 0 && (list[list.length - 1] ?? 0) >= seq) problems.push(`${key}: ${seq} after ${list[list.length - 1]}`);
      list.push(seq);
      seen.set(key, list);
    }
    expect(problems.slice(0, 10)).toEqual([]);
    for (const [prefix, n] of expected) {
      const all = [...(seen.get(`${prefix}/stdout`) ?? []), ...(seen.get(`${prefix}/stderr`) ?? [])].sort((a, b) => a - b);
      expect(all).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    }
    const logRequests = kube.requests.filter((r) => r.endpoint === "log");
    expect(new Set(logRequests.map((r) => r.query.get("stream")))).toEqual(new Set(["Stdout", "Stderr"]));
    expect(warnings(relay)).toEqual([]);
  }, 60_000);

  test("--split-streams where the gate is off (422 may not be specified): one combined stream, one warning", async () => {
    const env = await kubeEnv({ streamGate: "off-reject" });
    const { kube, ns } = env;
    addPods(kube, ns, "nosplit", 3);
    const relay = startKubeRelay(env, ["--split-streams"]);
    await waitForStreams(kube, 3);
    const gens = ["nosplit-1", "nosplit-2", "nosplit-3"].map((p) => kube.startGenerator(ns, p, "app", { linesPerSecond: 100, stderrEvery: 4 }));
    await kube.waitFor(() => gens.every((g) => g.seq >= 100), { timeoutMs: 20_000, message: "lines" });
    kube.stopAllGenerators();
    await env.records.expectExactly(new Map(gens.map((g, i) => [`nosplit-${i + 1}-app`, g.seq])), 20_000);
    expect(new Set(env.records.update().map((r) => r.stream))).toEqual(new Set(["output"]));
    const warned = warnings(relay);
    expect(warned.length).toBe(1);
    expect(warned[0]).toContain("stream");
    // Without --split-streams no request carries stream= at all.
    const later = kube.requests.filter((r) => r.endpoint === "log" && r.status === 200);
    expect(later.every((r) => r.query.get("stream") === null)).toBe(true);
  }, 60_000);

  test("default (no --split-streams) on a server with the gate on: one request per container, labelled output", async () => {
    const env = await kubeEnv({ streamGate: "on" });
    const { kube, ns } = env;
    kube.addPod({ namespace: ns, name: "def", containers: [{ name: "app" }] });
    startKubeRelay(env);
    await waitForStreams(kube, 1);
    kube.appendLog(ns, "def", "app", lines("def-app", 1, 3));
    kube.appendLog(ns, "def", "app", lines("def-app", 4, 6), { stream: "stderr" });
    await env.records.expectExactly(new Map([["def-app", 6]]));
    expect(env.records.update().every((r) => r.stream === "output")).toBe(true);
    expect(kube.requests.filter((r) => r.endpoint === "log").every((r) => r.query.get("stream") === null)).toBe(true);
  }, 30_000);

  test("--include/--exclude match the message (not the timestamp); --exclude-pod skips pods; --container picks one container", async () => {
    const env = await kubeEnv();
    const { kube, ns } = env;
    kube.addPod({ namespace: ns, name: "api-1", containers: [{ name: "app" }, { name: "sidecar" }] });
    kube.addPod({ namespace: ns, name: "api-2", containers: [{ name: "app" }] });
    kube.addPod({ namespace: ns, name: "skip-me-1", containers: [{ name: "app" }] });
    startKubeRelay(env, ["--include", "^keep", "--exclude", "drop", "--exclude", "^20[0-9][0-9]-", "--exclude-pod", "^skip-", "--exclude-pod", "^nothing$", "--container", "app"]);
    await waitForStreams(kube, 2);
    const batch = ["keep-1", "other-2", "keep-drop-3", "keep-4", " keep-5", "keep-6"];
    for (const pod of ["api-1", "api-2", "skip-me-1"]) {
      kube.appendLog(ns, pod, "app", batch.map((l) => `${pod}-${l}`));
      kube.appendLog(ns, pod, "app", batch);
    }
    kube.appendLog(ns, "api-1", "sidecar", ["keep-sidecar-1"]);
    // End markers: lines are in order per stream, so both pods' markers mean all arrived.
    kube.appendLog(ns, "api-1", "app", ["keep-end-1"]);
    kube.appendLog(ns, "api-2", "app", ["keep-end-2"]);
    await env.records.waitLast(new Map([["keep-end", 2]]), 20_000);
    await env.records.waitLast(new Map([["keep-end", 1]]), 20_000);
    const got = env.records.update().map((r) => `${r.pod}/${r.container}: ${r.message}`);
    expect(got.sort()).toEqual(
      [
        "api-1/app: keep-1",
        "api-1/app: keep-4",
        "api-1/app: keep-6",
        "api-1/app: keep-end-1",
        "api-2/app: keep-1",
        "api-2/app: keep-4",
        "api-2/app: keep-6",
        "api-2/app: keep-end-2",
      ].sort(),
    );
    expect(kube.requests.some((r) => r.endpoint === "log" && r.path.includes("/pods/skip-me-1/"))).toBe(false);
    expect(kube.requests.some((r) => r.endpoint === "log" && r.query.get("container") === "sidecar")).toBe(false);
  }, 60_000);

  test("the envelope: quotes, backslashes, control characters, emoji and invalid UTF-8 arrive as valid JSON with the exact message", async () => {
    // Plain HTTP behind a byte-rewriting proxy: the fake writes strings as UTF-8, the proxy turns
    // each "\u00ff" (C3 BF) into the invalid bytes FF FE on the way to the relay.
    const env = await kubeEnv({ tls: false });
    const { kube, ns } = env;
    const proxy = track(await startRewriteProxy(kube.port, Buffer.from("\u00ff"), Buffer.from([0xff, 0xfe])));
    writeFileSync(env.kubeconfig, readFileSync(env.kubeconfig, "utf8").replace(kube.url, `http://127.0.0.1:${proxy.port}`));
    kube.addPod({ namespace: ns, name: "esc", containers: [{ name: "app" }] });
    startKubeRelay(env);
    await waitForStreams(kube, 1);
    const control = Array.from({ length: 32 }, (_, i) => String.fromCharCode(i))
      .filter((c) => c !== "\n")
      .join("");
    const messages = [
      'say "hello"',
      "back\\slash \\n \\u0041 \\",
      `ctl:${control}:\u007f`,
      "tab\there\rcarriage-return-inside",
      "emoji 😀👍🏽 and ünïcödé 中文",
      '{"json":"inside","n":[1,2]}',
      "</script><!-- -->",
      "",
      "   leading and trailing spaces   ",
      "\u2028line-separator\u2029paragraph",
      "bad \u00ff byte",
      "\u00ff\u00ff at start, end \u00ff",
    ];
    kube.appendLog(ns, "esc", "app", messages);
    kube.appendLog(ns, "esc", "app", ["esc-end-1"]);
    await env.records.waitLast(new Map([["esc-end", 1]]), 20_000);
    const lines = env.rx.lines();
    // Every line is one JSON object (parseRecord checks the field order).
    const got = lines.map((l) => parseRecord(l).message);
    const want = [...messages.map((m) => m.replaceAll("\u00ff", "\ufffd\ufffd")), "esc-end-1"];
    expect(got).toEqual(want);
    // Control characters are escaped: no raw byte below 0x20 inside a record.
    for (const l of lines) expect(/[\u0000-\u001f]/.test(l)).toBe(false);
    // The timestamp exactly as the API sent it: RFC3339 with 9 fractional digits, strictly increasing here.
    const stamps = lines.map((l) => parseRecord(l).timestamp);
    for (const t of stamps) expect(t).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    expect([...stamps].sort()).toEqual(stamps);
    expect(new Set(stamps).size).toBe(stamps.length);
  }, 30_000);
});
