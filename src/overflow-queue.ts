// What happens when the memory queue is full: lines go on to the disk spool
// (--buffer-dir), or are dropped and counted (--when-full drop-newest), or the
// sources wait (the default, MemoryQueue alone).
//
// Order: once a line went to the spool, every later line follows it there until
// the sink has taken everything from the spool; lines still in memory are older
// than anything spooled, so the sink takes memory first, then the spool.
import type { WhenFull } from "./config.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import { countLines } from "./pipeline/lines.ts";
import type { ByteQueue, MemoryQueue, QueueEntry } from "./queue.ts";
import type { Spool, SpoolChunk } from "./spool/spool.ts";

/** The batch the sink holds now, so that a shutdown can put its unwritten rest back. */
type Taken = { from: "memory"; entries: QueueEntry[] } | { from: "spool"; chunk: SpoolChunk };

const WHEN_FULL_DROPPED = { reason: "when_full" } as const;

const SPOOL_RETRY_MS = 1000;

export class OverflowQueue implements ByteQueue {
  private dataWaiter: (() => void) | null = null;
  private spaceWaiters: Array<() => void> = [];
  private taken: Taken | null = null;
  private stopping = false;

  constructor(
    private readonly memory: MemoryQueue,
    private readonly spool: Spool | null,
    private readonly spoolMaxBytes: number,
    private readonly whenFull: WhenFull,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  get bytes(): number {
    return this.memory.bytes + (this.spool?.bytes ?? 0);
  }

  get pending(): number {
    return this.memory.pending + (this.spool !== null && !this.stopping && this.spool.unread > 0 ? 1 : 0);
  }

  push(entry: QueueEntry): Promise<void> | undefined {
    const spool = this.spool;
    const spilling = spool !== null && spool.unread > 0;
    if (!spilling && (this.memory.bytes === 0 || this.memory.bytes + entry.bytes <= this.memory.maxBytes)) {
      this.memory.push(entry);
      this.wakeData();
      return undefined;
    }
    if (spool === null) {
      if (this.whenFull === "drop-newest") return this.drop(entry);
      const wait = this.memory.push(entry);
      this.wakeData();
      return wait;
    }
    // Memory is full: what waits there goes to disk first (it is older), so that
    // every line past the batch in flight is on disk and acknowledged in order.
    if (!spilling) this.spillMemory(spool);
    const full = spool.bytes > 0 && spool.bytes + entry.bytes > this.spoolMaxBytes;
    if (full && this.whenFull === "drop-newest") return this.drop(entry);
    if (!this.appendToSpool(spool, entry)) return this.retryAppend(spool, entry);
    // Block: the entry is in (so nothing waits outside the spool), the source waits.
    return full ? this.waitForSpace() : undefined;
  }

  waitForData(): Promise<void> {
    if (this.pending > 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.dataWaiter = resolve;
    });
  }

  wake(): void {
    this.wakeData();
  }

  take(maxBytes: number): QueueEntry[] {
    if (this.memory.pending > 0) {
      const entries = this.memory.take(maxBytes);
      this.taken = { from: "memory", entries };
      return entries;
    }
    if (this.spool === null || this.stopping) return [];
    const chunk = this.spool.read(maxBytes);
    if (chunk === null) return [];
    this.taken = { from: "spool", chunk };
    const spool = this.spool;
    return [
      {
        parts: [chunk.buf],
        bytes: chunk.buf.length,
        lines: chunk.lines,
        onWritten: () => {
          spool.commit(chunk.end);
          this.wakeSpace();
        },
      },
    ];
  }

  release(bytes: number): void {
    const taken = this.taken;
    this.taken = null;
    if (taken?.from === "memory") this.memory.release(bytes);
  }

  requeue(rest: Uint8Array, batch: { entries: QueueEntry[]; bytes: number }): void {
    const taken = this.taken;
    this.taken = null;
    if (taken?.from === "spool" && this.spool !== null) {
      // Still on disk: commit what was written and read the rest again.
      commitWritten(this.spool, taken.chunk, rest.length);
      this.spool.rewind();
      this.wakeSpace();
    } else {
      this.memory.release(batch.bytes);
      const acks = batch.entries.map((e) => e.onWritten).filter((f): f is () => void => f !== undefined);
      const entry: QueueEntry = { parts: [rest], bytes: rest.length, lines: countLines(rest) };
      if (acks.length > 0) entry.onWritten = () => acks.forEach((f) => f());
      this.memory.unshift(entry);
    }
    this.wakeData();
  }

  /** Shutdown, first step: the sink finishes what is in memory and leaves the spool alone. */
  beginShutdown(): void {
    this.stopping = true;
    this.wakeSpace();
  }

  /**
   * Shutdown, last step (after the sink stopped): what the sink did not write goes
   * to the front of the spool, then the spool is closed. `unwritten` is the rest
   * of the batch the sink held. Returns the bytes left on disk.
   */
  closeSpool(unwritten: Uint8Array | null): number {
    const spool = this.spool;
    if (spool === null) return 0;
    const taken = this.taken;
    this.taken = null;
    const front: Uint8Array[] = [];
    const written: Array<() => void> = [];
    if (taken?.from === "spool" && unwritten !== null) {
      commitWritten(spool, taken.chunk, unwritten.length);
    } else if (taken?.from === "memory" && unwritten !== null) {
      front.push(unwritten);
      for (const e of taken.entries) if (e.onWritten) written.push(e.onWritten);
    }
    while (this.memory.pending > 0) {
      for (const e of this.memory.take(Number.MAX_SAFE_INTEGER)) {
        front.push(...e.parts);
        if (e.onWritten) written.push(e.onWritten);
      }
    }
    try {
      spool.prepend(front);
      // On disk for good: the Kubernetes cursors may now move past these lines.
      for (const w of written) w();
    } catch (e) {
      this.log.error("cannot move the queued lines to the spool; they are lost unless their source sends them again", {
        error: e instanceof Error ? e.message : String(e),
        bytes: front.reduce((n, p) => n + p.length, 0),
      });
    }
    spool.close();
    return spool.bytes;
  }

  /** Moves every entry waiting in memory (not the batch in flight) to the spool, in order. */
  private spillMemory(spool: Spool): void {
    while (this.memory.pending > 0) {
      const entries = this.memory.take(Number.MAX_SAFE_INTEGER);
      // They all leave memory; those the disk refuses come back in front below.
      this.memory.release(entries.reduce((n, e) => n + e.bytes, 0));
      for (let i = 0; i < entries.length; i++) {
        if (this.appendToSpool(spool, entries[i] as QueueEntry)) continue;
        // Keep the rest in memory, in order, and let the source wait there.
        for (let j = entries.length - 1; j >= i; j--) this.memory.unshift(entries[j] as QueueEntry);
        return;
      }
    }
  }

  private appendToSpool(spool: Spool, entry: QueueEntry): boolean {
    try {
      spool.append(entry.parts, entry.bytes, entry.onWritten);
    } catch (e) {
      this.log.warnLimited("spool-write", "cannot write to the spool; sources wait (free disk space in --buffer-dir or raise its quota)", {
        error: e instanceof Error ? e.message : String(e),
      });
      return false;
    }
    this.metrics.linesSpooled.inc(entry.lines);
    this.wakeData();
    return true;
  }

  /** A failed spool write (disk full): drop-newest drops, block retries until the disk takes it. */
  private retryAppend(spool: Spool, entry: QueueEntry): Promise<void> | undefined {
    if (this.whenFull === "drop-newest") return this.drop(entry);
    return new Promise<void>((resolve) => {
      const attempt = () => {
        if (this.stopping || this.appendToSpool(spool, entry)) resolve();
        else setTimeout(attempt, SPOOL_RETRY_MS);
      };
      setTimeout(attempt, SPOOL_RETRY_MS);
    });
  }

  /**
   * --when-full drop-newest. The entry counts as done for its cursor: the lines
   * are given up, and a cursor held behind them would stop every later line of
   * the stream from being acknowledged (and a restart would send them all again).
   */
  private drop(entry: QueueEntry): undefined {
    entry.onWritten?.();
    this.metrics.linesDropped.inc(entry.lines, WHEN_FULL_DROPPED);
    this.log.warnLimited("when-full", "queue full, dropping new lines (--when-full drop-newest); the sink is down or slower than the sources", {
      lines: entry.lines,
    });
    return undefined;
  }

  private waitForSpace(): Promise<void> {
    return new Promise((resolve) => this.spaceWaiters.push(resolve));
  }

  private wakeSpace(): void {
    if (this.spaceWaiters.length === 0) return;
    if (!this.stopping && this.spool !== null && this.spool.bytes > this.spoolMaxBytes) return;
    const waiters = this.spaceWaiters;
    this.spaceWaiters = [];
    for (const w of waiters) w();
  }

  private wakeData(): void {
    const w = this.dataWaiter;
    this.dataWaiter = null;
    w?.();
  }
}

/** The first `chunk.buf.length - unwritten` bytes of a spool chunk reached the sink (a line boundary). */
function commitWritten(spool: Spool, chunk: SpoolChunk, unwritten: number): void {
  spool.commit({ seq: chunk.start.seq, offset: chunk.end.offset - unwritten });
}
