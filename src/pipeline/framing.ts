// ndjson and SSE framing for the HTTP sources, transparently:
//   empty line, ":" comment, "event:", "id:", "retry:"  -> skipped
//   "data: X" / "data:X" (any number of spaces)         -> X
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

const LF = 10;
const CR = 13;
const COLON = 58;
const SPACE = 32;
const D = 100;
const E = 101;
const I = 105;
const R = 114;
const L = 108;
const LBRACE = 123;

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
/** Bytes read one by one for the end of a line that looks like SSE framing before Buffer#indexOf takes over. */
const SHORT_LINE = 24;
const LAGGED = /^:\s*lagged:\s*skipped\s+(\d+)/;

/** Where the record's payload starts, or -1 when the line is framing only. */
export function payloadStart(buf: Uint8Array, start: number, end: number): number {
  if (start === end) return -1;
  switch (buf[start]) {
    case COLON:
      return -1;
    case D:
      if (startsWith(buf, start, end, DATA)) {
        // Every space after "data:", as the reference strips them (the SSE spec strips one).
        let p = start + 5;
        while (p < end && buf[p] === SPACE) p++;
        return p;
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
  /** Filters that can test bytes (literal-only regexes): lines are then never decoded. */
  private readonly byteFilter: boolean;
  /** The chunk being framed, and whether its complete lines are valid UTF-8 as a whole. */
  private chunk: Buffer | null = null;
  private chunkUtf8 = false;
  /**
   * With regex filters and an all-ASCII chunk: the chunk decoded once; a line's text is
   * then a substring (cheaper than decoding each line, and regexes run fast on it).
   */
  private chunkText: string | null = null;
  /** Complete lines seen so far (forwarded or not). */
  linesSeen = 0;
  private readonly onLine = (buf: Buffer, start: number, end: number, lf: boolean) => this.line(buf, start, end, lf);

  constructor(
    private readonly filter: LineFilter | null,
    private readonly maxLineBytes: number,
    private readonly events: FramerEvents,
  ) {
    this.splitter = new LineSplitter(maxLineBytes, (n) => events.tooLong(n));
    this.byteFilter = filter !== null && filter.bytes !== null;
  }

  /**
   * Frames one chunk; returns what is ready to forward, or null. The chunk is
   * handed over: the forwarded lines are compacted in place into its bytes and
   * the entry holds views of it, so the caller must not reuse or change it.
   */
  feed(bytes: Uint8Array): QueueEntry | null {
    const chunk = asBuffer(bytes);
    const len = chunk.length;
    // A line begun in earlier chunks ends at this chunk's first newline.
    let pos = this.splitter.pending ? this.splitter.pushHead(chunk, this.onLine) : 0;
    if (pos >= len) return this.out.take();
    // The chunk's own complete lines: [pos, last newline].
    const last = chunk.lastIndexOf(LF);
    if (last < pos) {
      this.splitter.hold(pos === 0 ? chunk : chunk.subarray(pos));
      return this.out.take();
    }
    const whole = pos === 0 && last === len - 1 ? chunk : chunk.subarray(pos, last + 1);
    this.chunk = chunk;
    if (this.filter !== null && !this.byteFilter) {
      // ASCII is valid UTF-8: with regex filters, one check answers both questions.
      const ascii = isAscii(whole);
      this.chunkUtf8 = ascii || isUtf8(whole);
      this.chunkText = ascii ? chunk.toString("latin1") : null;
    } else {
      // Newlines never occur inside a UTF-8 sequence: if the lines are valid together, each one is.
      this.chunkUtf8 = isUtf8(whole);
    }
    this.filter?.resetBytes();
    this.lines(chunk, pos, last);
    this.chunk = null;
    this.chunkText = null;
    if (last + 1 < len) this.splitter.hold(chunk.subarray(last + 1));
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

  /**
   * The lines of chunk[pos, last], last being a newline: the splitter's work
   * (line ends, CRLF, the maximum length) done inline, without a callback per
   * line. SSE field lines, comments and blank lines are short: their end is
   * found by reading a few bytes here, which costs far less than a call to
   * Buffer#indexOf (whose price is mostly the call).
   */
  private lines(chunk: Buffer, pos: number, last: number): void {
    const max = this.maxLineBytes;
    // Fast path: with no filter and valid UTF-8, a JSON object line ("{"..., LF-ended,
    // within the maximum) is forwarded verbatim; a run of them leaves as one piece,
    // with no per-line call at all (the same result as line() for each).
    const runs = this.filter === null && this.chunkUtf8;
    let runStart = -1;
    let runLines = 0;
    while (pos <= last) {
      const c = chunk[pos];
      let nl: number;
      /** The line is SSE framing only (blank, or a field line within the maximum): skipped. */
      let framingOnly = false;
      if (c === LBRACE && runs) {
        nl = chunk.indexOf(LF, pos);
        if (nl - pos <= max && chunk[nl - 1] !== CR) {
          if (runStart < 0) runStart = pos;
          runLines++;
          pos = nl + 1;
          continue;
        }
      } else if (c === LF) {
        // A blank line (the end of an SSE event): the commonest line of SSE.
        nl = pos;
        framingOnly = true;
      } else if (c === E || c === I || c === R || c === COLON || c === CR) {
        let k = pos + 1;
        const lim = pos + SHORT_LINE < last ? pos + SHORT_LINE : last;
        while (k < lim && chunk[k] !== LF) k++;
        nl = chunk[k] === LF ? k : chunk.indexOf(LF, k);
        // "event:", "id:", "retry:"
        framingOnly = c !== COLON && c !== CR && nl - pos <= max && payloadStart(chunk, pos, nl) < 0;
      } else {
        nl = chunk.indexOf(LF, pos);
      }
      if (runStart >= 0) {
        this.keepRun(chunk, runStart, pos, runLines);
        runStart = -1;
        runLines = 0;
      }
      if (framingOnly) {
        // Skipped here, without line()'s work (the same outcome).
        this.linesSeen++;
        this.events.skipped();
        pos = nl + 1;
        continue;
      }
      let end = nl;
      if (end > pos && chunk[end - 1] === CR) end--;
      if (end - pos > max) this.events.tooLong(end - pos);
      else this.line(chunk, pos, end, end === nl);
      pos = nl + 1;
    }
    if (runStart >= 0) this.keepRun(chunk, runStart, pos, runLines);
  }

  /** chunk[start, end): `lines` verbatim lines, each ending in "\n". */
  private keepRun(chunk: Buffer, start: number, end: number, lines: number): void {
    this.linesSeen += lines;
    this.out.keep(chunk, start, end, lines);
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
    const inChunk = buf === this.chunk;
    // Hot path: offsets only, no view or copy per line.
    if ((inChunk && this.chunkUtf8) || isUtf8(buf.subarray(p, end))) {
      const filter = this.filter;
      if (filter !== null) {
        const verdict = this.byteFilter
          ? filter.checkBytes(buf, p, end)
          : filter.check(inChunk && this.chunkText !== null ? this.chunkText.substring(p, end) : buf.toString("utf8", p, end));
        if (verdict !== "pass") {
          this.events.filtered(verdict);
          return;
        }
      }
      if (lf) this.out.keep(buf, p, end + 1);
      else if (end + 1 < buf.length && buf[end] === CR) this.out.keepContent(buf, p, end);
      else this.out.addLine(buf.subarray(p, end)); // the last line at EOF: no room for its "\n"
      return;
    }
    this.events.invalidUtf8();
    const text = this.decoder.decode(buf.subarray(p, end));
    if (this.filter !== null) {
      const verdict = this.filter.check(text);
      if (verdict !== "pass") {
        this.events.filtered(verdict);
        return;
      }
    }
    this.out.addLine(enc.encode(text));
  }

  private comment(buf: Buffer, start: number, end: number): void {
    // Most comments are keepalives: decode only what may be "lagged" (after ASCII
    // spaces comes "l", or a non-ASCII byte that may be a space to \s).
    let i = start + 1;
    while (i < end && (buf[i] === SPACE || ((buf[i] as number) >= 9 && (buf[i] as number) <= 13))) i++;
    if (i >= end || (buf[i] !== L && (buf[i] as number) < 0x80)) return;
    const m = LAGGED.exec(buf.toString("utf8", start, Math.min(end, start + 80)));
    if (m) this.events.lagged(Number(m[1]));
  }
}
