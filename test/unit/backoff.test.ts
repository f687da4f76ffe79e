import { describe, expect, jest, test } from "bun:test";
import { Backoff, sleep } from "../../src/backoff.ts";

describe("Backoff", () => {
  test("doubles from the first delay up to the ceiling", () => {
    const b = new Backoff(500, 30_000);
    const seq = Array.from({ length: 10 }, () => b.next());
    expect(seq).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
  });

  test("reset() goes back to the first delay", () => {
    const b = new Backoff(100, 1000);
    b.next();
    b.next();
    b.next();
    b.reset();
    expect([b.next(), b.next()]).toEqual([100, 200]);
  });

  test("a ceiling below the first delay never shortens it", () => {
    const b = new Backoff(1000, 300);
    expect([b.next(), b.next(), b.next()]).toEqual([1000, 1000, 1000]);
  });

  test("equal first delay and ceiling: constant", () => {
    const b = new Backoff(250, 250);
    expect([b.next(), b.next()]).toEqual([250, 250]);
  });

  test("a first delay of 0 still grows (to the ceiling)", () => {
    const b = new Backoff(0, 5);
    expect(Array.from({ length: 6 }, () => b.next())).toEqual([0, 1, 2, 4, 5, 5]);
  });

  test("never overflows after many failures", () => {
    const b = new Backoff(500, 30_000);
    for (let i = 0; i < 10_000; i++) b.next();
    expect(b.next()).toBe(30_000);
  });
});

describe("sleep", () => {
  test("0 or negative resolves at once", async () => {
    await sleep(0);
    await sleep(-1);
  });

  test("an already aborted signal resolves at once", async () => {
    const c = new AbortController();
    c.abort();
    const t0 = performance.now();
    await sleep(60_000, c.signal);
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  test("aborting during the wait resolves it at once", async () => {
    const c = new AbortController();
    const t0 = performance.now();
    const p = sleep(60_000, c.signal);
    queueMicrotask(() => c.abort());
    await p;
    expect(performance.now() - t0).toBeLessThan(1000);
    // Aborting again later is harmless (the listener is gone).
    c.abort();
  });

  test("without abort it resolves after the delay, not before (fake timers)", async () => {
    jest.useFakeTimers();
    try {
      let done = false;
      const p = sleep(5000).then(() => {
        done = true;
      });
      jest.advanceTimersByTime(4999);
      await Promise.resolve();
      expect(done).toBe(false);
      jest.advanceTimersByTime(1);
      await p;
      expect(done).toBe(true);
    } finally {
      jest.useRealTimers();
    }
  });
});
