import { expect, test } from "bun:test";
import { dropConsumed } from "../../src/fifo.ts";

test("everything consumed: the array empties, head 0", () => {
  const items = [1, 2, 3];
  expect(dropConsumed(items, 3)).toBe(0);
  expect(items).toEqual([]);
});

test("a small consumed front stays (no move per read)", () => {
  const items = Array.from({ length: 2000 }, (_, i) => i);
  expect(dropConsumed(items, 1000)).toBe(1000);
  expect(items.length).toBe(2000);
});

test("a large front over half the array is dropped in place, order kept", () => {
  const items = Array.from({ length: 2000 }, (_, i) => i);
  expect(dropConsumed(items, 1500)).toBe(0);
  expect(items).toEqual(Array.from({ length: 500 }, (_, i) => 1500 + i));
});

test("a large front under half the array stays", () => {
  const items = Array.from({ length: 5000 }, (_, i) => i);
  expect(dropConsumed(items, 2000)).toBe(2000);
  expect(items.length).toBe(5000);
});
