// Arrays used as FIFOs with a read index (`head`): Array#shift would move the
// whole array on every call. What was consumed is dropped here instead: at
// once when everything was, else only when it is over half the array (and more
// than a few), so the cost of the move is spread over the reads.

/** Below this many consumed items the front is left as it is. */
const MIN_DROP = 1024;

/** Drops items[0, head) in place when it is worth it; returns the new head. */
export function dropConsumed<T>(items: T[], head: number): number {
  if (head === items.length) {
    items.length = 0;
    return 0;
  }
  if (head > MIN_DROP && head * 2 > items.length) {
    items.splice(0, head);
    return 0;
  }
  return head;
}
