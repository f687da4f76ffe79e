// Collects forwarded lines for the queue with as few objects as possible:
// a long run of neighbouring lines (a chunk of plain ndjson) leaves as one
// view of the chunk, uncopied; short pieces (SSE payloads between skipped
// lines, rewritten lines) are copied with Buffer#copy into a shared side
// buffer, so no view object is made per line.
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

  /** Adds src[start, end) (which must end with "\n") as `lines` lines. */
  addRange(src: Buffer, start: number, end: number, lines = 1): void {
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
