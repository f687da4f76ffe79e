/**
 * /healthz, /readyz and /metrics of a running relay; --healthcheck port 0 and a
 * port in use; --healthcheck-max-age; and Liveness / the health server in-process.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { startFakeVigild, startSilentServer, type FakeVigild } from "../fixtures/fake-vigild.ts";
import { startTcpReceiver, unusedPort } from "../fixtures/tcp-receiver.ts";
import { Liveness, startHealthServer } from "../../src/health.ts";
import { Metrics } from "../../src/metrics.ts";
import { chunks, cleanup, expectOneErrorLine, get, runRelay, startRelay, track, waitUntil } from "./helpers.ts";

afterEach(cleanup);

function quietVigild(): FakeVigild {
  return track(startFakeVigild({ handler: () => chunks(["hello\n"], "hang") }));
}

describe("health server of the relay process", () => {
  test("port 0: the chosen address is logged; /healthz is 200 ok while running; /readyz reflects source and sink", async () => {
    const fv = quietVigild();
    const rx = track(await startTcpReceiver());
    const relay = startRelay(["--source-url", fv.url, "--tcp-sink-port", String(rx.port)]);
    const url = await relay.healthUrl();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(url).not.toEndWith(":0");
    expect(await get(`${url}/healthz`)).toEqual({ status: 200, body: "ok\n" });
    await rx.waitForLines(1);
    await waitUntil(async () => (await get(`${url}/readyz`)).status === 200, 10_000, "ready");
    expect(await get(`${url}/readyz`)).toEqual({ status: 200, body: "ready\n" });
    const metrics = await get(`${url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain("vigil_log_relay_lines_forwarded_total 1\n");
    expect(metrics.body).toContain("vigil_log_relay_sink_connected 1\n");
    expect(await get(`${url}/nope`)).toEqual({ status: 200, body: "ok\n" });
    // the source goes away: not ready (the source is not connected), but still alive
    await fv.stop();
    await waitUntil(async () => (await get(`${url}/readyz`)).status === 503, 10_000, "not ready");
    expect(await get(`${url}/readyz`)).toEqual({ status: 503, body: "not ready: source not connected\n" });
    expect(await get(`${url}/healthz`)).toEqual({ status: 200, body: "ok\n" });
  });

  test("/readyz: 503 while the source never answers", async () => {
    const silent = track(startSilentServer());
    const rx = track(await startTcpReceiver());
    const relay = startRelay(["--source-url", silent.url, "--tcp-sink-port", String(rx.port)]);
    const url = await relay.healthUrl();
    await silent.waitForConnection(1);
    await rx.waitForConnection(1);
    expect(await get(`${url}/readyz`)).toEqual({ status: 503, body: "not ready: source not connected\n" });
  });

  test("/readyz: 503 while the sink is down", async () => {
    const fv = quietVigild();
    const relay = startRelay(["--source-url", fv.url, "--tcp-sink-port", String(unusedPort())]);
    const url = await relay.healthUrl();
    await relay.stderr.waitFor("source connected");
    expect(await get(`${url}/readyz`)).toEqual({ status: 503, body: "not ready: sink not connected\n" });
    expect(await get(`${url}/healthz`)).toEqual({ status: 200, body: "ok\n" });
  });

  test("--healthcheck-max-age shorter than 30 s: a quiet but live relay stays 200 (it ticks at half the max age)", async () => {
    const fv = quietVigild();
    const rx = track(await startTcpReceiver());
    const relay = startRelay(["--source-url", fv.url, "--tcp-sink-port", String(rx.port), "--healthcheck-max-age", "1"]);
    const url = await relay.healthUrl();
    await rx.waitForLines(1);
    // Over three max-ages without a reconnect, every answer is fresh (the stale path is tested on Liveness itself).
    const deadline = Date.now() + 3_000;
    while (Date.now() < deadline) {
      expect(await get(`${url}/healthz`)).toEqual({ status: 200, body: "ok\n" });
      await Bun.sleep(100);
    }
  });

  test("HEALTHCHECK from the environment (flag absent)", async () => {
    const fv = quietVigild();
    const rx = track(await startTcpReceiver());
    const relay = startRelay(["--source-url", fv.url, "--tcp-sink-port", String(rx.port)], { bare: true, env: { HEALTHCHECK: "127.0.0.1:0" } });
    const url = await relay.healthUrl();
    expect(await get(`${url}/healthz`)).toEqual({ status: 200, body: "ok\n" });
  });

  test("a --healthcheck port already in use: exit 2 with one line", async () => {
    const busy = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const r = await runRelay(["--source-url", "http://127.0.0.1:1/", "--healthcheck", `127.0.0.1:${busy.port}`], { bare: true });
      expect(r.code).toBe(2);
      const line = expectOneErrorLine(r.stderr);
      expect(line).toContain(`--healthcheck 127.0.0.1:${busy.port}`);
      expect(line).toContain("cannot listen");
      expect(r.stdout).toBe("");
    } finally {
      busy.stop(true);
    }
  });
});

describe("Liveness and the health server, in-process", () => {
  test("fresh within max age, stale after, fresh again on a tick", async () => {
    const live = new Liveness(0.05);
    expect(live.fresh).toBe(true);
    await waitUntil(() => !live.fresh, 5_000, "stale");
    live.tick();
    expect(live.fresh).toBe(true);
  });

  test("/healthz 503 stale\\n, /readyz reason; any other path or method answers the liveness, as the reference's does", async () => {
    const live = new Liveness(0.05);
    let reason: string | null = "sink not connected";
    const server = startHealthServer({ host: "127.0.0.1", port: 0, maxAgeS: 0.05 }, live, () => reason, new Metrics());
    try {
      expect(server.port).toBeGreaterThan(0);
      expect(await get(`${server.url}/healthz`)).toEqual({ status: 200, body: "ok\n" });
      await waitUntil(() => !live.fresh, 5_000, "stale");
      const stale = await fetch(`${server.url}/healthz`);
      expect(stale.status).toBe(503);
      expect(stale.headers.get("content-type")).toStartWith("text/plain");
      expect(await stale.text()).toBe("stale\n");
      live.tick();
      expect(await get(`${server.url}/healthz`)).toEqual({ status: 200, body: "ok\n" });
      expect(await get(`${server.url}/readyz`)).toEqual({ status: 503, body: "not ready: sink not connected\n" });
      reason = null;
      expect(await get(`${server.url}/readyz`)).toEqual({ status: 200, body: "ready\n" });
      expect((await fetch(`${server.url}/healthz`, { method: "HEAD" })).status).toBe(200);
      // Probes written for the reference: any path, any method.
      for (const path of ["/", "/health", "/healthz/", "/anything?x=1"]) expect(await get(`${server.url}${path}`)).toEqual({ status: 200, body: "ok\n" });
      const post = await fetch(`${server.url}/healthz`, { method: "POST", body: "x" });
      expect({ status: post.status, body: await post.text() }).toEqual({ status: 200, body: "ok\n" });
      await waitUntil(() => !live.fresh, 5_000, "stale again");
      expect(await get(`${server.url}/`)).toEqual({ status: 503, body: "stale\n" });
    } finally {
      await server.stop();
    }
  });
});
