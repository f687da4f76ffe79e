/**
 * The disk spool (--buffer-dir) and --when-full with real processes and sockets:
 * a 30 s receiver outage with and without a spool (run side by side), a full
 * spool in both --when-full modes, and lines left in the spool at shutdown (or
 * after SIGKILL) sent first by the next relay.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { startFakeVigild, type FakeVigild, type FakeVigildOptions, type Step } from "../fixtures/fake-vigild.ts";
import { startTcpReceiver, unusedPort } from "../fixtures/tcp-receiver.ts";
import { cleanup, expectOneErrorLine, metric, runRelay, startRelay, tempDir, track, waitUntil, type Relay } from "./helpers.ts";

afterEach(cleanup);

function vigild(opts: FakeVigildOptions): FakeVigild {
  return track(startFakeVigild(opts));
}

const PAD = "y".repeat(150);
const make = (i: number): string => `{"seq":${i},"pad":"${PAD}"}`;
/** ~1 KB lines: 30 s of them at 2000/s (60 MB) are far more than the kernel's socket buffers hold. */
const BIG = "z".repeat(1000);
const makeBig = (i: number): string => `{"seq":${i},"pad":"${BIG}"}`;
/** Bytes of make(from) .. make(from + count - 1), newlines included. */
function bytesOf(count: number, from = 0): number {
  let n = 0;
  for (let i = from; i < from + count; i++) n += make(i).length + 1;
  return n;
}
const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * `total` lines from `from`, `perSecond` a second on a fixed timetable (like a busy
 * application): a source held back by the relay catches up at once when let go.
 */
function paced(from: number, total: number, perSecond: number, mk: (i: number) => string): Step[] {
  const per = Math.max(1, Math.round(perSecond / 20));
  const t0 = Date.now();
  const steps: Step[] = [];
  for (let i = from, k = 0; i < from + total; i += per, k++) {
    steps.push({ waitFor: Bun.sleep(Math.max(0, t0 + k * 50 - Date.now())) });
    steps.push({ lines: Math.min(per, from + total - i), start: i, make: mk });
  }
  steps.push({ hang: true });
  return steps;
}

/** A source that sends `steps` on the first request and nothing on later ones. */
function source(steps: Step[]): FakeVigild {
  return vigild({ handler: (req) => ({ steps: req.index === 0 ? steps : [{ hang: true }] }) });
}

/** -1 when `lines` are exactly make(from) .. make(from + lines.length - 1), else the first bad index. */
function firstMismatch(lines: string[], from = 0, mk = make): number {
  for (let k = 0; k < lines.length; k++) if (lines[k] !== mk(from + k)) return k;
  return -1;
}

function segments(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.startsWith("segment-"));
}

function rssMiB(relay: Relay): number {
  try {
    const text = readFileSync(`/proc/${relay.proc.pid}/status`, "utf8");
    const m = /VmRSS:\s+(\d+) kB/.exec(text);
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

describe("receiver down for 30 s", () => {
  test("with a spool the source keeps flowing to disk, without one it is held back; afterwards every line arrives once, in order", async () => {
    const RATE = 2000;
    const TOTAL = 64_000; // 32 s of lines
    const OUTAGE_MS = 30_000;
    const portSpool = unusedPort();
    const portPlain = unusedPort();
    const dir = tempDir();
    const fvSpool = source(paced(0, TOTAL, RATE, makeBig));
    const fvPlain = source(paced(0, TOTAL, RATE, makeBig));
    const common = ["--queue-max-bytes", String(256 * KiB), "--dest-reconnect-max", "200"];
    const spooled = startRelay([
      "--source-url", `${fvSpool.url}/v1/logs/follow`,
      "--tcp-sink-port", String(portSpool),
      "--buffer-dir", dir,
      "--buffer-max-bytes", String(256 * MiB),
      ...common,
    ]);
    const plain = startRelay(["--source-url", `${fvPlain.url}/v1/logs/follow`, "--tcp-sink-port", String(portPlain), ...common]);
    const started = Date.now();
    await Promise.all([spooled.healthUrl(), plain.healthUrl()]);

    // Halfway through the outage: the spooled relay has taken everything sent so far,
    // the plain one stopped reading once its queue (and the socket buffers) filled.
    await Bun.sleep(OUTAGE_MS / 2); // the scenario's timeline, not a synchronisation
    const producedMid = fvSpool.stats.linesProduced;
    expect(producedMid).toBeGreaterThan(RATE * 10);
    expect(await metric(spooled, "spool_bytes")).toBeGreaterThan(15 * MiB);
    expect(await metric(spooled, "queue_bytes")).toBeLessThanOrEqual(256 * KiB + 64 * KiB);
    expect(await metric(plain, "queue_bytes")).toBeLessThanOrEqual(256 * KiB + 64 * KiB);
    expect(segments(dir).length).toBeGreaterThan(1);

    await Bun.sleep(Math.max(0, started + OUTAGE_MS - Date.now()));
    const plainHeldAt = fvPlain.stats.linesProduced;
    expect(plainHeldAt).toBeLessThan(fvSpool.stats.linesProduced - RATE * 5);
    expect(fvPlain.stats.backpressureWaits).toBeGreaterThan(0);
    expect(await metric(plain, "lines_read_total")).toBeLessThan(await metric(spooled, "lines_read_total"));
    // Memory stays bounded while 10+ MB wait on disk.
    expect(rssMiB(spooled)).toBeLessThan(200);

    const rxSpool = track(await startTcpReceiver({ port: portSpool }));
    const rxPlain = track(await startTcpReceiver({ port: portPlain }));
    const [a, b] = await Promise.all([rxSpool.waitForLines(TOTAL, 60_000), rxPlain.waitForLines(TOTAL, 60_000)]).catch(async (e: unknown) => {
      const state = async (r: Relay) =>
        `read ${await metric(r, "lines_read_total")} forwarded ${await metric(r, "lines_forwarded_total")} spool ${await metric(r, "spool_bytes")} queue ${await metric(r, "queue_bytes")}`;
      throw new Error(
        `${String(e)}; spooled relay: rx ${rxSpool.lineCount}, ${await state(spooled)}; plain relay: rx ${rxPlain.lineCount}, ${await state(plain)}; produced ${fvSpool.stats.linesProduced}/${fvPlain.stats.linesProduced}\n${spooled.stderr.lines.join("\n")}`,
      );
    });
    expect(a.length).toBe(TOTAL);
    expect(firstMismatch(a, 0, makeBig)).toBe(-1);
    expect(b.length).toBe(TOTAL);
    expect(firstMismatch(b, 0, makeBig)).toBe(-1);
    for (const r of [spooled, plain]) {
      expect(await metric(r, "lines_forwarded_total")).toBe(TOTAL);
      expect(await metric(r, "lines_dropped_total")).toBe(0);
    }
    expect(await metric(spooled, "lines_spooled_total")).toBeGreaterThan(TOTAL / 4);
    // Drained: segments are deleted once written.
    await waitUntil(async () => (await metric(spooled, "spool_bytes")) === 0 && segments(dir).length === 0, 10_000, "an empty spool");
    // The outage was logged, but rate limited: a handful of lines, not one per attempt.
    expect(spooled.stderr.count(/cannot connect to the sink/)).toBeLessThanOrEqual(3);
  }, 120_000);
});

describe("full spool", () => {
  const N = 12_000; // ~2.2 MB
  const flags = (dir: string, port: number, url: string, mode: string) => [
    "--source-url", url,
    "--tcp-sink-port", String(port),
    "--queue-max-bytes", String(64 * KiB),
    "--buffer-dir", dir,
    "--buffer-max-bytes", String(512 * KiB),
    "--when-full", mode,
  ];

  test("drop-newest: the source is read to the end, new lines past the spool are dropped and counted, the rest arrives in order", async () => {
    const port = unusedPort();
    const fv = source([{ lines: N, make }, { hang: true }]);
    const relay = startRelay(flags(tempDir(), port, `${fv.url}/v1/logs/follow`, "drop-newest"));
    await waitUntil(async () => (await metric(relay, "lines_read_total")) === N, 20_000, "every line read");
    const dropped = await metric(relay, "lines_dropped_total", 'reason="when_full"');
    expect(dropped).toBeGreaterThan(N / 2);
    const rx = track(await startTcpReceiver({ port }));
    const kept = N - dropped;
    const lines = await rx.waitForLines(kept, 20_000);
    expect(lines.length).toBe(kept);
    // What was kept arrives in order; an entry that did not fit was dropped whole, and a
    // later, smaller one may still have fitted (drop-newest drops what does not fit).
    const seqs = lines.map((l) => Number(/"seq":(\d+)/.exec(l)?.[1]));
    for (let k = 0; k < seqs.length; k++) expect(lines[k]).toBe(make(seqs[k] as number));
    for (let k = 1; k < seqs.length; k++) if ((seqs[k] as number) <= (seqs[k - 1] as number)) throw new Error(`out of order at ${k}`);
    // Nothing could be written while the spool filled: the oldest lines are all there.
    expect(seqs.slice(0, 1000)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    await waitUntil(async () => (await metric(relay, "lines_forwarded_total")) === kept, 5000, "the count forwarded");
    // a moment for a stray extra line to show up if the counts were wrong
    await rx.waitForLines(kept + 1, 300).then(
      () => {
        throw new Error("more lines than the relay says it kept");
      },
      () => {},
    );
    expect(relay.stderr.count(/dropping new lines/)).toBe(1);
  }, 60_000);

  test("block: the source waits once the spool is full; nothing is dropped and every line arrives", async () => {
    const port = unusedPort();
    const dir = tempDir();
    const fv = source([{ lines: N, make }, { hang: true }]);
    const relay = startRelay(flags(dir, port, `${fv.url}/v1/logs/follow`, "block"));
    await waitUntil(async () => (await metric(relay, "spool_bytes")) >= 512 * KiB, 20_000, "a full spool");
    // (The kernel's socket buffers hold the rest of the 2 MB, so the fake source itself never blocks.)
    await Bun.sleep(300); // a window in which a relay that did not wait would read on
    const read = await metric(relay, "lines_read_total");
    expect(read).toBeLessThan(N);
    expect(await metric(relay, "lines_read_total")).toBe(read);
    // The spool takes the entry that fills it, then holds the source: over by at most one read.
    expect(await metric(relay, "spool_bytes")).toBeLessThanOrEqual(512 * KiB + 256 * KiB);
    const rx = track(await startTcpReceiver({ port }));
    const lines = await rx.waitForLines(N, 30_000);
    expect(lines.length).toBe(N);
    expect(firstMismatch(lines)).toBe(-1);
    expect(await metric(relay, "lines_dropped_total")).toBe(0);
  }, 60_000);
});

describe("spool across restarts", () => {
  for (const stop of ["SIGTERM", "SIGKILL"] as const) {
    test(`lines spooled before ${stop} are sent first by the next relay, then the new ones`, async () => {
      const N = 5000;
      const port = unusedPort();
      const dir = tempDir();
      const fv1 = source([{ lines: N, make }, { hang: true }]);
      const first = startRelay([
        "--source-url", `${fv1.url}/v1/logs/follow`,
        "--tcp-sink-port", String(port),
        "--queue-max-bytes", String(64 * KiB),
        "--buffer-dir", dir,
        "--shutdown-timeout", "500",
      ]);
      await waitUntil(async () => (await metric(first, "lines_read_total")) === N, 20_000, "every line read");
      // Past the spool's sync interval, so a SIGKILL finds the lines on disk (page cache survives the process).
      await waitUntil(async () => (await metric(first, "spool_bytes")) > 0, 5000, "spooled bytes");
      if (stop === "SIGTERM") {
        first.signal("SIGTERM");
        expect(await first.waitExit(10_000)).toBe(0);
        const line = await first.stderr.waitFor(/bytes_left_in_spool=(\d+)/);
        // Everything read is on disk: the memory queue's lines were put in front of the spool.
        expect(Number(/bytes_left_in_spool=(\d+)/.exec(line)?.[1])).toBe(bytesOf(N));
      } else {
        await first.kill();
      }
      expect(segments(dir).length).toBeGreaterThan(0);

      const rx = track(await startTcpReceiver({ port }));
      const fv2 = source([{ lines: 1000, start: N, make }, { hang: true }]);
      const second = startRelay([
        "--source-url", `${fv2.url}/v1/logs/follow`,
        "--tcp-sink-port", String(port),
        "--queue-max-bytes", String(64 * KiB),
        "--buffer-dir", dir,
      ]);
      if (stop === "SIGTERM") {
        const lines = await rx.waitForLines(N + 1000, 20_000);
        expect(lines.length).toBe(N + 1000);
        expect(firstMismatch(lines)).toBe(-1);
      } else {
        // SIGKILL: what sat in the memory queue (64 KiB) is gone with the process; the
        // spooled lines come first and in order, then the new ones.
        await waitUntil(() => rx.lines().some((l) => l === make(N + 999)), 20_000, "the new lines");
        const lines = rx.lines();
        const firstSpooled = Number(/"seq":(\d+)/.exec(lines[0] ?? "")?.[1]);
        const spooledCount = lines.length - 1000;
        expect(firstSpooled + spooledCount).toBe(N);
        expect(firstMismatch(lines.slice(0, spooledCount), firstSpooled)).toBe(-1);
        expect(firstMismatch(lines.slice(spooledCount), N)).toBe(-1);
        expect(bytesOf(firstSpooled)).toBeLessThanOrEqual(64 * KiB + 64 * KiB);
      }
      await second.stderr.waitFor(/spool holds lines from a previous run/);
    }, 60_000);
  }
});

describe("start-up errors", () => {
  test("an unusable --buffer-dir is one line and exit 2", async () => {
    const file = `${tempDir()}/file`;
    await Bun.write(file, "x");
    const r = await runRelay(["--source-url", "http://127.0.0.1:1/", "--buffer-dir", `${file}/spool`]);
    expect(r.code).toBe(2);
    expect(expectOneErrorLine(r.stderr)).toMatch(/--buffer-dir .*file\/spool/);
  });

  test("a second relay on the same --buffer-dir is one line and exit 2", async () => {
    const dir = tempDir();
    const first = startRelay(["--source-url", "http://127.0.0.1:1/", "--tcp-sink-port", String(unusedPort()), "--buffer-dir", dir]);
    await first.healthUrl();
    const r = await runRelay(["--source-url", "http://127.0.0.1:1/", "--buffer-dir", dir]);
    expect(r.code).toBe(2);
    expect(expectOneErrorLine(r.stderr)).toContain(`in use by another relay (pid ${first.proc.pid})`);
    first.signal("SIGTERM");
    expect(await first.waitExit()).toBe(0);
    // Released on exit: the next relay takes the directory.
    const next = startRelay(["--source-url", "http://127.0.0.1:1/", "--tcp-sink-port", String(unusedPort()), "--buffer-dir", dir]);
    await next.healthUrl();
    next.signal("SIGTERM");
    expect(await next.waitExit()).toBe(0);
  });

  test("a bad --when-full is one line and exit 2", async () => {
    const r = await runRelay(["--source-url", "http://127.0.0.1:1/", "--when-full", "drop-oldest"]);
    expect(r.code).toBe(2);
    expect(expectOneErrorLine(r.stderr)).toMatch(/--when-full.*drop-oldest.*block or drop-newest/);
  });
});
