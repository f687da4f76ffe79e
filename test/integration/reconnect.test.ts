/**
 * Source reconnects with a real relay process: a clean EOF reconnects at once,
 * failures back off (doubling), --source-reconnect-retries gives up with one
 * error line, and the read / idle / connect timeouts end a stuck connection.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { errorScript, startFakeVigild, startSilentServer, type FakeVigild, type FakeVigildOptions, type Script, type VigildRequest } from "../fixtures/fake-vigild.ts";
import { startTcpReceiver, unusedPort, type TcpReceiver } from "../fixtures/tcp-receiver.ts";
import { chunks, cleanup, metric, sequence, startRelay, track } from "./helpers.ts";

afterEach(cleanup);

function vigild(opts: FakeVigildOptions): FakeVigild {
  return track(startFakeVigild(opts));
}

/** A handler that records when each request arrived. */
function timed(handler: (req: VigildRequest) => Script): { handler: (req: VigildRequest) => Script; times: number[] } {
  const times: number[] = [];
  return {
    times,
    handler: (req) => {
      times.push(performance.now());
      return handler(req);
    },
  };
}

const hang: Script = { steps: [{ hang: true }] };

async function receiver(): Promise<TcpReceiver> {
  return track(await startTcpReceiver());
}

describe("source reconnect", () => {
  test("a clean EOF reconnects at once, without the backoff delay", async () => {
    const t = timed((req) => (req.index < 3 ? chunks([`eof-${req.index}\n`]) : hang));
    const fv = vigild({ handler: t.handler });
    const rx = await receiver();
    startRelay(["--source-url", fv.url, "--tcp-sink-port", String(rx.port), "--source-reconnect-delay", "3000"]);
    expect(await rx.waitForLines(3, 10_000)).toEqual(["eof-0", "eof-1", "eof-2"]);
    await fv.nextRequest();
    await fv.nextRequest();
    await fv.nextRequest();
    await fv.nextRequest(10_000);
    // three reconnects after EOF, far quicker than one 3 s backoff
    const [a = 0, , , d = 0] = t.times;
    expect(d - a).toBeLessThan(2500);
  });

  test("errors back off, doubling; non-2xx responses count", async () => {
    const t = timed((req) => (req.index < 5 ? errorScript(500, "boom") : chunks(["finally\n"], "hang")));
    const fv = vigild({ handler: t.handler });
    const rx = await receiver();
    const relay = startRelay([
      "--source-url", fv.url,
      "--tcp-sink-port", String(rx.port),
      "--source-reconnect-delay", "100",
      "--source-reconnect-max", "5000",
      "--source-reconnect-retries", "6",
    ]);
    expect(await rx.waitForLines(1, 20_000)).toEqual(["finally"]);
    const gaps = t.times.slice(1, 6).map((x, k) => x - (t.times[k] ?? 0));
    // 100, 200, 400, 800 ms at least (timers never fire early; a loaded machine only adds)
    expect(gaps[0]).toBeGreaterThanOrEqual(90);
    expect(gaps[1]).toBeGreaterThanOrEqual(190);
    expect(gaps[2]).toBeGreaterThanOrEqual(390);
    expect(gaps[3]).toBeGreaterThanOrEqual(790);
    expect(gaps[4]).toBeGreaterThanOrEqual(1590);
    // doubling, not constant: the fourth wait is clearly longer than the first
    expect((gaps[3] ?? 0) - (gaps[0] ?? 0)).toBeGreaterThan(500);
    // non-2xx is counted and logged with the status and body
    expect(await metric(relay, "source_reconnects_total", 'cause="rejected"')).toBe(5);
    const warn = await relay.stderr.waitFor("source stream failed");
    expect(warn).toContain('error="HTTP 500: boom"');
    expect(relay.proc.exitCode).toBeNull();
  }, 30_000);

  test("--source-reconnect-retries N: exit non-zero after N consecutive failures, with one line naming the cause", async () => {
    const fv = vigild({ handler: () => errorScript(503, "vigild is restarting") });
    const rx = await receiver();
    const relay = startRelay(["--source-url", fv.url, "--tcp-sink-port", String(rx.port), "--source-reconnect-retries", "3"]);
    const code = await relay.waitExit(15_000);
    expect(code).not.toBe(0);
    expect(code).toBe(1);
    expect(fv.requests.length).toBe(3);
    await relay.stderr.end();
    const fatal = relay.stderr.lines.filter((l) => l.includes("giving up"));
    expect(fatal.length).toBe(1);
    expect(fatal[0]).toContain("ERROR");
    expect(fatal[0]).toContain("3 consecutive failures");
    expect(fatal[0]).toContain("HTTP 503: vigild is restarting");
    expect(relay.stderr.text).not.toMatch(/^\s+at /m);
  });

  test("a successful connect resets the failure count (a stream that later breaks is a first failure again)", async () => {
    const rx = await receiver();
    const fv = vigild({
      handler: (req) => {
        if (req.index < 2 || req.index === 3) return errorScript(500, "boom");
        if (req.index === 2) return { steps: [{ write: "ok\n" }, { waitFor: rx.waitForLines(1, 10_000) }, { close: "abort" }] };
        return chunks(["after\n"], "hang");
      },
    });
    // 2 failures, a good connection that breaks (1), another failure (2), then success: never 3 in a row
    const relay = startRelay(["--source-url", fv.url, "--tcp-sink-port", String(rx.port), "--source-reconnect-retries", "3"]);
    expect(await rx.waitForLines(2, 15_000)).toEqual(["ok", "after"]);
    expect(relay.proc.exitCode).toBeNull();
    expect(relay.stderr.count("giving up")).toBe(0);
  });

  test("--source-reconnect-retries with a refused connection (SOURCE_RECONNECT_RETRIES from the env)", async () => {
    const rx = await receiver();
    const relay = startRelay(["--source-url", `http://127.0.0.1:${unusedPort()}/v1/logs/follow`, "--tcp-sink-port", String(rx.port)], {
      env: { SOURCE_RECONNECT_RETRIES: "2" },
    });
    expect(await relay.waitExit(15_000)).toBe(1);
    await relay.stderr.end();
    const fatal = relay.stderr.lines.filter((l) => l.includes("giving up"));
    expect(fatal.length).toBe(1);
    expect(fatal[0]).toContain("2 consecutive failures");
    expect(fatal[0]).toMatch(/last error: \S/);
  });

  test("--source-read-timeout: a server that stops sending is reconnected", async () => {
    const fv = vigild({ handler: (req) => (req.index === 0 ? chunks(["first\n"], "hang") : chunks(["second\n"], "hang")) });
    const rx = await receiver();
    const relay = startRelay(["--source-url", fv.url, "--tcp-sink-port", String(rx.port), "--source-read-timeout", "400"]);
    expect(await rx.waitForLines(2, 10_000)).toEqual(["first", "second"]);
    const warn = await relay.stderr.waitFor("source stream failed");
    expect(warn).toContain("--source-read-timeout");
    expect(fv.requests.length).toBeGreaterThanOrEqual(2);
  });

  test("keepalive comments keep a quiet stream open (a comment is a line, as in the reference)", async () => {
    const keepalives = Array.from({ length: 30 }, () => [{ write: ": keepalive\n" }, { sleepMs: 50 }]).flat();
    const fv = vigild({ handler: sequence({ steps: [{ write: "first\n" }, ...keepalives, { write: "second\n" }, { hang: true }] }) });
    const rx = await receiver();
    const relay = startRelay([
      "--source-url", fv.url,
      "--tcp-sink-port", String(rx.port),
      "--source-read-timeout", "400",
      "--source-idle-timeout", "400",
    ]);
    expect(await rx.waitForLines(2, 10_000)).toEqual(["first", "second"]);
    expect(fv.requests.length).toBe(1);
    expect(relay.stderr.count("source stream failed")).toBe(0);
  });

  test("--source-idle-timeout: data but never a complete line is reconnected", async () => {
    const drip = Array.from({ length: 200 }, () => [{ write: "x" }, { sleepMs: 50 }]).flat();
    const fv = vigild({
      handler: (req) => (req.index === 0 ? { steps: [{ write: "first\npartial-" }, ...drip, { hang: true }] } : chunks(["second\n"], "hang")),
    });
    const rx = await receiver();
    const relay = startRelay([
      "--source-url", fv.url,
      "--tcp-sink-port", String(rx.port),
      "--source-read-timeout", "400",
      "--source-idle-timeout", "800",
    ]);
    expect(await rx.waitForLines(2, 10_000)).toEqual(["first", "second"]);
    const warn = await relay.stderr.waitFor("source stream failed");
    expect(warn).toContain("--source-idle-timeout");
    expect(relay.stderr.count("--source-read-timeout")).toBe(0);
    // the half line of the cut connection is dropped, never spliced onto the next one
    expect(rx.lines()).toEqual(["first", "second"]);
  });

  test("--source-read-timeout: a server that accepts and never answers is retried", async () => {
    const silent = track(startSilentServer());
    const rx = await receiver();
    const relay = startRelay(["--source-url", silent.url, "--tcp-sink-port", String(rx.port), "--source-read-timeout", "300"]);
    await silent.waitForConnection(3, 10_000);
    const warn = await relay.stderr.waitFor("source stream failed");
    // Waiting for the response head is a read (as in the reference's client), not part of the connect.
    expect(warn).toContain("no response for 300 ms");
    expect(await metric(relay, "source_reconnects_total", 'cause="timeout"')).toBeGreaterThanOrEqual(2);
  });

  test("--source-connect-timeout covers the connection only: a server that answers after it is not cut off", async () => {
    const rx = await receiver();
    // A server that sends its head with its first event, 600 ms after the request.
    const fv = vigild({ handler: async () => (await Bun.sleep(600), chunks(["late but whole\n"], "hang")) });
    const relay = startRelay(["--source-url", fv.url, "--tcp-sink-port", String(rx.port), "--source-connect-timeout", "200"]);
    expect(await rx.waitForLines(1, 10_000)).toEqual(["late but whole"]);
    expect(fv.requests.length).toBe(1);
    expect(relay.stderr.count("source stream failed")).toBe(0);
  });

  test("a connection cut mid-line: the half line is dropped with a warning, the next connection's lines follow", async () => {
    const rx = await receiver();
    const fv = vigild({
      handler: (req) =>
        req.index === 0
          ? { steps: [{ write: "whole\nhalf-li" }, { waitFor: rx.waitForLines(1, 10_000) }, { close: "abort" }] }
          : chunks(["next\n"], "hang"),
    });
    const relay = startRelay(["--source-url", fv.url, "--tcp-sink-port", String(rx.port)]);
    expect(await rx.waitForLines(2, 10_000)).toEqual(["whole", "next"]);
    const warn = await relay.stderr.waitFor("partial line was discarded");
    expect(warn).toContain("bytes=7");
  });
});
