// One log response body -> records: "TIMESTAMP message" lines are checked
// against the cursor (exact resume), filtered on the message, and written as
// JSON envelopes. A line without a timestamp is the kubelet's error text
// inside a 200 body: reported, never forwarded.
import { isUtf8 } from "node:buffer";
import type { LineFilter } from "../../pipeline/filter.ts";
import { asBuffer, LineSplitter } from "../../pipeline/lines.ts";
import type { EnvelopeWriter } from "../../pipeline/envelope.ts";
import { isApiTimestamp, type Cursor } from "./cursor.ts";

export interface RecordCounts {
  read: number;
  forwarded: number;
  duplicates: number;
  filtered: number;
  invalidUtf8: number;
  tooLong: number;
}

const SPACE = 32;

/** Buffer#latin1Slice: Node's and Bun's direct form of toString("latin1", s, e), without its argument checks (hot path). */
type LatinSlicer = Buffer & { latin1Slice(start: number, end: number): string };
/** "2026-03-19T10:23:45.123456789Z" is 30 bytes; offsets like +05:30 make it 35. */
const MAX_TS_BYTES = 40;

function digits(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const b = buf[i] as number;
    if (b < 48 || b > 57) return false;
  }
  return true;
}

/**
 * True for an RFC3339 timestamp the API sends: the fixed 9-digit `Z` form is
 * checked byte by byte, anything else with isApiTimestamp. The timestamp is
 * copied into the JSON record unescaped, so only these characters may pass.
 */
function isTimestamp(buf: Buffer, start: number, end: number): boolean {
  if (
    end - start === 30 &&
    buf[start + 4] === 45 &&
    buf[start + 7] === 45 &&
    buf[start + 10] === 84 &&
    buf[start + 13] === 58 &&
    buf[start + 16] === 58 &&
    buf[start + 19] === 46 &&
    buf[start + 29] === 90 &&
    digits(buf, start, start + 4) &&
    digits(buf, start + 5, start + 7) &&
    digits(buf, start + 8, start + 10) &&
    digits(buf, start + 11, start + 13) &&
    digits(buf, start + 14, start + 16) &&
    digits(buf, start + 17, start + 19) &&
    digits(buf, start + 20, start + 29)
  ) {
    return true;
  }
  return end - start >= 20 && end - start <= MAX_TS_BYTES && isApiTimestamp(buf.toString("latin1", start, end));
}

/** The first space in buf[start, end), looking at most MAX_TS_BYTES + 1 bytes; -1 if none. */
function timestampEnd(buf: Buffer, start: number, end: number): number {
  const stop = Math.min(end, start + MAX_TS_BYTES + 1);
  for (let i = start; i < stop; i++) if (buf[i] === SPACE) return i;
  return -1;
}

export class RecordReader {
  private readonly splitter: LineSplitter;
  private chunk: Buffer | null = null;
  private chunkUtf8 = false;
  readonly counts: RecordCounts = { read: 0, forwarded: 0, duplicates: 0, filtered: 0, invalidUtf8: 0, tooLong: 0 };
  /** Of counts.filtered, the lines an --exclude matched (the others matched no --include); reset with counts. */
  excluded = 0;
  /** Text lines without a timestamp (kubelet errors), for the caller to report. */
  errors: string[] = [];
  private readonly onLine = (buf: Buffer, start: number, end: number) => this.line(buf, start, end);
  private readonly maxLineBytes: number;

  constructor(
    private readonly cursor: Cursor,
    private readonly writer: EnvelopeWriter,
    private readonly middle: Buffer,
    private readonly filter: LineFilter | null,
    maxLineBytes: number,
  ) {
    this.maxLineBytes = maxLineBytes;
    // Timestamp + space + message: allow the timestamp on top of the message maximum.
    // A line over the maximum even with its timestamp is dropped here, unseen by line(): still one read.
    this.splitter = new LineSplitter(maxLineBytes + MAX_TS_BYTES, () => {
      this.counts.read++;
      this.counts.tooLong++;
    });
  }

  /** Processes one body chunk; the records go to the writer (take them afterwards). */
  push(bytes: Uint8Array): void {
    const chunk = asBuffer(bytes);
    this.chunk = chunk;
    this.chunkUtf8 = isUtf8(chunk);
    this.splitter.push(chunk, this.onLine);
    this.chunk = null;
  }

  /**
   * At a clean EOF of the body: a last line without a newline is still a record
   * (a container that exits mid-line leaves its last output without one).
   */
  finish(): void {
    this.splitter.finish(this.onLine);
  }

  /** A partial last line is not a record yet: it will be read again on resume. */
  discardPartial(): number {
    return this.splitter.reset();
  }

  private line(buf: Buffer, start: number, end: number): void {
    this.counts.read++;
    const sp = timestampEnd(buf, start, end);
    if (sp < 0 || !isTimestamp(buf, start, sp)) {
      if (end > start) this.errors.push(buf.toString("utf8", start, Math.min(end, start + 500)));
      return;
    }
    const ts = (buf as LatinSlicer).latin1Slice(start, sp);
    if (!this.cursor.accept(ts)) {
      this.counts.duplicates++;
      return;
    }
    const ms = sp + 1;
    // The maximum is the message's: the timestamp comes on top (the splitter allows for it).
    // Checked after the cursor, so a replayed long line counts as a duplicate, not twice as dropped.
    if (end - ms > this.maxLineBytes) {
      this.counts.tooLong++;
      return;
    }
    let msg: Buffer = buf;
    let mStart = ms;
    let mEnd = end;
    if (!(buf === this.chunk && this.chunkUtf8) && !isUtf8(buf.subarray(ms, end))) {
      // Node's UTF-8 decoding replaces invalid sequences with U+FFFD.
      msg = Buffer.from(buf.toString("utf8", ms, end));
      mStart = 0;
      mEnd = msg.length;
      this.counts.invalidUtf8++;
    }
    if (this.filter !== null) {
      const text = msg === buf ? buf.toString("utf8", ms, end) : msg.toString("utf8");
      const verdict = this.filter.check(text);
      if (verdict !== "pass") {
        this.counts.filtered++;
        if (verdict === "exclude") this.excluded++;
        return;
      }
    }
    this.writer.add(buf, start, sp, msg, mStart, mEnd, this.middle);
    this.counts.forwarded++;
  }
}
