// Response body framing (RFC 9112 §6.3): chunked, content-length or
// read-until-close. Decoders are fed socket reads of any size and hand out
// views into those reads (no copies), so a chunk header, CRLF or trailer may
// be split across reads at any byte.
import { HeadError } from "./head.ts";

/** Bad chunked framing. */
export class FramingError extends Error {
  override readonly name = "FramingError";
}

export interface BodyDecoder {
  /** "chunked" | "length" | "close" | "none" (for logs and tests) */
  readonly framing: string;
  /** true once the whole body was seen */
  readonly complete: boolean;
  /**
   * Decodes one read, calling emit with each run of body bytes (views into
   * `chunk`). Returns `complete`; bytes after the body are ignored. Throws
   * FramingError.
   */
  push(chunk: Uint8Array, emit: (data: Uint8Array) => void): boolean;
  /** At end of stream: null when that is a clean end of the body, else why not. */
  endError(): string | null;
}

class NoBody implements BodyDecoder {
  readonly framing = "none";
  readonly complete = true;
  push(): boolean {
    return true;
  }
  endError(): null {
    return null;
  }
}

class UntilClose implements BodyDecoder {
  readonly framing = "close";
  readonly complete = false;
  push(chunk: Uint8Array, emit: (data: Uint8Array) => void): boolean {
    if (chunk.length > 0) emit(chunk);
    return false;
  }
  endError(): null {
    return null; // the close is this framing's end
  }
}

class LengthBody implements BodyDecoder {
  readonly framing = "length";
  private remaining: number;
  constructor(private readonly length: number) {
    this.remaining = length;
  }
  get complete(): boolean {
    return this.remaining === 0;
  }
  push(chunk: Uint8Array, emit: (data: Uint8Array) => void): boolean {
    if (this.remaining === 0) return true;
    const n = Math.min(this.remaining, chunk.length);
    if (n > 0) {
      emit(n === chunk.length ? chunk : chunk.subarray(0, n));
      this.remaining -= n;
    }
    return this.remaining === 0;
  }
  endError(): string | null {
    if (this.remaining === 0) return null;
    return `connection closed after ${this.length - this.remaining} of ${this.length} body bytes (content-length)`;
  }
}

const CR = 13;
const LF = 10;
/** 13 hex digits stay below 2^53 */
const MAX_SIZE_DIGITS = 13;
const MAX_TRAILER_BYTES = 64 * 1024;

const enum S {
  Size,
  Ext,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  TrailerLine,
  TrailerEndLf,
  Done,
}

function hexValue(b: number): number {
  if (b >= 48 && b <= 57) return b - 48; // 0-9
  const l = b | 0x20; // either case
  if (l >= 97 && l <= 102) return l - 87; // a-f
  return -1;
}

class ChunkedBody implements BodyDecoder {
  readonly framing = "chunked";
  private state = S.Size;
  private size = 0;
  private digits = 0;
  private remaining = 0;
  private trailerBytes = 0;

  get complete(): boolean {
    return this.state === S.Done;
  }

  push(chunk: Uint8Array, emit: (data: Uint8Array) => void): boolean {
    const len = chunk.length;
    let i = 0;
    while (i < len && this.state !== S.Done) {
      if (this.state === S.Data) {
        // the bulk of the body: one view per read, no per-byte work
        const n = Math.min(this.remaining, len - i);
        emit(chunk.subarray(i, i + n));
        i += n;
        this.remaining -= n;
        if (this.remaining === 0) this.state = S.DataCr;
        continue;
      }
      const b = chunk[i++] ?? 0;
      switch (this.state) {
        case S.Size: {
          const v = hexValue(b);
          if (v >= 0) {
            if (++this.digits > MAX_SIZE_DIGITS) throw new FramingError("chunk size too large");
            this.size = this.size * 16 + v;
          } else if (this.digits === 0) {
            throw new FramingError(`bad chunk size line (byte 0x${b.toString(16)})`);
          } else if (b === CR) {
            this.state = S.SizeLf;
          } else if (b === LF) {
            this.endSizeLine();
          } else if (b === 59 /* ; */ || b === 32 || b === 9) {
            this.state = S.Ext; // chunk extensions (and the whitespace allowed before them) carry nothing we use
          } else {
            throw new FramingError(`bad chunk size line (byte 0x${b.toString(16)})`);
          }
          break;
        }
        case S.Ext:
          if (b === CR) this.state = S.SizeLf;
          else if (b === LF) this.endSizeLine();
          break;
        case S.SizeLf:
          if (b !== LF) throw new FramingError("bad chunk size line (CR without LF)");
          this.endSizeLine();
          break;
        case S.DataCr:
          if (b === CR) this.state = S.DataLf;
          else if (b === LF) this.state = S.Size;
          else throw new FramingError("chunk data longer than its size");
          break;
        case S.DataLf:
          if (b !== LF) throw new FramingError("chunk data longer than its size");
          this.state = S.Size;
          break;
        case S.TrailerStart:
          if (b === CR) this.state = S.TrailerEndLf;
          else if (b === LF) this.state = S.Done;
          else this.state = S.TrailerLine;
          break;
        case S.TrailerLine:
          // trailer fields are skipped: nothing in a log stream needs them
          if (++this.trailerBytes > MAX_TRAILER_BYTES) throw new FramingError("chunked trailer too large");
          if (b === LF) this.state = S.TrailerStart;
          break;
        case S.TrailerEndLf:
          if (b !== LF) throw new FramingError("bad end of chunked trailer");
          this.state = S.Done;
          break;
      }
    }
    return this.state === S.Done;
  }

  private endSizeLine(): void {
    if (this.size === 0) {
      this.state = S.TrailerStart;
    } else {
      this.remaining = this.size;
      this.state = S.Data;
    }
    this.size = 0;
    this.digits = 0;
  }

  endError(): string | null {
    if (this.state === S.Done) return null;
    if (this.state === S.Data) return `connection closed inside a chunk (${this.remaining} bytes missing)`;
    return "connection closed before the last chunk of a chunked body";
  }
}

const NO_BODY_STATUS = (status: number): boolean => (status >= 100 && status < 200) || status === 204 || status === 304;

/**
 * The decoder for a response to a GET (RFC 9112 §6.3): no body for 1xx, 204
 * and 304; chunked when it is the last transfer coding; else content-length;
 * else until the connection closes. Throws HeadError for a bad content-length.
 */
export function bodyDecoderFor(status: number, headers: Map<string, string>): BodyDecoder {
  if (NO_BODY_STATUS(status)) return new NoBody();
  const te = headers.get("transfer-encoding");
  if (te !== undefined) {
    const codings = te.split(",").map((s) => s.trim().toLowerCase()).filter((s) => s.length > 0);
    // transfer-encoding overrides content-length; a non-chunked last coding is delimited by the close
    return codings[codings.length - 1] === "chunked" ? new ChunkedBody() : new UntilClose();
  }
  const cl = headers.get("content-length");
  if (cl !== undefined) {
    // repeated fields were joined with ", ": all copies must agree (RFC 9110 §8.6)
    const values = new Set(cl.split(",").map((s) => s.trim()));
    const [only] = values;
    if (values.size !== 1 || only === undefined || !/^\d{1,15}$/.test(only)) {
      throw new HeadError(`bad content-length ${JSON.stringify(cl.slice(0, 100))}`);
    }
    const n = Number(only);
    return n === 0 ? new NoBody() : new LengthBody(n);
  }
  return new UntilClose();
}
