// Byte chunks -> lines, as offsets into the chunk (no copy where a line lies
// inside one chunk; chunks are seen as Buffers so callers can copy and
// decode ranges without creating a view per line).
// Handles LF and CRLF ends, lines split across chunks, a last line without a
// newline at EOF, and lines longer than a maximum (dropped and reported).

/**
 * Called for each line: the line's content is buf[start, end) (line end removed);
 * `lf` is true when buf[end] is the "\n" that ended it (so buf[start, end + 1)
 * is the line with its newline, ready to forward without a copy).
 */
export type OnLine = (buf: Buffer, start: number, end: number, lf: boolean) => void;

/** The same bytes as a Buffer, without a copy. */
export function asBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

const LF = 10;
const CR = 13;

/** Newline-terminated lines in `buf` (the queue, spool and sink count whole ndjson lines). */
export function countLines(buf: Uint8Array): number {
  let n = 0;
  for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) n++;
  return n;
}

export class LineSplitter {
  private carry: Uint8Array[] = [];
  private carryBytes = 0;
  /** Inside a line already over the maximum: its bytes are skipped up to the next newline. */
  private discarding = false;
  private discardedBytes = 0;
  /** The last byte held or discarded for the current partial line was "\r". */
  private lastCR = false;

  constructor(
    private readonly maxLineBytes: number,
    /** A line over the maximum was dropped; `bytes` is its length (known at its end). */
    private readonly onTooLong: (bytes: number) => void,
  ) {}

  /** Bytes held for a line not yet complete. */
  get partialBytes(): number {
    return this.carryBytes;
  }

  push(bytes: Uint8Array, onLine: OnLine): void {
    const chunk = asBuffer(bytes);
    const len = chunk.length;
    let pos = this.pushHead(chunk, onLine);
    while (pos < len) {
      const nl = chunk.indexOf(LF, pos);
      if (nl < 0) {
        this.hold(chunk.subarray(pos));
        return;
      }
      this.emit(chunk, pos, nl, onLine);
      pos = nl + 1;
    }
  }

  /** True while a line is pending from earlier chunks (held, or being discarded as too long). */
  get pending(): boolean {
    return this.discarding || this.carryBytes > 0;
  }

  /**
   * The first part of push(), for callers that split the rest of a chunk
   * themselves: completes the pending line (if any) with the chunk's first
   * newline. Returns where the chunk's own lines start (0 when nothing was
   * pending; the chunk's length when it has no newline and was all held).
   */
  pushHead(chunk: Buffer, onLine: OnLine): number {
    if (!this.discarding && this.carryBytes === 0) return 0;
    const nl = chunk.indexOf(LF);
    if (nl < 0) {
      this.hold(chunk);
      return chunk.length;
    }
    // The line's "\r" before "\n" (if any) is in this chunk, or was the last byte held.
    const cr = nl > 0 ? chunk[nl - 1] === CR : this.lastCR;
    if (this.discarding) {
      this.endDiscard(nl, cr);
    } else if (this.carryBytes + nl > this.maxLineBytes + 1) {
      this.carry = [];
      this.discardedBytes = this.carryBytes;
      this.carryBytes = 0;
      this.endDiscard(nl, cr);
    } else {
      const line = Buffer.allocUnsafe(this.carryBytes + nl + 1);
      let off = 0;
      for (const piece of this.carry) {
        line.set(piece, off);
        off += piece.length;
      }
      line.set(chunk.subarray(0, nl + 1), off);
      this.carry = [];
      this.carryBytes = 0;
      this.lastCR = false;
      this.emit(line, 0, line.length - 1, onLine);
    }
    return nl + 1;
  }

  /** At EOF: a last line without a newline is still a line. */
  finish(onLine: OnLine): void {
    if (this.discarding) {
      this.endDiscard(0, this.lastCR);
      return;
    }
    if (this.carryBytes === 0) return;
    const line = Buffer.allocUnsafe(this.carryBytes);
    let off = 0;
    for (const piece of this.carry) {
      line.set(piece, off);
      off += piece.length;
    }
    this.carry = [];
    this.carryBytes = 0;
    this.lastCR = false;
    let end = line.length;
    if (end > 0 && line[end - 1] === CR) end--;
    if (end > this.maxLineBytes) this.onTooLong(end);
    else if (end > 0) onLine(line, 0, end, false);
  }

  /**
   * Forgets a partial line (the connection it came from is gone). Returns its size
   * (also for a line already over the maximum, whose end will now never be seen).
   */
  reset(): number {
    const dropped = this.carryBytes + this.discardedBytes;
    this.carry = [];
    this.carryBytes = 0;
    this.discarding = false;
    this.discardedBytes = 0;
    this.lastCR = false;
    return dropped;
  }

  private emit(buf: Buffer, start: number, nl: number, onLine: OnLine): void {
    let end = nl;
    if (end > start && buf[end - 1] === CR) end--;
    if (end - start > this.maxLineBytes) {
      this.onTooLong(end - start);
      return;
    }
    onLine(buf, start, end, end === nl);
  }

  /**
   * The last part of push(): keeps the start of a line whose newline has not
   * arrived (a copy: the chunk may be reused or rewritten once we return).
   */
  hold(piece: Uint8Array): void {
    if (piece.length === 0) return;
    this.lastCR = piece[piece.length - 1] === CR;
    if (this.discarding) {
      this.discardedBytes += piece.length;
      return;
    }
    // Buffer.from copies; Buffer#slice would only make a view.
    this.carry.push(Buffer.from(piece));
    this.carryBytes += piece.length;
    if (this.carryBytes > this.maxLineBytes + 1) {
      this.discarding = true;
      this.discardedBytes = this.carryBytes;
      this.carry = [];
      this.carryBytes = 0;
    }
  }

  /** The dropped line ended: reports its length without its line end, as emit() does. */
  private endDiscard(extra: number, cr: boolean): void {
    this.onTooLong(this.discardedBytes + extra - (cr ? 1 : 0));
    this.discarding = false;
    this.discardedBytes = 0;
    this.lastCR = false;
  }
}
