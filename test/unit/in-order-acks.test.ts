import { expect, test } from "bun:test";
import { InOrderAcks } from "../../src/in-order-acks.ts";

test("acknowledgements run in the order items were added, whatever order they are done in", () => {
  const seen: number[] = [];
  const acks = new InOrderAcks<number>((v) => seen.push(v));
  const done = [0, 1, 2, 3].map((v) => acks.add(v));
  done[2]!();
  done[1]!();
  expect(seen).toEqual([]);
  expect(acks.pending).toBe(4);
  done[0]!();
  expect(seen).toEqual([0, 1, 2]);
  done[0]!(); // idempotent
  done[3]!();
  expect(seen).toEqual([0, 1, 2, 3]);
  expect(acks.pending).toBe(0);
});

test("while an old item blocks, mergeable done items behind it are folded (bounded list), the last value still arrives", () => {
  const seen: number[] = [];
  const acks = new InOrderAcks<number>((v) => seen.push(v), () => true);
  const first = acks.add(0);
  for (let i = 1; i <= 10_000; i++) acks.add(i)();
  expect(acks.pending).toBeLessThan(5);
  first();
  expect(seen[0]).toBe(0);
  expect(seen[seen.length - 1]).toBe(10_000);
  expect(seen).toEqual([...seen].sort((a, b) => a - b));
});
