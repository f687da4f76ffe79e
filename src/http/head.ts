// Incremental parser for an HTTP/1.x response head (status line + header
// fields), fed socket reads of any size: the end of the head may be split
// across reads at any byte. Lenient where real servers are sloppy (bare LF line
// ends, obs-fold continuation lines, odd whitespace), strict on size.

export const MAX_HEAD_BYTES = 64 * 1024;

export interface ResponseHead {
  /** 1.0 → [1, 0] */
  version: [number, number];
  status: number;
  statusText: string;
  /** lower-case names; repeated fields joined with ", " */
  headers: Map<string, string>;
}

/** A malformed or oversized head. */
export class HeadError extends Error {
  override readonly name = "HeadError";
}

const CR = 13;
const LF = 10;
const STATUS_LINE = /^HTTP\/(\d)\.(\d)[ \t]+(\d{3})(?:[ \t]+(.*?))?[ \t]*$/;

export interface HeadResult {
  head: ResponseHead;
  /** bytes after the head (a view into the last chunk: the body starts here) */
  rest: Uint8Array;
}

export class HeadParser {
  private parts: Uint8Array[] = [];
  private size = 0;
  /** 0: inside a line, 1: just after LF, 2: after LF CR */
  private state = 0;
  /** blank lines before the status line are skipped (left over after a 1xx head by some servers) */
  private started = false;

  constructor(private readonly maxBytes = MAX_HEAD_BYTES) {}

  /** Bytes buffered so far (for limits). */
  get buffered(): number {
    return this.size;
  }

  /** Feeds one read; returns the head once complete, null while more bytes are needed. Throws HeadError. */
  push(chunk: Uint8Array): HeadResult | null {
    let start = 0;
    const len = chunk.length;
    if (!this.started) {
      while (start < len && (chunk[start] === CR || chunk[start] === LF)) start++;
      if (start === len) return null;
      this.started = true;
    }
    let state = this.state;
    // Only scan as far as the size limit allows, so a huge read fails fast.
    const limit = Math.min(len, start + this.maxBytes - this.size + 1);
    for (let i = start; i < limit; i++) {
      const b = chunk[i];
      if (b === LF) {
        if (state !== 0) {
          const headBytes = chunk.subarray(start, i + 1);
          const all = this.parts.length === 0 ? headBytes : concat([...this.parts, headBytes], this.size + headBytes.length);
          this.parts = [];
          this.size = 0;
          return { head: parseHead(all), rest: chunk.subarray(i + 1) };
        }
        state = 1;
      } else if (b === CR && state === 1) {
        state = 2;
      } else {
        state = 0;
      }
    }
    this.state = state;
    this.size += len - start;
    if (this.size > this.maxBytes) throw new HeadError(`response head larger than ${this.maxBytes} bytes`);
    // Copy: the head may be kept across reads while the caller reuses nothing, but
    // a view would pin the whole (possibly large) read buffer.
    this.parts.push(chunk.slice(start));
    return null;
  }
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function isWs(c: string | undefined): boolean {
  return c === " " || c === "\t";
}

/** Parses a complete head (status line through the blank line). */
export function parseHead(bytes: Uint8Array): ResponseHead {
  // latin1: header bytes are opaque octets; no UTF-8 decoding errors possible
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("latin1");
  const lines = text.split("\n");
  // drop the blank line(s) that end the head
  while (lines.length > 0 && /^\r?$/.test(lines[lines.length - 1] ?? "")) lines.pop();
  const statusLine = (lines[0] ?? "").replace(/\r$/, "");
  const m = STATUS_LINE.exec(statusLine);
  if (!m) throw new HeadError(`malformed status line ${JSON.stringify(statusLine.slice(0, 200))}`);
  const major = Number(m[1]);
  if (major !== 1) throw new HeadError(`unsupported HTTP version in ${JSON.stringify(statusLine.slice(0, 200))}`);
  const headers = new Map<string, string>();
  let last: string | null = null;
  for (let k = 1; k < lines.length; k++) {
    const line = (lines[k] ?? "").replace(/\r$/, "");
    if (line.length === 0) continue;
    if (isWs(line[0])) {
      // obs-fold: a continuation of the previous field's value (RFC 9112 §5.2)
      if (last !== null) {
        const more = line.trim();
        if (more) headers.set(last, `${headers.get(last) ?? ""} ${more}`.trim());
      }
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) throw new HeadError(`malformed header line ${JSON.stringify(line.slice(0, 200))}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!name || /[\s\x00-\x1f]/.test(name)) throw new HeadError(`malformed header name ${JSON.stringify(line.slice(0, 200))}`);
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    const prev = headers.get(name);
    headers.set(name, prev === undefined ? value : `${prev}, ${value}`);
    last = name;
  }
  return { version: [major, Number(m[2])], status: Number(m[3]), statusText: m[4] ?? "", headers };
}
