/**
 * SIGTERM / SIGINT with lines queued behind an absent sink: the sources stop,
 * the flush waits for the sink, and once it accepts (within --shutdown-timeout)
 * every queued line is written exactly once and the relay exits 0; in
 * Kubernetes mode the state file then holds the cursors of what was written.
 * A second signal exits at once with 130 even while the flush is still
 * waiting for a sink that is not there.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startFakeVigild } from "../fixtures/fake-vigild.ts";
import { startTcpReceiver, unusedPort } from "../fixtures/tcp-receiver.ts";
import { cleanup, metric, startRelay, track, waitUntil, type Relay } from "./helpers.ts";
import { addPods, kubeEnv, Records, waitForStreams } from "../kubernetes/helpers.ts";

afterEach(cleanup);

/** Waits until the relay has read `n` lines (polling /metrics: there is no event for it). */
async function waitRead(relay: Relay, n: number): Promise<void> {
  let last = 0;
  await waitUntil(
    async () => (last = await metric(relay, "lines_read_total")) >= n,
    20_000,
    () => `${n} lines read (have ${last})`,
    25,
  );
}

describe("shutdown with lines queued behind an absent sink", () => {
  test("SIGTERM, then the sink comes up within --shutdown-timeout: every queued line written once, in order; exit 0", async () => {
    const N = 500;
    const make = (i: number) => `held-${i}`;
    const fv = track(startFakeVigild({ handler: (req) => (req.index === 0 ? { steps: [{ lines: N, make }, { hang: true }] } : { steps: [{ hang: true }] }) }));
    const port = unusedPort();
    const relay = startRelay(["--source-url", fv.url, "--tcp-sink-port", String(port), "--shutdown-timeout", "20000"]);
    await relay.stderr.waitFor("cannot connect to the sink");
    await waitRead(relay, N);
    expect(await metric(relay, "lines_forwarded_total")).toBe(0);
    // All of it waits in the memory queue, and /metrics says so.
    const queued = Array.from({ length: N }, (_, i) => make(i).length + 1).reduce((a, b) => a + b, 0);
    expect(await metric(relay, "queue_bytes")).toBe(queued);

    relay.signal("SIGTERM");
    await relay.stderr.waitFor("stopping signal=SIGTERM");
    // The flush is waiting for the sink: it comes up now.
    const rx = track(await startTcpReceiver({ port }));
    expect(await relay.waitExit(30_000)).toBe(0);
    // The relay closed its connection after the last write: what arrived is final.
    await rx.waitForDisconnect(1, 10_000);
    expect(rx.lines()).toEqual(Array.from({ length: N }, (_, i) => make(i)));
    expect(relay.stderr.count("stopped; queue flushed")).toBe(1);
    expect(relay.stderr.count("not fully flushed")).toBe(0);
    expect(relay.stderr.count("ERROR")).toBe(0);
  }, 60_000);

  test("Kubernetes with --state-file: SIGTERM, the sink comes up, every line written once, the cursors of the written lines saved, exit 0", async () => {
    const env = await kubeEnv();
    const { kube, ns } = env;
    const path = join(env.dir, "state.json");
    const pods = addPods(kube, ns, "sig", 2);
    const port = unusedPort();
    // Not startKubeRelay: the sink is an address where nothing listens yet.
    const relay = startRelay(["--kubernetes", "--namespace", ns, "--tcp-sink-port", String(port), "--state-file", path, "--shutdown-timeout", "20000"], {
      env: { KUBECONFIG: env.kubeconfig, HOME: env.dir },
    });
    await waitForStreams(kube, 2);
    // Two timestamps per container: the cursor ends at the second, counting its lines.
    const sec = Math.floor(Date.now() / 1000) - 5;
    const T1 = `${new Date(sec * 1000).toISOString().slice(0, 19)}.100000000Z`;
    const T2 = `${new Date(sec * 1000).toISOString().slice(0, 19)}.200000000Z`;
    for (const p of pods) {
      kube.appendLog(ns, p, "app", Array.from({ length: 60 }, (_, i) => `${p}-app-${i + 1}`), { timestamp: T1 });
      kube.appendLog(ns, p, "app", Array.from({ length: 40 }, (_, i) => `${p}-app-${i + 61}`), { timestamp: T2 });
    }
    await waitRead(relay, 200);
    expect(await metric(relay, "lines_forwarded_total")).toBe(0);
    // Nothing was written, so no cursor moved: nothing saved yet.
    expect(existsSync(path)).toBe(false);

    relay.signal("SIGTERM");
    await relay.stderr.waitFor("stopping signal=SIGTERM");
    const rx = track(await startTcpReceiver({ port }));
    const records = new Records(rx);
    expect(await relay.waitExit(30_000)).toBe(0);
    await rx.waitForDisconnect(1, 10_000);
    await records.expectExactly(new Map(pods.map((p) => [`${p}-app`, 100])), 10_000);
    expect(relay.stderr.count("stopped; queue flushed")).toBe(1);

    // Saved after the flush: each container's cursor is its last written line.
    const state = JSON.parse(readFileSync(path, "utf8")) as {
      version: number;
      cursors: Array<{ uid: string; namespace: string; pod: string; container: string; kind: string; containerID: string; ts: string; count: number }>;
    };
    expect(state.version).toBe(1);
    const byPod = new Map(state.cursors.map((c) => [c.pod, c]));
    expect([...byPod.keys()].sort()).toEqual([...pods].sort());
    for (const p of pods) {
      expect(byPod.get(p)).toEqual({
        uid: kube.getPod(ns, p)?.metadata.uid ?? "?",
        namespace: ns,
        pod: p,
        container: "app",
        kind: "output",
        containerID: kube.containerId(ns, p, "app") ?? "?",
        ts: T2,
        count: 40,
      });
    }
  }, 60_000);

  test("a second signal while the flush waits for an absent sink exits at once with 130", async () => {
    const fv = track(startFakeVigild({ handler: (req) => (req.index === 0 ? { steps: [{ lines: 50 }, { hang: true }] } : { steps: [{ hang: true }] }) }));
    const relay = startRelay(["--source-url", fv.url, "--tcp-sink-port", String(unusedPort()), "--shutdown-timeout", "60000"]);
    await waitRead(relay, 50);
    relay.signal("SIGINT");
    await relay.stderr.waitFor("stopping signal=SIGINT");
    const t0 = performance.now();
    relay.signal("SIGTERM");
    expect(await relay.waitExit(15_000)).toBe(130);
    // At once: nowhere near the 60 s the flush could still wait.
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect(relay.stderr.count("second signal")).toBe(1);
  }, 30_000);
});
