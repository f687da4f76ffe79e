// The bounded queue between the pipeline and the sink, measured in bytes.
// A producer always gets its entry in (so one oversized entry cannot deadlock),
// then waits while the queue holds more than its limit: that wait is the
// backpressure that stops sources from reading further.
import { dropConsumed } from "./fifo.ts";

export interface QueueEntry {
  /** Views of complete ndjson lines, each ending in "\n". */
  parts: Uint8Array[];
  bytes: number;
  lines: number;
  /** Called once every byte of this entry has been written to the sink. */
  onWritten?: () => void;
}

/**
 * What producers (sources) and the sink see of the queue: MemoryQueue alone, or
 * OverflowQueue (src/overflow-queue.ts) when a spool or --when-full drop-newest is set.
 */
export interface ByteQueue {
  /** Bytes queued plus bytes taken by the sink but not yet released. */
  readonly bytes: number;
  /** Entries (or spool chunks) the sink can take now. */
  readonly pending: number;
  /** Adds the entry; returns a promise to await before pushing more when full, else undefined. */
  push(entry: QueueEntry): Promise<void> | undefined;
  waitForData(): Promise<void>;
  wake(): void;
  take(maxBytes: number): QueueEntry[];
  /** The sink wrote the bytes of the batch it took last. */
  release(bytes: number): void;
  /**
   * Optional: the sink could not write the batch it took last; `rest` (whole lines,
   * its unwritten end) goes back in front of everything else. Queues without it
   * leave the batch with the sink, which resends it itself.
   */
  requeue?(rest: Uint8Array, batch: { entries: QueueEntry[]; bytes: number }): void;
}

export class MemoryQueue implements ByteQueue {
  /** Taken slots are set to null at once, so written chunks can be collected. */
  private entries: Array<QueueEntry | null> = [];
  private head = 0;
  /** Bytes queued plus bytes taken by the sink but not yet released. */
  private held = 0;
  private spaceWaiters: Array<() => void> = [];
  private dataWaiter: (() => void) | null = null;
  private emptyWaiters: Array<() => void> = [];

  constructor(readonly maxBytes: number) {}

  get bytes(): number {
    return this.held;
  }

  /** Entries not yet taken by the sink. */
  get pending(): number {
    return this.entries.length - this.head;
  }

  /** Adds the entry; returns a promise to await when the queue is over its limit, else undefined. */
  push(entry: QueueEntry): Promise<void> | undefined {
    this.entries.push(entry);
    this.held += entry.bytes;
    const w = this.dataWaiter;
    if (w) {
      this.dataWaiter = null;
      w();
    }
    if (this.held <= this.maxBytes) return undefined;
    return new Promise((resolve) => this.spaceWaiters.push(resolve));
  }

  /** Resolves when at least one entry can be taken. */
  waitForData(): Promise<void> {
    if (this.pending > 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.dataWaiter = resolve;
    });
  }

  /** Wakes a waitForData() caller without data (used on shutdown). */
  wake(): void {
    const w = this.dataWaiter;
    this.dataWaiter = null;
    w?.();
  }

  /** Takes entries up to about `maxBytes` (at least one if any is pending). */
  take(maxBytes: number): QueueEntry[] {
    const out: QueueEntry[] = [];
    let bytes = 0;
    while (this.head < this.entries.length) {
      const e = this.entries[this.head] as QueueEntry;
      if (out.length > 0 && bytes + e.bytes > maxBytes) break;
      this.entries[this.head] = null;
      out.push(e);
      bytes += e.bytes;
      this.head++;
    }
    this.head = dropConsumed(this.entries, this.head);
    return out;
  }

  /** Puts an entry back in front (a batch the sink could not write, to be taken first again). */
  unshift(entry: QueueEntry): void {
    if (this.head > 0) this.entries[--this.head] = entry;
    else this.entries.unshift(entry);
    this.held += entry.bytes;
  }

  /** The sink wrote `bytes` of taken entries: frees space and wakes producers. */
  release(bytes: number): void {
    this.held -= bytes;
    if (this.held <= this.maxBytes && this.spaceWaiters.length > 0) {
      const waiters = this.spaceWaiters;
      this.spaceWaiters = [];
      for (const w of waiters) w();
    }
    if (this.held === 0 && this.emptyWaiters.length > 0) {
      const waiters = this.emptyWaiters;
      this.emptyWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Resolves once everything pushed so far has been released. */
  drained(): Promise<void> {
    if (this.held === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptyWaiters.push(resolve));
  }
}
