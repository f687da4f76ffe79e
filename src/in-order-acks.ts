// Acknowledgements released strictly in the order their items were added.
// Why: with a disk spool, a stream's newer lines can be safe on disk (and
// acknowledged) while its older lines still wait in memory for the sink; a
// cursor moved by the newer acknowledgement would skip the older lines after a
// crash. Items done out of order wait here until everything before them is done.

import { dropConsumed } from "./fifo.ts";

interface Item<T> {
  value: T;
  done: boolean;
}

export class InOrderAcks<T> {
  private items: Array<Item<T> | null> = [];
  private head = 0;

  /**
   * `onAck` runs once per item, in order. `mergeable(a, b)`: b's acknowledgement
   * makes a's redundant, so a done `a` directly before a done `b` may be dropped
   * (keeps the list short while an old item blocks many done ones).
   */
  constructor(
    private readonly onAck: (value: T) => void,
    private readonly mergeable: (a: T, b: T) => boolean = () => false,
  ) {}

  /** Items added but not yet acknowledged through onAck. */
  get pending(): number {
    return this.items.length - this.head;
  }

  /** Adds an item; the returned function marks it done (idempotent). */
  add(value: T): () => void {
    this.compactTail();
    const item: Item<T> = { value, done: false };
    this.items.push(item);
    return () => {
      if (item.done) return;
      item.done = true;
      this.advance();
    };
  }

  private advance(): void {
    while (this.head < this.items.length) {
      const item = this.items[this.head] as Item<T>;
      if (!item.done) break;
      this.items[this.head] = null;
      this.head++;
      this.onAck(item.value);
    }
    this.head = dropConsumed(this.items, this.head);
  }

  private compactTail(): void {
    const n = this.items.length;
    if (n - this.head < 3) return; // never touch the head: it is what everything waits for
    const last = this.items[n - 1] as Item<T>;
    const prev = this.items[n - 2] as Item<T>;
    if (last.done && prev.done && this.mergeable(prev.value, last.value)) {
      this.items[n - 2] = last;
      this.items.pop();
    }
  }
}
