/**
 * Backpressure and shutdown with real sockets: a receiver that stops reading
 * holds the relay's queue full, which holds the fake vigild's socket full;
 * nothing is dropped. SIGTERM flushes what was read, within --shutdown-timeout.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { startFakeVigild, type FakeVigild, type FakeVigildOptions } from "../fixtures/fake-vigild.ts";
import { startTcpReceiver, type TcpReceiver } from "../fixtures/tcp-receiver.ts";
import { cleanup, metric, startRelay, track, waitForSinkStall } from "./helpers.ts";

afterEach(cleanup);

function vigild(opts: FakeVigildOptions): FakeVigild {
  return track(startFakeVigild(opts));
}

const PAD = "x".repeat(180);
/**
 * ~200-byte lines (realistic), so 200,000 of them (~40 MB) are far more than every
 * buffer on the way (loopback autotuning lets the kernel hold 10-18 MB here).
 */
const make = (i: number): string => `{"seq":${i},"pad":"${PAD}"}`;

/** Index of the first line that is not make(from + k), or -1 when all match. */
function firstMismatch(lines: string[], count: number, from = 0): number {
  if (lines.length < count) return lines.length;
  for (let k = 0; k < count; k++) if (lines[k] !== make(from + k)) return k;
  return -1;
}

const MiB = 1024 * 1024;
const N = 200_000;

describe("backpressure", () => {
  test("the receiver stops reading for seconds while 200,000 lines flow: every line arrives once, in order, and the source was held back", async () => {
    const rx: TcpReceiver = track(await startTcpReceiver({ paused: true }));
    const fv = vigild({
      handler: (req) => (req.index === 0 ? { steps: [{ lines: N, make }, { hang: true }] } : { steps: [{ hang: true }] }),
    });
    const held = fv.waitForBackpressure(30_000);
    const relay = startRelay([
      "--source-url", `${fv.url}/v1/logs/follow?format=ndjson`,
      "--tcp-sink-port", String(rx.port),
      "--queue-max-bytes", String(MiB),
    ]);
    await rx.waitForConnection(1, 10_000);
    // The receiver reads nothing: the relay's writes come back short, its queue fills,
    // it stops reading the source, and the fake vigild's socket fills up.
    await held;
    await waitForSinkStall(relay, MiB);
    // Stay paused for a while (the scenario, not a synchronisation): the source must stay held.
    await Bun.sleep(1000);
    const heldAt = fv.stats.bodyBytes;
    await Bun.sleep(1500);
    const total = N * make(N).length;
    expect(heldAt).toBeLessThan(total * 0.8);
    expect(fv.stats.bodyBytes - heldAt).toBeLessThan(MiB / 2);
    expect(relay.proc.exitCode).toBeNull();
    expect(rx.lineCount).toBe(0);
    // what the relay read but has not handed to the kernel is bounded by --queue-max-bytes (plus one batch)
    const read = await metric(relay, "bytes_read_total");
    const forwarded = await metric(relay, "bytes_forwarded_total");
    expect(read).toBeGreaterThan(0);
    expect(read - forwarded).toBeLessThanOrEqual(2 * MiB);

    rx.resume();
    const lines = await rx.waitForLines(N, 45_000);
    expect(lines.length).toBe(N);
    expect(firstMismatch(lines, N)).toBe(-1);
    expect(fv.stats.linesProduced).toBe(N);
    expect(fv.stats.backpressureWaits).toBeGreaterThan(0);
    expect(await metric(relay, "lines_dropped_total")).toBe(0);
    expect(relay.stderr.count(/WARN|ERROR/)).toBe(0);
  }, 90_000);
});

describe("SIGTERM", () => {
  test("lines queued while the receiver is paused are all written when it resumes right after the signal; exit 0", async () => {
    const rx: TcpReceiver = track(await startTcpReceiver({ paused: true }));
    const fv = vigild({ handler: () => ({ steps: [{ lines: N, make }, { hang: true }] }) });
    const held = fv.waitForBackpressure(30_000);
    const relay = startRelay([
      "--source-url", `${fv.url}/v1/logs/follow`,
      "--tcp-sink-port", String(rx.port),
      "--queue-max-bytes", String(MiB),
      "--shutdown-timeout", "20000",
    ]);
    await rx.waitForConnection(1, 10_000);
    await held;
    await waitForSinkStall(relay, MiB);
    relay.signal("SIGTERM");
    await relay.stderr.waitFor("stopping signal=SIGTERM");
    // The source stopped reading: what it read is what must arrive, no more, no less.
    const read = await metric(relay, "lines_read_total");
    expect(read).toBeGreaterThan(0);
    rx.resume();
    expect(await relay.waitExit(30_000)).toBe(0);
    const lines = await rx.waitForLines(read, 10_000);
    expect(lines.length).toBe(read);
    expect(firstMismatch(lines, read)).toBe(-1);
    expect(relay.stderr.lines.some((l) => l.includes("stopped; queue flushed"))).toBe(true);
    expect(relay.stderr.count("WARN")).toBe(0);
  }, 60_000);

  test("SIGINT when idle: exit 0 at once", async () => {
    const rx: TcpReceiver = track(await startTcpReceiver());
    const fv = vigild({ handler: () => ({ steps: [{ write: "one\n" }, { hang: true }] }) });
    const relay = startRelay(["--source-url", fv.url, "--tcp-sink-port", String(rx.port)]);
    await rx.waitForLines(1);
    relay.signal("SIGINT");
    expect(await relay.waitExit(10_000)).toBe(0);
    expect(rx.lines()).toEqual(["one"]);
  });

  test("the receiver never resumes: exit 0 within --shutdown-timeout with a warning", async () => {
    const rx: TcpReceiver = track(await startTcpReceiver({ paused: true }));
    const fv = vigild({ handler: () => ({ steps: [{ lines: N, make }, { hang: true }] }) });
    const held = fv.waitForBackpressure(30_000);
    const relay = startRelay([
      "--source-url", `${fv.url}/v1/logs/follow`,
      "--tcp-sink-port", String(rx.port),
      "--queue-max-bytes", String(MiB),
      "--shutdown-timeout", "1500",
    ]);
    await rx.waitForConnection(1, 10_000);
    await held;
    await waitForSinkStall(relay, MiB);
    const t0 = performance.now();
    relay.signal("SIGTERM");
    expect(await relay.waitExit(15_000)).toBe(0);
    const took = performance.now() - t0;
    if (took < 1400) throw new Error(`exited after ${took} ms; stderr:\n${relay.stderr.lines.join("\n")}`);
    expect(took).toBeLessThan(1500 + 5000);
    const warn = relay.stderr.lines.find((l) => l.includes("not fully flushed"));
    expect(warn).toBeDefined();
    expect(warn).toContain("WARN");
    expect(warn).toContain("timeout_ms=1500");
  }, 60_000);

  test("a second signal while flushing exits at once with 130", async () => {
    const rx: TcpReceiver = track(await startTcpReceiver({ paused: true }));
    const fv = vigild({ handler: () => ({ steps: [{ lines: N, make }, { hang: true }] }) });
    const held = fv.waitForBackpressure(30_000);
    const relay = startRelay([
      "--source-url", fv.url,
      "--tcp-sink-port", String(rx.port),
      "--queue-max-bytes", String(MiB),
      "--shutdown-timeout", "60000",
    ]);
    await held;
    await waitForSinkStall(relay, MiB);
    relay.signal("SIGTERM");
    await relay.stderr.waitFor("stopping signal=SIGTERM");
    relay.signal("SIGINT");
    expect(await relay.waitExit(10_000)).toBe(130);
    expect(relay.stderr.count("second signal")).toBe(1);
  }, 60_000);

  test("the sink is down at SIGTERM: exit 0 within --shutdown-timeout", async () => {
    const fv = vigild({ handler: () => ({ steps: [{ write: "queued\n" }, { hang: true }] }) });
    const relay = startRelay(["--source-url", fv.url, "--tcp-sink-port", "1", "--shutdown-timeout", "1000"]);
    await relay.stderr.waitFor("cannot connect to the sink");
    await fv.nextRequest(10_000);
    await relay.stderr.waitFor("source connected");
    const t0 = performance.now();
    relay.signal("SIGTERM");
    expect(await relay.waitExit(15_000)).toBe(0);
    expect(performance.now() - t0).toBeLessThan(1000 + 5000);
    expect(relay.stderr.count("not fully flushed")).toBe(1);
  });
});
