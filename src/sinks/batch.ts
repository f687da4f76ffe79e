// Turns queued entries into one contiguous buffer: one write per batch, never per line.
import type { ByteQueue, QueueEntry } from "../queue.ts";
import type { Metrics } from "../metrics.ts";
import { countLines } from "../pipeline/lines.ts";

/** About how much one write carries. */
export const BATCH_BYTES = 512 * 1024;

export interface Batch {
  entries: QueueEntry[];
  buf: Uint8Array;
  lines: number;
  /** Bytes of buf accepted by the current connection. */
  offset: number;
}

export class BatchBuilder {
  /** Allocated at the first batch of several parts, not at start-up (1 MiB to zero-fill before the first line). */
  private scratch: Uint8Array | null = null;

  /** Builds the next batch from the queue, or null when it is empty. */
  next(queue: ByteQueue): Batch | null {
    const entries = queue.take(BATCH_BYTES);
    if (entries.length === 0) return null;
    let bytes = 0;
    let lines = 0;
    let single: Uint8Array | null = null;
    let partCount = 0;
    for (const e of entries) {
      bytes += e.bytes;
      lines += e.lines;
      for (const p of e.parts) {
        single = p;
        partCount++;
      }
    }
    let buf: Uint8Array;
    if (partCount === 1 && single) {
      buf = single;
    } else {
      // The previous batch is fully written before next() is called, so the scratch is free.
      if (this.scratch === null || this.scratch.length < bytes) this.scratch = Buffer.allocUnsafe(Math.max(bytes, BATCH_BYTES * 2));
      buf = this.scratch.subarray(0, bytes);
      let off = 0;
      for (const e of entries) {
        for (const p of e.parts) {
          buf.set(p, off);
          off += p.length;
        }
      }
    }
    return { entries, buf, lines, offset: 0 };
  }
}

/** After a batch is written: frees queue space, runs acknowledgements, counts. */
export function completeBatch(batch: Batch, queue: ByteQueue, metrics: Metrics): void {
  queue.release(batch.buf.length);
  for (const e of batch.entries) e.onWritten?.();
  metrics.linesForwarded.inc(batch.lines);
  metrics.bytesForwarded.inc(batch.buf.length);
  metrics.lastWriteSeconds.set(Date.now() / 1000);
}

/** Start of the first line not wholly accepted: a retry resends whole lines only. */
export function resendOffset(batch: Batch): number {
  if (batch.offset <= 0) return 0;
  if (batch.offset >= batch.buf.length) return batch.buf.length;
  return batch.buf.lastIndexOf(10, batch.offset - 1) + 1;
}

/** Hands the unwritten end of a failed batch back to the queue (see ByteQueue.requeue); counts the lines that did go out. */
export function requeueRest(batch: Batch, queue: ByteQueue, metrics: Metrics): void {
  const rest = batch.buf.slice(batch.offset);
  metrics.linesForwarded.inc(batch.lines - countLines(rest));
  metrics.bytesForwarded.inc(batch.offset);
  queue.requeue?.(rest, { entries: batch.entries, bytes: batch.buf.length });
}
