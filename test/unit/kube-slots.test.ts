import { afterEach, describe, expect, jest, test } from "bun:test";
import { SlotPool, type SlotHolder } from "../../src/sources/kubernetes/slots.ts";

class Holder implements SlotHolder {
  yields = 0;
  release: (() => void) | null = null;
  private onYield: (() => void) | null = null;
  constructor(readonly name: string) {}
  yieldSlot(): void {
    this.yields++;
    const f = this.onYield;
    this.onYield = null;
    f?.();
  }
  /** Resolves at the next yieldSlot(). */
  yielded(): Promise<void> {
    return new Promise((resolve) => {
      this.onYield = resolve;
    });
  }
}

function pool(max: number, fairShareMs = 0) {
  const changes: Array<[number, number]> = [];
  const p = new SlotPool(max, fairShareMs, (a, w) => changes.push([a, w]));
  return { p, changes };
}

const pools: SlotPool[] = [];
afterEach(() => {
  for (const p of pools.splice(0)) p.stop();
  jest.useRealTimers();
});

/** Lets promise callbacks run (grants resolve in microtasks). */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

describe("SlotPool", () => {
  test("max 0: no cap, everything granted at once", async () => {
    const { p, changes } = pool(0, 20);
    const ac = new AbortController();
    const releases = await Promise.all(Array.from({ length: 500 }, (_, i) => p.acquire(new Holder(`h${i}`), ac.signal)));
    expect(p.active).toBe(500);
    expect(p.queued).toBe(0);
    expect(changes.at(-1)).toEqual([500, 0]);
    for (const r of releases) r();
    expect(p.active).toBe(0);
    expect(changes.at(-1)).toEqual([0, 0]);
  });

  test("max N: FIFO grants; a release wakes the next at once", async () => {
    const { p, changes } = pool(2);
    pools.push(p);
    const ac = new AbortController();
    const order: string[] = [];
    const holders = ["a", "b", "c", "d", "e"].map((n) => new Holder(n));
    const grants = holders.map((h) =>
      p.acquire(h, ac.signal).then((release) => {
        order.push(h.name);
        h.release = release;
      }),
    );
    await settle();
    expect(order).toEqual(["a", "b"]);
    expect(p.active).toBe(2);
    expect(p.queued).toBe(3);
    expect(changes.at(-1)).toEqual([2, 3]);

    holders[0]?.release?.();
    // The slot moves to the next waiter inside release(), before any timer.
    expect(p.active).toBe(2);
    expect(p.queued).toBe(2);
    expect(changes.at(-1)).toEqual([2, 2]);
    await settle();
    expect(order).toEqual(["a", "b", "c"]);

    holders[2]?.release?.();
    holders[1]?.release?.();
    await settle();
    expect(order).toEqual(["a", "b", "c", "d", "e"]);
    expect(p.queued).toBe(0);
    await Promise.all(grants);
    for (const h of holders.slice(3)) h.release?.();
    expect(p.active).toBe(0);
    expect(changes.at(-1)).toEqual([0, 0]);
  });

  test("a release called twice frees one slot only", async () => {
    const { p } = pool(1);
    pools.push(p);
    const ac = new AbortController();
    const r1 = await p.acquire(new Holder("a"), ac.signal);
    let got2 = false;
    let got3 = false;
    void p.acquire(new Holder("b"), ac.signal).then(() => (got2 = true));
    void p.acquire(new Holder("c"), ac.signal).then(() => (got3 = true));
    r1();
    r1();
    await settle();
    expect(got2).toBe(true);
    expect(got3).toBe(false);
    expect(p.active).toBe(1);
    expect(p.queued).toBe(1);
  });

  test("a new acquirer does not jump the queue", async () => {
    const { p } = pool(1);
    pools.push(p);
    const ac = new AbortController();
    const order: string[] = [];
    const r1 = await p.acquire(new Holder("a"), ac.signal);
    void p.acquire(new Holder("b"), ac.signal).then((r) => {
      order.push("b");
      r();
    });
    r1();
    void p.acquire(new Holder("c"), ac.signal).then((r) => {
      order.push("c");
      r();
    });
    await settle();
    expect(order).toEqual(["b", "c"]);
  });

  test("acquire with an already aborted signal rejects and queues nothing", async () => {
    const { p } = pool(1);
    pools.push(p);
    const live = new AbortController();
    const r1 = await p.acquire(new Holder("a"), live.signal);
    const dead = new AbortController();
    dead.abort(new Error("stopped"));
    await expect(p.acquire(new Holder("x"), dead.signal)).rejects.toThrow("stopped");
    expect(p.queued).toBe(0);
    // The slot is not handed to the aborted caller when it frees.
    r1();
    expect(p.active).toBe(0);
  });

  test("abort while waiting rejects and leaves the queue; the others keep their order", async () => {
    const { p, changes } = pool(1);
    pools.push(p);
    const live = new AbortController();
    const r1 = await p.acquire(new Holder("a"), live.signal);
    const acB = new AbortController();
    const b = p.acquire(new Holder("b"), acB.signal);
    const order: string[] = [];
    const c = p.acquire(new Holder("c"), live.signal).then((r) => {
      order.push("c");
      return r;
    });
    expect(p.queued).toBe(2);
    acB.abort();
    await expect(b).rejects.toThrow();
    expect(p.queued).toBe(1);
    expect(changes.at(-1)).toEqual([1, 1]);
    r1();
    const rc = await c;
    expect(order).toEqual(["c"]);
    expect(p.active).toBe(1);
    rc();
    expect(p.active).toBe(0);
    expect(p.queued).toBe(0);
  });

  test("an abort after the grant changes nothing", async () => {
    const { p } = pool(1);
    pools.push(p);
    const ac = new AbortController();
    const r = await p.acquire(new Holder("a"), ac.signal);
    ac.abort();
    expect(p.active).toBe(1);
    r();
    expect(p.active).toBe(0);
  });

  describe("rotation (fake timers)", () => {
    test("with waiters, holders over the fair share yield: one per waiter, oldest first", async () => {
      jest.useFakeTimers();
      const { p } = pool(3, 1000);
      pools.push(p);
      const ac = new AbortController();
      const hs = [new Holder("h0"), new Holder("h1"), new Holder("h2")];
      for (const h of hs) {
        h.release = await p.acquire(h, ac.signal);
        jest.advanceTimersByTime(100); // h0 is the oldest, then h1, then h2
      }
      const w1 = new Holder("w1");
      let w1Release: (() => void) | null = null;
      void p.acquire(w1, ac.signal).then((r) => (w1Release = r));
      // Nobody is over the fair share yet (h0 has held 300 ms).
      jest.advanceTimersByTime(500);
      expect(hs.map((h) => h.yields)).toEqual([0, 0, 0]);
      // h0 passes 1000 ms: exactly one holder (the oldest) is asked.
      jest.advanceTimersByTime(500);
      expect(hs.map((h) => h.yields)).toEqual([1, 0, 0]);
      // Asked once only, though it has not released yet.
      jest.advanceTimersByTime(2000);
      expect(hs.map((h) => h.yields)).toEqual([1, 0, 0]);

      // A second waiter: the next oldest is asked.
      const w2 = new Holder("w2");
      void p.acquire(w2, ac.signal);
      jest.advanceTimersByTime(300);
      expect(hs.map((h) => h.yields)).toEqual([1, 1, 0]);

      // h0 gives its slot back: w1 gets it, with a fresh fair share.
      hs[0]?.release?.();
      await settle();
      expect(w1Release).not.toBeNull();
      jest.advanceTimersByTime(300);
      expect(w1.yields).toBe(0);
      expect(hs[2]?.yields).toBe(0);
    });

    test("no rotation when nobody waits", () => {
      jest.useFakeTimers();
      const { p } = pool(2, 100);
      pools.push(p);
      const ac = new AbortController();
      const h = new Holder("h");
      void p.acquire(h, ac.signal);
      jest.advanceTimersByTime(10_000);
      expect(h.yields).toBe(0);
    });

    test("rotation stops when the last waiter leaves", async () => {
      jest.useFakeTimers();
      const { p } = pool(1, 100);
      pools.push(p);
      const live = new AbortController();
      const h = new Holder("h");
      await p.acquire(h, live.signal);
      const ac = new AbortController();
      const w = p.acquire(new Holder("w"), ac.signal);
      jest.advanceTimersByTime(50);
      ac.abort();
      await expect(w).rejects.toThrow();
      jest.advanceTimersByTime(10_000);
      expect(h.yields).toBe(0);
    });

    test("fair share 0 disables rotation", () => {
      jest.useFakeTimers();
      const { p } = pool(1, 0);
      pools.push(p);
      const ac = new AbortController();
      const h = new Holder("h");
      void p.acquire(h, ac.signal);
      void p.acquire(new Holder("w"), ac.signal);
      jest.advanceTimersByTime(60_000);
      expect(h.yields).toBe(0);
    });
  });

  test("rotation with real timers: the holder yields, the waiter gets the slot", async () => {
    const { p } = pool(1, 20);
    pools.push(p);
    const ac = new AbortController();
    const h = new Holder("h");
    const yielded = h.yielded();
    const release = await p.acquire(h, ac.signal);
    const granted = p.acquire(new Holder("w"), ac.signal);
    await yielded;
    expect(h.yields).toBe(1);
    release();
    const r = await granted;
    expect(p.active).toBe(1);
    r();
  });
});
