/**
 * /readyz as the sink and the source come and go: 503 with a one-line reason
 * while either is down, 200 once both are up, and back (HTTP over a Unix
 * socket, whose server is stopped and started again at the same path; and
 * Kubernetes mode, whose pod watch is refused and then allowed again). The
 * connected gauges of /metrics agree. While the sink or the source stays down
 * under 10 ms reconnects, the relay's warnings about it are rate limited and
 * say what to check.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { startFakeVigild, type FakeVigild } from "../fixtures/fake-vigild.ts";
import { startTcpReceiver, unusedPort, type TcpReceiver } from "../fixtures/tcp-receiver.ts";
import { chunks, cleanup, get, metric, startRelay, tempDir, track, waitUntil, type Relay } from "./helpers.ts";
import { kubeEnv, startKubeRelay, waitForStreams } from "../kubernetes/helpers.ts";

afterEach(cleanup);

/** GET /readyz; a 503's body must be one line: "not ready: <reason>\n". */
async function readyz(relay: Relay): Promise<{ status: number; body: string }> {
  const r = await get(`${await relay.healthUrl()}/readyz`);
  if (r.status === 503) expect(r.body).toMatch(/^not ready: [^\n]+\n$/);
  return r;
}

/** Waits (polling: readiness has no event) until /readyz answers `status`; returns the body. */
async function waitReady(relay: Relay, status: 200 | 503, what: string): Promise<string> {
  let last = { status: 0, body: "" };
  await waitUntil(
    async () => {
      last = await readyz(relay);
      return last.status === status;
    },
    20_000,
    () => `${what}: /readyz ${status} (last: ${last.status} ${JSON.stringify(last.body)})`,
    25,
  );
  return last.body;
}

describe("/readyz flips as the sink and the source come and go", () => {
  test("HTTP source on a Unix socket: sink down 503, both up 200, source server stopped 503, back 200, sink gone 503, back 200", async () => {
    const dir = tempDir("vigil-ready-");
    const sock = join(dir, "vigild.sock");
    let served = 0;
    const handler = () => chunks([`line-${++served}\n`], "hang");
    let fv: FakeVigild = startFakeVigild({ unix: sock, handler });
    track({ stop: () => fv.stop() });
    const port = unusedPort();
    let rx: TcpReceiver | null = null;
    track({ stop: async () => rx?.stop() });
    const relay = startRelay([
      "--source-socket", sock,
      "--source-path", "/v1/logs/follow?format=ndjson",
      "--tcp-sink-port", String(port),
      "--source-reconnect-max", "200",
      "--dest-reconnect-max", "200",
    ]);

    // The source is up, the sink is not.
    await relay.stderr.waitFor("source connected");
    expect(await readyz(relay)).toEqual({ status: 503, body: "not ready: sink not connected\n" });
    expect(await metric(relay, "sink_connected")).toBe(0);
    expect(await metric(relay, "source_connected")).toBe(1);

    // The sink comes up: ready.
    rx = await startTcpReceiver({ port });
    expect(await waitReady(relay, 200, "sink up")).toBe("ready\n");
    await rx.waitForLines(1, 10_000);
    expect(await metric(relay, "sink_connected")).toBe(1);

    // The source's server goes away: not ready, the reason names the source.
    await fv.stop();
    expect(await waitReady(relay, 503, "source server stopped")).toBe("not ready: source not connected\n");
    expect(await metric(relay, "source_connected")).toBe(0);
    expect((await get(`${await relay.healthUrl()}/healthz`)).status).toBe(200);

    // It comes back at the same path: ready again, and its line arrives.
    fv = startFakeVigild({ unix: sock, handler });
    expect(await waitReady(relay, 200, "source server back")).toBe("ready\n");
    await rx.waitForLines(2, 10_000);
    expect(await metric(relay, "source_connected")).toBe(1);

    // The collector goes away: not ready, the reason names the sink.
    await rx.stop();
    expect(await waitReady(relay, 503, "sink gone")).toBe("not ready: sink not connected\n");
    expect(await metric(relay, "sink_connected")).toBe(0);

    // And comes back on its port.
    rx = await startTcpReceiver({ port });
    expect(await waitReady(relay, 200, "sink back")).toBe("ready\n");
    expect(relay.proc.exitCode).toBeNull();
  }, 60_000);

  test("Kubernetes: 200 while the pod watch is established, 503 while the API refuses it, 200 once it allows it again", async () => {
    const env = await kubeEnv();
    const { kube, ns } = env;
    // A token of its own, so the test can withdraw and restore it.
    const token = `ready-${process.pid}-${Date.now()}`;
    const grant = { token, user: `system:serviceaccount:${ns}:relay`, namespaces: [ns], allow: ["list", "watch", "get", "log"] as ("list" | "watch" | "get" | "log")[] };
    kube.addToken(grant);
    kube.writeKubeconfig(env.kubeconfig, { namespace: ns, token });
    kube.addPod({ namespace: ns, name: "rdy-1", containers: [{ name: "app" }] });
    const relay = startKubeRelay(env);
    await waitForStreams(kube, 1);
    expect(await waitReady(relay, 200, "watch established")).toBe("ready\n");
    expect(await metric(relay, "source_connected")).toBe(1);

    // The token is withdrawn and the watch ends: every new watch gets 401.
    kube.revokeToken(token);
    kube.closeAllWatches();
    expect(await waitReady(relay, 503, "watch refused")).toBe("not ready: pod watch not established\n");
    expect(await metric(relay, "source_connected")).toBe(0);
    expect((await get(`${await relay.healthUrl()}/healthz`)).status).toBe(200);

    // Allowed again: the watch is re-established (after the watch backoff) and the relay is ready.
    kube.addToken(grant);
    expect(await waitReady(relay, 200, "watch re-established")).toBe("ready\n");
    expect(await metric(relay, "source_connected")).toBe(1);
    // And it still sees pod changes: a new pod's lines arrive.
    kube.addPod({ namespace: ns, name: "rdy-2", containers: [{ name: "app" }] });
    await waitForStreams(kube, 2);
    kube.appendLog(ns, "rdy-2", "app", ["after-1"]);
    await env.rx.waitForLines(1, 20_000);
    expect(env.records.update().map((r) => r.message)).toEqual(["after-1"]);
  }, 60_000);
});

describe("repeated-fault warnings are rate limited and say what to do", () => {
  /** The relay's WARN lines that match `about`. */
  const warns = (relay: Relay, about: RegExp) => relay.stderr.lines.filter((l) => /\bWARN\b/.test(l) && about.test(l));

  test("the sink down through 100 reconnects 10 ms apart: one warning, naming what to check; the source meanwhile held back, not dropping", async () => {
    const fv = track(startFakeVigild({ handler: () => chunks(["queued-1\nqueued-2\n"], "hang") }));
    const relay = startRelay([
      "--source-url", fv.url,
      "--tcp-sink-port", String(unusedPort()),
      "--dest-reconnect-delay", "10",
      "--dest-reconnect-max", "10",
    ]);
    await relay.stderr.waitFor("cannot connect to the sink");
    await relay.stderr.waitFor("source connected");
    // The sink stays down through 100 connect attempts.
    await waitUntil(async () => (await metric(relay, "sink_connect_failures_total")) >= 100, 20_000, "100 failed sink connects");
    const sink = warns(relay, /sink/);
    expect(sink.length).toBe(1);
    expect(sink[0]).toContain("cannot connect to the sink");
    expect(sink[0]).toMatch(/\(check [^)]+\)/);
    expect(sink[0]).toContain("retry_in_ms=10");
    expect(await metric(relay, "lines_read_total")).toBe(2);
    expect(await metric(relay, "lines_dropped_total")).toBe(0);
    expect(relay.stderr.lines.filter((l) => /\b(WARN|ERROR)\b/.test(l))).toEqual(sink);
  }, 30_000);

  test("the source refusing connections through 100 reconnects 10 ms apart: one warning, naming what to check, while every attempt is counted", async () => {
    const rx = track(await startTcpReceiver());
    const relay = startRelay([
      "--source-url", `http://127.0.0.1:${unusedPort()}/v1/logs/follow`,
      "--tcp-sink-port", String(rx.port),
      "--source-reconnect-delay", "10",
      "--source-reconnect-max", "10",
    ]);
    await relay.stderr.waitFor("source stream failed");
    await waitUntil(async () => (await metric(relay, "source_reconnects_total", 'cause="error"')) >= 100, 20_000, "100 failed source connects");
    const attempts = await metric(relay, "source_reconnects_total", 'cause="error"');
    expect(attempts).toBeGreaterThan(20);
    const source = warns(relay, /source/);
    expect(source.length).toBe(1);
    expect(source[0]).toMatch(/source stream failed, reconnecting \(check [^)]+\)/);
    expect(relay.stderr.lines.filter((l) => /\b(WARN|ERROR)\b/.test(l))).toEqual(source);
  }, 30_000);
});
