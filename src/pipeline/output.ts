// Collects forwarded lines for the queue with as few objects as possible.
//
// keep(): lines of a chunk the caller hands over are compacted in place, to
// the front of the chunk (copyWithin over the bytes already dropped: SSE
// field lines, "data: " prefixes, filtered lines), and leave as one view of
// it. A chunk of plain ndjson is not even moved. No buffer is allocated per
// chunk, so framing makes no garbage beyond the socket reads themselves.
//
// addRange()/addLine(): lines of buffers the caller keeps (or rewritten
// lines): a long run of one buffer leaves as a view; short pieces are copied
// with Buffer#copy into a shared side buffer, so no view is made per line.
import type { QueueEntry } from "../queue.ts";

/** Runs at least this long are passed on as views; shorter ones are copied. */
const VIEW_MIN_BYTES = 8 * 1024;
const SIDE_BYTES = 64 * 1024;

export class OutputBuilder {
  private parts: Uint8Array[] = [];
  private bytes = 0;
  private lines = 0;
  private runBuf: Buffer | null = null;
  private runStart = 0;
  private runEnd = 0;
  /** Copies go here; parts already handed out keep their part of it alive. */
  private side: Buffer | null = null;
  private sideStart = 0;
  private sidePos = 0;
  /** The buffer being compacted (null: none), the start of its open region and the next write position. */
  private cBuf: Buffer | null = null;
  private cRegion = 0;
  private cPos = 0;
  /** Kept bytes cBuf[mFrom, mTo) not moved to cPos yet: neighbouring lines move with one copyWithin. */
  private mFrom = 0;
  private mTo = 0;

  /**
   * Forwards buf[start, end) (ending with "\n") as `lines` lines, moving it
   * into place in `buf` itself: the caller gives up the bytes of buf before
   * `end` (they may be overwritten) and calls with increasing `start` until
   * take().
   */
  keep(buf: Buffer, start: number, end: number, lines = 1): void {
    if (buf !== this.cBuf) {
      this.closeCompact();
      this.cBuf = buf;
      this.cRegion = this.cPos = this.mFrom = this.mTo = start;
    }
    // What addRange()/addLine() gathered since the region was last closed goes first.
    if (this.runBuf !== null) this.closeRun();
    if (this.side !== null && this.sidePos > this.sideStart) this.closeSide();
    if (start !== this.mTo) {
      this.flushMove();
      this.mFrom = start;
    }
    this.mTo = end;
    this.bytes += end - start;
    this.lines += lines;
  }

  /**
   * keep() for a line whose content buf[start, end) is followed by "\r\n":
   * the "\r" becomes the "\n" in place (buf[end] must exist).
   */
  keepContent(buf: Buffer, start: number, end: number): void {
    buf[end] = 10;
    this.keep(buf, start, end + 1);
  }

  /** Adds src[start, end) (which must end with "\n") as `lines` lines. */
  addRange(src: Buffer, start: number, end: number, lines = 1): void {
    this.closeCompact();
    if (this.runBuf === src && this.runEnd === start) {
      this.runEnd = end;
    } else {
      this.closeRun();
      this.runBuf = src;
      this.runStart = start;
      this.runEnd = end;
    }
    this.bytes += end - start;
    this.lines += lines;
  }

  /** Adds a line's content (without newline) followed by "\n". */
  addLine(content: Uint8Array): void {
    this.closeCompact();
    this.closeRun();
    const side = this.sideFor(content.length + 1);
    side.set(content, this.sidePos);
    this.sidePos += content.length;
    side[this.sidePos++] = 10;
    this.bytes += content.length + 1;
    this.lines++;
  }

  /** Everything added since the last take, or null if nothing was. */
  take(): QueueEntry | null {
    this.closeCompact();
    this.cBuf = null;
    this.closeRun();
    this.closeSide();
    if (this.lines === 0) return null;
    const entry: QueueEntry = { parts: this.parts, bytes: this.bytes, lines: this.lines };
    this.parts = [];
    this.bytes = 0;
    this.lines = 0;
    return entry;
  }

  private closeRun(): void {
    const src = this.runBuf;
    if (src === null) return;
    this.runBuf = null;
    const len = this.runEnd - this.runStart;
    if (len >= VIEW_MIN_BYTES) {
      this.closeSide();
      this.parts.push(src.subarray(this.runStart, this.runEnd));
    } else {
      const side = this.sideFor(len);
      src.copy(side, this.sidePos, this.runStart, this.runEnd);
      this.sidePos += len;
    }
  }

  private flushMove(): void {
    const n = this.mTo - this.mFrom;
    if (n <= 0) return;
    const buf = this.cBuf as Buffer;
    if (this.mFrom !== this.cPos) buf.copyWithin(this.cPos, this.mFrom, this.mTo);
    this.cPos += n;
    this.mFrom = this.mTo = this.cPos;
  }

  /**
   * Hands out the open compacted region: as a view, or copied into the side
   * buffer when it is less than half of its chunk (a view would keep the
   * whole chunk's memory alive in the queue for a few lines).
   */
  private closeCompact(): void {
    const buf = this.cBuf;
    if (buf === null) return;
    this.flushMove();
    const len = this.cPos - this.cRegion;
    if (len > 0) {
      if (len * 2 < buf.length) {
        const side = this.sideFor(len);
        buf.copy(side, this.sidePos, this.cRegion, this.cPos);
        this.sidePos += len;
      } else {
        this.closeSide();
        this.parts.push(buf.subarray(this.cRegion, this.cPos));
      }
    }
    this.cRegion = this.cPos;
  }

  /** The side buffer with room for `n` more bytes (a fresh one when full). */
  private sideFor(n: number): Buffer {
    if (this.side === null || this.sidePos + n > this.side.length) {
      this.closeSide();
      this.side = Buffer.allocUnsafe(Math.max(SIDE_BYTES, n));
      this.sideStart = 0;
      this.sidePos = 0;
    }
    return this.side;
  }

  private closeSide(): void {
    if (this.side !== null && this.sidePos > this.sideStart) {
      this.parts.push(this.side.subarray(this.sideStart, this.sidePos));
      this.sideStart = this.sidePos;
    }
  }
}
