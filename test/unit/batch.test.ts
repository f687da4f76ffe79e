import { describe, expect, test } from "bun:test";
import { Metrics } from "../../src/metrics.ts";
import { MemoryQueue, type QueueEntry } from "../../src/queue.ts";
import { BATCH_BYTES, BatchBuilder, completeBatch, resendOffset, type Batch } from "../../src/sinks/batch.ts";

const enc = new TextEncoder();
const text = (b: Uint8Array) => Buffer.from(b).toString();

function entryOf(...parts: string[]): QueueEntry {
  const ps = parts.map((p) => enc.encode(p));
  const bytes = ps.reduce((n, p) => n + p.length, 0);
  const lines = parts.join("").split("\n").length - 1;
  return { parts: ps, bytes, lines };
}

describe("BatchBuilder", () => {
  test("an empty queue gives null", () => {
    expect(new BatchBuilder().next(new MemoryQueue(100))).toBeNull();
  });

  test("one entry with one part: the batch buffer is that very view", () => {
    const q = new MemoryQueue(1000);
    const e = entryOf("a\nb\n");
    q.push(e);
    const batch = new BatchBuilder().next(q);
    expect(batch).not.toBeNull();
    expect(batch?.buf).toBe(e.parts[0] as Uint8Array);
    expect(batch?.lines).toBe(2);
    expect(batch?.offset).toBe(0);
    expect(batch?.entries).toEqual([e]);
  });

  test("several parts and entries are concatenated in order", () => {
    const q = new MemoryQueue(1000);
    q.push(entryOf("one\n", "two\n"));
    q.push(entryOf("three", "\n"));
    q.push(entryOf("four\n"));
    const batch = new BatchBuilder().next(q);
    if (!batch) throw new Error("batch expected");
    expect(text(batch.buf)).toBe("one\ntwo\nthree\nfour\n");
    expect(batch.buf.length).toBe(19);
    expect(batch.lines).toBe(4);
    expect(batch.entries.length).toBe(3);
    expect(q.pending).toBe(0);
  });

  test("a batch carries about BATCH_BYTES (at least one entry) and the rest follows", () => {
    const q = new MemoryQueue(1 << 30);
    const size = 100 * 1024;
    for (let i = 0; i < 12; i++) {
      const body = new Uint8Array(size).fill(0x61 + i);
      body[size - 1] = 10;
      q.push({ parts: [body.subarray(0, 10), body.subarray(10)], bytes: size, lines: 1 });
    }
    const bb = new BatchBuilder();
    const sizes: number[] = [];
    let first = -1;
    for (let b = bb.next(q); b; b = bb.next(q)) {
      expect(b.buf.length).toBeLessThanOrEqual(BATCH_BYTES);
      if (first < 0) first = b.buf[0] as number;
      sizes.push(b.entries.length);
      // Each entry's bytes arrive contiguous and in order.
      for (let i = 0; i < b.entries.length; i++) expect(b.buf[i * size + 5]).toBe(b.buf[i * size] as number);
    }
    expect(first).toBe(0x61);
    expect(sizes).toEqual([5, 5, 2]);
    // One entry larger than the scratch buffer still makes a batch.
    const huge = new Uint8Array(BATCH_BYTES * 3).fill(0x62);
    q.push({ parts: [huge.subarray(0, 1), huge.subarray(1)], bytes: huge.length, lines: 1 });
    const hb = bb.next(q);
    expect(hb?.buf.length).toBe(huge.length);
    expect(hb?.buf.every((x) => x === 0x62)).toBe(true);
  });
});

describe("resendOffset", () => {
  const batchOf = (s: string, offset: number): Batch => ({ entries: [], buf: enc.encode(s), lines: 0, offset });

  test("is the start of the first line not wholly written, at every offset", () => {
    const s = "ab\ncde\n\nf\nghij\n";
    const starts = [0, 3, 7, 8, 10]; // line starts
    for (let off = 0; off <= s.length; off++) {
      let want = 0;
      for (const st of starts) if (st <= off) want = st;
      if (off === s.length) want = s.length;
      expect([off, resendOffset(batchOf(s, off))]).toEqual([off, want]);
    }
  });

  test("out-of-range offsets clamp", () => {
    expect(resendOffset(batchOf("a\n", -5))).toBe(0);
    expect(resendOffset(batchOf("a\n", 99))).toBe(2);
  });
});

describe("completeBatch", () => {
  test("releases the queue, acknowledges each entry once and counts", async () => {
    const q = new MemoryQueue(9);
    const m = new Metrics();
    const acks: string[] = [];
    const a = { ...entryOf("aaaa\n", "bb\n"), onWritten: () => acks.push("a") };
    const b = { ...entryOf("c\n"), onWritten: () => acks.push("b") };
    q.push(a);
    let released = false;
    const wait = q.push(b);
    expect(wait).toBeInstanceOf(Promise);
    wait?.then(() => {
      released = true;
    });
    const batch = new BatchBuilder().next(q);
    if (!batch) throw new Error("batch expected");
    expect(q.bytes).toBe(10);
    const drained = q.drained();
    completeBatch(batch, q, m);
    await drained;
    await Promise.resolve();
    expect(released).toBe(true);
    expect(acks).toEqual(["a", "b"]);
    expect(q.bytes).toBe(0);
    expect(m.linesForwarded.get()).toBe(3);
    expect(m.bytesForwarded.get()).toBe(10);
    expect(m.queueBytes.get()).toBe(0);
    expect(m.lastWriteSeconds.get()).toBeGreaterThan(1_600_000_000);
  });
});
