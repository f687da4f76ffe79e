import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../src/log.ts";
import { Metrics } from "../../src/metrics.ts";
import { OverflowQueue } from "../../src/overflow-queue.ts";
import { MemoryQueue, type QueueEntry } from "../../src/queue.ts";
import { Spool } from "../../src/spool/spool.ts";
import type { WhenFull } from "../../src/config.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const enc = new TextEncoder();
const dec = new TextDecoder();

/** An entry of `count` lines numbered from `from`, each padded to 20 bytes. */
function entry(from: number, count = 1, onWritten?: () => void): QueueEntry {
  let s = "";
  for (let i = from; i < from + count; i++) s += `${String(i).padStart(19, "0")}\n`;
  const b = enc.encode(s);
  const e: QueueEntry = { parts: [b], bytes: b.length, lines: count };
  if (onWritten) e.onWritten = onWritten;
  return e;
}

function setup(opts: { memory: number; spool?: number; whenFull?: WhenFull }) {
  const metrics = new Metrics();
  const memory = new MemoryQueue(opts.memory);
  let spool: Spool | null = null;
  let dir = "";
  if (opts.spool !== undefined) {
    dir = mkdtempSync(join(tmpdir(), "vigil-oq-"));
    dirs.push(dir);
    spool = Spool.open(dir, 64).spool;
  }
  const q = new OverflowQueue(memory, spool, opts.spool ?? 0, opts.whenFull ?? "block", metrics, silentLogger);
  return { q, memory, spool, metrics, dir };
}

/** What a sink does: take, "write", release, acknowledge. Returns the line numbers. */
function sinkDrain(q: OverflowQueue, maxBytes = 50): number[] {
  const out: number[] = [];
  for (let batch = q.take(maxBytes); batch.length > 0; batch = q.take(maxBytes)) {
    let bytes = 0;
    for (const e of batch) {
      bytes += e.bytes;
      for (const p of e.parts) for (const l of dec.decode(p).trimEnd().split("\n")) out.push(Number(l));
    }
    q.release(bytes);
    for (const e of batch) e.onWritten?.();
  }
  return out;
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

describe("OverflowQueue with a spool", () => {
  test("once memory is full, what waits there moves to the spool, new lines follow it, and all come out in order", () => {
    const { q, metrics, spool, memory } = setup({ memory: 60, spool: 10_000 });
    for (let i = 0; i < 3; i++) expect(q.push(entry(i))).toBeUndefined();
    expect(spool!.bytes).toBe(0);
    for (let i = 3; i < 10; i++) expect(q.push(entry(i))).toBeUndefined();
    expect(spool!.bytes).toBe(10 * 20);
    expect(memory.bytes).toBe(0);
    expect(metrics.linesSpooled.get()).toBe(10);
    expect(sinkDrain(q, 40)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(spool!.bytes).toBe(0);
    q.push(entry(10));
    expect(spool!.bytes).toBe(0); // spool empty again: back to memory
    expect(sinkDrain(q)).toEqual([10]);
  });

  test("order holds when pushes and takes interleave", () => {
    const { q } = setup({ memory: 40, spool: 1_000_000 });
    const got: number[] = [];
    let n = 0;
    for (let round = 0; round < 50; round++) {
      for (let k = 0; k < (round % 7) + 1; k++) q.push(entry(n++));
      const batch = q.take(30 + (round % 3) * 20);
      let bytes = 0;
      for (const e of batch) {
        bytes += e.bytes;
        for (const p of e.parts) for (const l of dec.decode(p).trimEnd().split("\n")) got.push(Number(l));
      }
      // Now and then the write fails half way and the rest is requeued.
      if (round % 5 === 4 && bytes > 20) {
        const whole = new Uint8Array(bytes);
        let off = 0;
        for (const e of batch) for (const p of e.parts) (whole.set(p, off), (off += p.length));
        const rest = whole.slice(20);
        got.splice(got.length - (bytes - 20) / 20);
        q.requeue(rest, { entries: batch, bytes });
        continue;
      }
      q.release(bytes);
      for (const e of batch) e.onWritten?.();
    }
    got.push(...sinkDrain(q));
    expect(got).toEqual(Array.from({ length: n }, (_, i) => i));
  });

  test("block: a full spool takes the entry, then makes the source wait until the sink frees space", async () => {
    const { q, spool } = setup({ memory: 20, spool: 60 });
    q.push(entry(0));
    for (let i = 1; i <= 2; i++) expect(q.push(entry(i))).toBeUndefined();
    const wait = q.push(entry(3));
    expect(wait).toBeInstanceOf(Promise);
    expect(spool!.bytes).toBe(80);
    let done = false;
    void wait!.then(() => (done = true));
    await settle();
    expect(done).toBe(false);
    expect(sinkDrain(q)).toEqual([0, 1, 2, 3]);
    await settle();
    expect(done).toBe(true);
  });

  test("drop-newest: a full spool drops new lines and counts them; nothing else is lost", () => {
    const { q, metrics } = setup({ memory: 20, spool: 60, whenFull: "drop-newest" });
    let cursorMoves = 0;
    for (let i = 0; i < 10; i++) expect(q.push(entry(i, 1, () => cursorMoves++))).toBeUndefined();
    expect(metrics.linesDropped.get({ reason: "when_full" })).toBe(7);
    expect(sinkDrain(q)).toEqual([0, 1, 2]);
    expect(cursorMoves).toBe(10); // dropped lines count as done for their cursors
  });

  test("spooled entries acknowledge (cursor may move) once synced to disk, before the sink writes them", () => {
    const { q, spool } = setup({ memory: 20, spool: 1000 });
    const acked: number[] = [];
    q.push(entry(0, 1, () => acked.push(0)));
    q.push(entry(1, 1, () => acked.push(1)));
    expect(acked).toEqual([]);
    spool!.sync();
    expect(acked).toEqual([0, 1]);
    expect(sinkDrain(q)).toEqual([0, 1]);
  });

  test("a batch the sink could not write is requeued in front; an outage then moves it to disk with the rest", () => {
    const { q, spool } = setup({ memory: 60, spool: 10_000 });
    const acked: number[] = [];
    for (let i = 0; i < 3; i++) q.push(entry(i, 1, () => acked.push(i)));
    const batch = q.take(1000);
    expect(batch.length).toBe(3);
    // line 0 went out, then the connection broke
    const whole = enc.encode(dec.decode(batch[0]!.parts[0]) + dec.decode(batch[1]!.parts[0]) + dec.decode(batch[2]!.parts[0]));
    q.requeue(whole.slice(20), { entries: batch, bytes: 60 });
    expect(q.pending).toBe(1);
    for (let i = 3; i < 6; i++) q.push(entry(i, 1, () => acked.push(i)));
    expect(spool!.bytes).toBe(5 * 20); // lines 1..5, the requeued ones first
    spool!.sync();
    expect(acked).toEqual([0, 1, 2, 3, 4, 5]);
    expect(sinkDrain(q)).toEqual([1, 2, 3, 4, 5]);
  });

  test("shutdown: the unwritten rest of the batch in flight and the memory queue go in front of the spool", () => {
    const { q, dir } = setup({ memory: 60, spool: 10_000 });
    const acked: number[] = [];
    q.push(entry(0, 1, () => acked.push(0)));
    q.push(entry(1, 1, () => acked.push(1)));
    const inflight = q.take(40); // lines 0 and 1; say only line 0 reached the collector
    expect(inflight.length).toBe(2);
    for (let i = 2; i < 6; i++) q.push(entry(i, 1, () => acked.push(i)));
    q.beginShutdown();
    expect(q.pending).toBe(0); // the spool is left alone
    const left = q.closeSpool(inflight[1]!.parts[0]!);
    expect(left).toBe(5 * 20);
    expect(acked.sort()).toEqual([0, 1, 2, 3, 4, 5]);
    const reopened = Spool.open(dir, 64).spool;
    const next = new OverflowQueue(new MemoryQueue(1000), reopened, 10_000, "block", new Metrics(), silentLogger);
    expect(sinkDrain(next)).toEqual([1, 2, 3, 4, 5]);
    reopened.close();
  });

  test("shutdown with a spool chunk in flight: its written part is committed, the rest is sent after restart", () => {
    const { q, dir } = setup({ memory: 20, spool: 10_000 });
    for (let i = 0; i < 6; i++) q.push(entry(i));
    expect(sinkDrain(q, 20)).toEqual([0, 1, 2, 3, 4, 5]);
    for (let i = 6; i < 12; i++) q.push(entry(i));
    const chunk = q.take(60)[0]!;
    expect(chunk.lines).toBe(3);
    q.beginShutdown();
    q.closeSpool(chunk.parts[0]!.subarray(20)); // first spool line written, two not
    const reopened = Spool.open(dir, 64).spool;
    const next = new OverflowQueue(new MemoryQueue(1000), reopened, 10_000, "block", new Metrics(), silentLogger);
    expect(sinkDrain(next)).toEqual([7, 8, 9, 10, 11]);
    reopened.close();
  });
});

describe("OverflowQueue without a spool", () => {
  test("drop-newest drops at the memory limit and counts the lines", () => {
    const { q, metrics } = setup({ memory: 40, whenFull: "drop-newest" });
    for (let i = 0; i < 5; i++) expect(q.push(entry(i, 1))).toBeUndefined();
    expect(metrics.linesDropped.get({ reason: "when_full" })).toBe(3);
    expect(sinkDrain(q)).toEqual([0, 1]);
    q.push(entry(5));
    expect(sinkDrain(q)).toEqual([5]);
  });

  test("block keeps the memory queue's backpressure", () => {
    const { q } = setup({ memory: 40 });
    q.push(entry(0));
    q.push(entry(1));
    expect(q.push(entry(2))).toBeInstanceOf(Promise);
  });
});
