import { describe, expect, test } from "bun:test";
import { MemoryQueue, type QueueEntry } from "../../src/queue.ts";

const entry = (bytes: number, lines = 1): QueueEntry => ({ parts: [new Uint8Array(bytes)], bytes, lines });

/** Lets pending promise callbacks run (no timers involved). */
async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

function track(p: Promise<void> | undefined): { done: boolean } {
  const s = { done: false };
  p?.then(() => {
    s.done = true;
  });
  return s;
}

describe("MemoryQueue", () => {
  test("push under or at the limit returns undefined", () => {
    const q = new MemoryQueue(100);
    expect(q.push(entry(40))).toBeUndefined();
    expect(q.push(entry(60))).toBeUndefined();
    expect(q.bytes).toBe(100);
    expect(q.pending).toBe(2);
  });

  test("push over the limit returns a promise that resolves only once release() brings it under", async () => {
    const q = new MemoryQueue(100);
    q.push(entry(80));
    const p = q.push(entry(50));
    expect(p).toBeInstanceOf(Promise);
    const s = track(p);
    await flush();
    expect(s.done).toBe(false);
    // Taking does not free space: the bytes are held until the sink releases them.
    const taken = q.take(1000);
    expect(taken.length).toBe(2);
    await flush();
    expect(s.done).toBe(false);
    q.release(20); // 110 held: still over
    await flush();
    expect(s.done).toBe(false);
    q.release(10); // 100: at the limit
    await flush();
    expect(s.done).toBe(true);
  });

  test("every waiting producer is woken", async () => {
    const q = new MemoryQueue(10);
    const a = track(q.push(entry(20)));
    const b = track(q.push(entry(20)));
    q.take(100);
    q.release(40);
    await flush();
    expect(a.done && b.done).toBe(true);
  });

  test("an oversized single entry is accepted and its producer is released once it is written", async () => {
    const q = new MemoryQueue(10);
    const p = q.push(entry(1000));
    const s = track(p);
    expect(q.pending).toBe(1);
    const [e] = q.take(10);
    expect(e?.bytes).toBe(1000);
    q.release(1000);
    await flush();
    expect(s.done).toBe(true);
    expect(q.bytes).toBe(0);
  });

  test("take() respects maxBytes but always takes at least one, in order", () => {
    const q = new MemoryQueue(1 << 20);
    for (const n of [30, 30, 30, 500, 10]) q.push(entry(n));
    expect(q.take(70).map((e) => e.bytes)).toEqual([30, 30]);
    expect(q.take(10).map((e) => e.bytes)).toEqual([30]);
    expect(q.take(10).map((e) => e.bytes)).toEqual([500]);
    expect(q.take(1000).map((e) => e.bytes)).toEqual([10]);
    expect(q.take(1000)).toEqual([]);
    expect(q.pending).toBe(0);
  });

  test("take() exactly at maxBytes includes the entry", () => {
    const q = new MemoryQueue(1000);
    q.push(entry(50));
    q.push(entry(50));
    q.push(entry(1));
    expect(q.take(100).length).toBe(2);
  });

  test("many entries (compaction) keep their order", () => {
    const q = new MemoryQueue(1 << 30);
    const N = 5000;
    for (let i = 0; i < N; i++) q.push(entry(i + 1));
    const seen: number[] = [];
    while (q.pending > 0) {
      for (const e of q.take(3000)) seen.push(e.bytes);
      if (seen.length % 7 === 0) q.push(entry(N + seen.length + 1));
    }
    const firsts = seen.filter((x) => x <= N);
    expect(firsts).toEqual(Array.from({ length: N }, (_, i) => i + 1));
  });

  test("waitForData resolves at once with data pending, else on the next push", async () => {
    const q = new MemoryQueue(100);
    q.push(entry(1));
    const now = track(q.waitForData());
    await flush();
    expect(now.done).toBe(true);
    q.take(100);
    const later = track(q.waitForData());
    await flush();
    expect(later.done).toBe(false);
    q.push(entry(1));
    await flush();
    expect(later.done).toBe(true);
  });

  test("wake() releases a waitForData() without data", async () => {
    const q = new MemoryQueue(100);
    const w = track(q.waitForData());
    await flush();
    expect(w.done).toBe(false);
    q.wake();
    await flush();
    expect(w.done).toBe(true);
    expect(q.pending).toBe(0);
    q.wake(); // no waiter: harmless
  });

  test("drained() resolves once everything pushed was released", async () => {
    const q = new MemoryQueue(100);
    const empty = track(q.drained());
    await flush();
    expect(empty.done).toBe(true);
    q.push(entry(10));
    q.push(entry(20));
    const d = track(q.drained());
    q.take(100);
    q.release(10);
    await flush();
    expect(d.done).toBe(false);
    q.release(20);
    await flush();
    expect(d.done).toBe(true);
  });
});
