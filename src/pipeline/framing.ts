// ndjson and SSE framing for the HTTP sources, transparently:
//   empty line, ":" comment, "event:", "id:", "retry:"  -> skipped
//   "data: X" / "data:X"                               -> X
//   anything else                                       -> the line verbatim
// Output is one "\n"-terminated line per record, valid UTF-8 (invalid bytes
// replaced with U+FFFD and counted), filtered by --include/--exclude.
import { isAscii, isUtf8 } from "node:buffer";
import type { LineFilter } from "./filter.ts";
import { asBuffer, LineSplitter } from "./lines.ts";
import { OutputBuilder } from "./output.ts";
import type { QueueEntry } from "../queue.ts";

export interface FramerEvents {
  /** A line over the maximum length was dropped. */
  tooLong(bytes: number): void;
  /** vigild's ": lagged: skipped N entries": N lines lost at the source. */
  lagged(entries: number): void;
  /** A line was dropped by a filter. */
  filtered(by: "include" | "exclude"): void;
  /** A line was not forwarded because of its framing (empty, comment, SSE field). */
  skipped(): void;
  /** A line's invalid UTF-8 was replaced. */
  invalidUtf8(): void;
}

const COLON = 58;
const SPACE = 32;
const D = 100;
const E = 101;
const I = 105;
const R = 114;

function startsWith(buf: Uint8Array, start: number, end: number, prefix: Uint8Array): boolean {
  if (end - start < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (buf[start + i] !== prefix[i]) return false;
  return true;
}

const enc = new TextEncoder();
const EVENT = enc.encode("event:");
const ID = enc.encode("id:");
const RETRY = enc.encode("retry:");
const DATA = enc.encode("data:");
const LAGGED = /^:\s*lagged:\s*skipped\s+(\d+)/;

/** Where the record's payload starts, or -1 when the line is framing only. */
export function payloadStart(buf: Uint8Array, start: number, end: number): number {
  if (start === end) return -1;
  switch (buf[start]) {
    case COLON:
      return -1;
    case D:
      if (startsWith(buf, start, end, DATA)) {
        const p = start + 5;
        return p < end && buf[p] === SPACE ? p + 1 : p;
      }
      return start;
    case E:
      return startsWith(buf, start, end, EVENT) ? -1 : start;
    case I:
      return startsWith(buf, start, end, ID) ? -1 : start;
    case R:
      return startsWith(buf, start, end, RETRY) ? -1 : start;
    default:
      return start;
  }
}

export class HttpFramer {
  private readonly splitter: LineSplitter;
  private readonly out = new OutputBuilder();
  /** ignoreBOM: a leading U+FEFF is content to keep (the default decoder would strip it). */
  private readonly decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  /** The chunk being framed, and whether it is valid UTF-8 as a whole. */
  private chunk: Buffer | null = null;
  private chunkUtf8 = false;
  /**
   * With filters and an all-ASCII chunk: the chunk decoded once; a line's text is
   * then a substring (cheaper than decoding each line, and regexes run fast on it).
   */
  private chunkText: string | null = null;
  /** Complete lines seen so far (forwarded or not). */
  linesSeen = 0;
  private readonly onLine = (buf: Buffer, start: number, end: number, lf: boolean) => this.line(buf, start, end, lf);

  constructor(
    private readonly filter: LineFilter | null,
    maxLineBytes: number,
    private readonly events: FramerEvents,
  ) {
    this.splitter = new LineSplitter(maxLineBytes, (n) => events.tooLong(n));
  }

  /** Frames one chunk; returns what is ready to forward, or null. */
  feed(bytes: Uint8Array): QueueEntry | null {
    const chunk = asBuffer(bytes);
    this.chunk = chunk;
    // ASCII is valid UTF-8: with filters, one check answers both questions.
    const ascii = this.filter !== null && isAscii(chunk);
    this.chunkUtf8 = ascii || isUtf8(chunk);
    this.chunkText = ascii ? chunk.toString("latin1") : null;
    this.splitter.push(chunk, this.onLine);
    this.chunk = null;
    this.chunkText = null;
    return this.out.take();
  }

  /** At a clean EOF: the last line, even without a newline. */
  finish(): QueueEntry | null {
    this.splitter.finish(this.onLine);
    return this.out.take();
  }

  /** The connection broke: a half line is discarded (it will not be completed). */
  reset(): number {
    return this.splitter.reset();
  }

  private line(buf: Buffer, start: number, end: number, lf: boolean): void {
    this.linesSeen++;
    const p = payloadStart(buf, start, end);
    if (p < 0) {
      if (end > start && buf[start] === COLON) this.comment(buf, start, end);
      this.events.skipped();
      return;
    }
    if (p === end) {
      this.events.skipped();
      return;
    }
    // Hot path: offsets only, no view or copy per line until the output copy.
    const valid = (buf === this.chunk && this.chunkUtf8) || isUtf8(buf.subarray(p, end));
    let content: Uint8Array | null = null;
    if (!valid) {
      this.events.invalidUtf8();
      content = enc.encode(this.decoder.decode(buf.subarray(p, end)));
    }
    if (this.filter !== null) {
      const text =
        content !== null
          ? this.decoder.decode(content)
          : buf === this.chunk && this.chunkText !== null
            ? this.chunkText.substring(p, end)
            : buf.toString("utf8", p, end);
      const verdict = this.filter.check(text);
      if (verdict !== "pass") {
        this.events.filtered(verdict);
        return;
      }
    }
    if (content === null && lf) this.out.addRange(buf, p, end + 1);
    else this.out.addLine(content ?? buf.subarray(p, end));
  }

  private comment(buf: Buffer, start: number, end: number): void {
    const m = LAGGED.exec(buf.toString("utf8", start, Math.min(end, start + 80)));
    if (m) this.events.lagged(Number(m[1]));
  }
}
