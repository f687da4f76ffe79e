/**
 * Exact resume in Kubernetes mode: streams closed under load, runs of identical
 * timestamps across a reconnect, container restarts, and slot rotation under
 * --max-log-requests. Every check is per container: seqs 1..N, once, in order.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Generator } from "../fixtures/fake-kube/index.ts";
import { addPods, cleanup, expectInstances, kubeEnv, startKubeRelay, waitForStreams, waitUntil } from "./helpers.ts";

afterEach(cleanup);

function expectedFrom(gens: Map<string, Generator>): Map<string, number> {
  const m = new Map<string, number>();
  for (const [prefix, g] of gens) m.set(prefix, g.seq);
  return m;
}

describe("kubernetes: exact resume", () => {
  test("streams closed every 2 s while 20 pods log 200 lines/s: zero lost, zero duplicated", async () => {
    const env = await kubeEnv();
    const { kube, ns } = env;
    const pods = addPods(kube, ns, "load", 20);
    const relay = startKubeRelay(env);
    await waitForStreams(kube, 20);
    const gens = new Map<string, Generator>();
    for (const p of pods) gens.set(`${p}-app`, kube.startGenerator(ns, p, "app", { linesPerSecond: 200 }));
    let closes = 0;
    const closer = setInterval(() => {
      kube.closeAllLogStreams();
      closes++;
    }, 2000);
    try {
      // ~8 s of load with a close every 2 s; the generator's own count is the clock.
      await waitUntil(() => closes >= 4, 30_000, "four rounds of closed streams", 100);
    } finally {
      clearInterval(closer);
    }
    kube.stopAllGenerators();
    const expected = expectedFrom(gens);
    for (const n of expected.values()) expect(n).toBeGreaterThan(500);
    await env.records.expectExactly(expected, 40_000);
    expect(relay.proc.exitCode).toBeNull();
  }, 90_000);

  test("300 identical timestamps across a reconnect: each line exactly once", async () => {
    const env = await kubeEnv();
    const { kube, ns } = env;
    kube.addPod({ namespace: ns, name: "same", containers: [{ name: "app" }] });
    startKubeRelay(env);
    await waitForStreams(kube, 1);
    const ts = new Date(Date.now()).toISOString().replace(/\.\d+Z$/, ".123456789Z");
    const first = Array.from({ length: 150 }, (_, i) => `same-app-${i + 1}`);
    const second = Array.from({ length: 150 }, (_, i) => `same-app-${i + 151}`);
    kube.appendLog(ns, "same", "app", first, { timestamp: ts });
    await env.records.waitComplete(new Map([["same-app", 150]]), 20_000, "the first 150 tied lines");
    // The stream ends in the middle of the run of identical timestamps.
    kube.closeAllLogStreams();
    kube.appendLog(ns, "same", "app", second, { timestamp: ts });
    await env.records.waitComplete(new Map([["same-app", 300]]), 20_000, "the second 150 tied lines");
    // Close again right after, then lines with later (ordinary) timestamps.
    kube.closeAllLogStreams();
    kube.appendLog(ns, "same", "app", Array.from({ length: 50 }, (_, i) => `same-app-${i + 301}`));
    await env.records.waitComplete(new Map([["same-app", 350]]), 20_000, "the later lines");
    kube.closeAllLogStreams();
    await waitForStreams(kube, 1);
    kube.appendLog(ns, "same", "app", ["same-app-351"]);
    await env.records.expectExactly(new Map([["same-app", 351]]), 20_000);
    const tied = env.records.of("same").filter((r) => r.timestamp === ts);
    expect(tied.length).toBe(300);
  }, 60_000);

  test("a tie run split over a reconnect while the run is still growing", async () => {
    const env = await kubeEnv();
    const { kube, ns } = env;
    kube.addPod({ namespace: ns, name: "tie", containers: [{ name: "app" }] });
    startKubeRelay(env);
    await waitForStreams(kube, 1);
    const ts = new Date(Date.now()).toISOString().replace(/\.\d+Z$/, ".000000000Z");
    let seq = 0;
    const batch = (n: number): string[] => Array.from({ length: n }, () => `tie-app-${++seq}`);
    // Several reconnects inside the same tie run, each after a different number of tied lines.
    for (const n of [1, 7, 100, 3]) {
      kube.appendLog(ns, "tie", "app", batch(n), { timestamp: ts });
      await env.records.waitComplete(new Map([["tie-app", seq]]), 20_000, `the tied lines up to ${seq}`);
      kube.closeAllLogStreams();
      await waitForStreams(kube, 1);
    }
    kube.appendLog(ns, "tie", "app", batch(5));
    await env.records.expectExactly(new Map([["tie-app", seq]]), 20_000);
  }, 60_000);

  test("a container restarting 3 times while logging: every line of every instance once, in order", async () => {
    const env = await kubeEnv();
    const { kube, ns } = env;
    kube.addPod({ namespace: ns, name: "crashy", containers: [{ name: "app" }, { name: "side" }] });
    startKubeRelay(env);
    await waitForStreams(kube, 2);
    const gen = kube.startGenerator(ns, "crashy", "app", { linesPerSecond: 300 });
    const side = kube.startGenerator(ns, "crashy", "side", { linesPerSecond: 50 });
    const ids = new Set<string>();
    ids.add(kube.containerId(ns, "crashy", "app") ?? "");
    // The last seq of each instance: the generator writes in timer ticks, the restart is synchronous.
    const ends: number[] = [];
    for (let i = 0; i < 3; i++) {
      const before = gen.seq;
      await kube.waitFor(() => gen.seq >= before + 150, { timeoutMs: 20_000, message: "the generator to write more lines" });
      ends.push(gen.seq);
      kube.restartContainer(ns, "crashy", "app");
      ids.add(kube.containerId(ns, "crashy", "app") ?? "");
    }
    const before = gen.seq;
    await kube.waitFor(() => gen.seq >= before + 150, { timeoutMs: 20_000, message: "lines of the last instance" });
    gen.stop();
    side.stop();
    ends.push(gen.seq);
    expect(ids.size).toBe(4);
    // The generator's seq continues across instances: the receiver must hold 1..N exactly,
    // in order within each instance.
    await env.records.waitComplete(
      new Map([
        ["crashy-app", gen.seq],
        ["crashy-side", side.seq],
      ]),
      30_000,
    );
    const got = env.records.seqs();
    expectInstances(got.get("crashy-app") ?? [], ends);
    expectInstances(got.get("crashy-side") ?? [], [side.seq]);
    expect(kube.getPod(ns, "crashy")?.status.containerStatuses?.find((c) => c.name === "app")?.restartCount).toBe(3);
  }, 60_000);

  test("a restart while the relay's stream is cut: the old instance's tail comes with previous=true", async () => {
    const env = await kubeEnv();
    const { kube, ns } = env;
    kube.addPod({ namespace: ns, name: "prev", containers: [{ name: "app" }] });
    startKubeRelay(env);
    await waitForStreams(kube, 1);
    kube.appendLog(ns, "prev", "app", ["prev-app-1", "prev-app-2"]);
    await env.records.waitComplete(new Map([["prev-app", 2]]));
    // The relay's next request for this pod hangs (no headers) until closeAllLogStreams.
    kube.setLogFault(ns, "prev", "app", { type: "hang" }, { times: 1 });
    kube.resetAllLogStreams();
    await kube.waitFor(() => kube.requests.filter((r) => r.endpoint === "log" && r.status === 0).length >= 1, {
      timeoutMs: 20_000,
      message: "the relay's reconnect (held by the fake)",
    });
    // Meanwhile the container writes and restarts: lines 3..5 are only in the previous instance.
    kube.appendLog(ns, "prev", "app", ["prev-app-3", "prev-app-4", "prev-app-5"]);
    kube.restartContainer(ns, "prev", "app");
    kube.appendLog(ns, "prev", "app", ["prev-app-6"]);
    kube.closeAllLogStreams();
    await env.records.waitComplete(new Map([["prev-app", 6]]), 20_000);
    expectInstances(env.records.seqs().get("prev-app") ?? [], [5, 6]);
    expect(kube.requests.some((r) => r.endpoint === "log" && r.query.get("previous") === "true")).toBe(true);
  }, 60_000);

  test("a restart the relay learns of late: the new instance's log was read as the old one's; the old tail still arrives, nothing twice", async () => {
    const env = await kubeEnv();
    const { kube, ns } = env;
    // The relay's token may list but (for now) not watch: it cannot learn of the restart.
    const grant = { token: "late-watch", user: `system:serviceaccount:${ns}:relay`, namespaces: [ns] };
    kube.addToken({ ...grant, allow: ["list", "get", "log"] });
    kube.writeKubeconfig(env.kubeconfig, { namespace: ns, token: grant.token });
    kube.addPod({ namespace: ns, name: "late", containers: [{ name: "app" }] });
    startKubeRelay(env);
    await waitForStreams(kube, 1);
    kube.appendLog(ns, "late", "app", ["late-app-1", "late-app-2"]);
    await env.records.waitComplete(new Map([["late-app", 2]]));
    kube.setLogFault(ns, "late", "app", { type: "hang" }, { times: 1 });
    kube.resetAllLogStreams();
    await kube.waitFor(() => kube.requests.some((r) => r.endpoint === "log" && r.status === 0), { timeoutMs: 20_000, message: "the relay's held reconnect" });
    // Lines 3..5 only in the old instance; then the restart; line 6 in the new one.
    kube.appendLog(ns, "late", "app", ["late-app-3", "late-app-4", "late-app-5"]);
    kube.restartContainer(ns, "late", "app");
    kube.appendLog(ns, "late", "app", ["late-app-6"]);
    // The held request ends empty; the relay's next request (for the container) gets the new instance.
    kube.closeAllLogStreams();
    await env.records.waitComplete(new Map([["late-app", 1]]));
    await env.records.waitLast(new Map([["late-app", 6]]), 20_000, "the new instance's line under the old cursor");
    // Now the relay may watch: it sees the restart and finds the old instance's unread tail.
    kube.addToken({ ...grant, allow: ["list", "watch", "get", "log"] });
    await env.records.waitComplete(new Map([["late-app", 6]]), 30_000);
    await waitForStreams(kube, 1);
    kube.appendLog(ns, "late", "app", ["late-app-7"]);
    await env.records.waitComplete(new Map([["late-app", 7]]), 20_000);
    expectInstances(env.records.seqs().get("late-app") ?? [], [5, 7]);
  }, 60_000);
});
