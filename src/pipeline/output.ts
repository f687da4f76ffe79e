// Collects forwarded lines as views of the chunks they came from, merging
// neighbouring ranges, so a chunk of plain ndjson leaves as one view, uncopied.
import type { QueueEntry } from "../queue.ts";

export const NEWLINE = new Uint8Array([10]);

export class OutputBuilder {
  private parts: Uint8Array[] = [];
  private bytes = 0;
  private lines = 0;
  private runBuf: Uint8Array | null = null;
  private runStart = 0;
  private runEnd = 0;

  /** Adds buf[start, end) (which must end with "\n") as one or more lines. */
  addRange(buf: Uint8Array, start: number, end: number, lines = 1): void {
    if (this.runBuf === buf && this.runEnd === start) {
      this.runEnd = end;
    } else {
      this.closeRun();
      this.runBuf = buf;
      this.runStart = start;
      this.runEnd = end;
    }
    this.bytes += end - start;
    this.lines += lines;
  }

  /** Adds a line's content (without newline) followed by "\n". */
  addLine(content: Uint8Array): void {
    this.closeRun();
    if (content.length > 0) this.parts.push(content);
    this.parts.push(NEWLINE);
    this.bytes += content.length + 1;
    this.lines++;
  }

  /** Everything added since the last take, or null if nothing was. */
  take(): QueueEntry | null {
    this.closeRun();
    if (this.lines === 0) return null;
    const entry: QueueEntry = { parts: this.parts, bytes: this.bytes, lines: this.lines };
    this.parts = [];
    this.bytes = 0;
    this.lines = 0;
    return entry;
  }

  private closeRun(): void {
    if (this.runBuf) {
      this.parts.push(this.runBuf.subarray(this.runStart, this.runEnd));
      this.runBuf = null;
    }
  }
}
