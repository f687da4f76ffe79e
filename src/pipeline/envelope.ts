// The Kubernetes record, built at the byte level into a reused buffer:
//   {"timestamp":"…","namespace":"…","pod":"…","container":"…","stream":"…","message":"…"}\n
// The fixed part after the timestamp is encoded once per stream; the message is
// JSON-escaped byte by byte (a table lookup per byte is faster here than
// decoding to a string and JSON.stringify). The bytes must be valid UTF-8:
// callers replace invalid sequences first (see EnvelopeWriter.addLine).

/** 0: copy as is; 1: backslash + short escape; 2: \u00XX. */
const ESCAPE_KIND = new Uint8Array(256);
const SHORT_ESCAPE = new Uint8Array(256);
for (let b = 0; b < 0x20; b++) ESCAPE_KIND[b] = 2;
for (const [b, c] of [
  [0x22, 0x22], // "
  [0x5c, 0x5c], // \
  [0x08, 0x62], // b
  [0x09, 0x74], // t
  [0x0a, 0x6e], // n
  [0x0c, 0x66], // f
  [0x0d, 0x72], // r
] as const) {
  ESCAPE_KIND[b] = 1;
  SHORT_ESCAPE[b] = c;
}
const HEX = Buffer.from("0123456789abcdef");

/** JSON-escapes src[start, end) into out at pos (out must have 6 bytes per input byte free); returns the new pos. */
export function escapeJsonBytes(src: Uint8Array, start: number, end: number, out: Uint8Array, pos: number): number {
  for (let i = start; i < end; i++) {
    const b = src[i] as number;
    const kind = ESCAPE_KIND[b];
    if (kind === 0) {
      out[pos++] = b;
    } else if (kind === 1) {
      out[pos++] = 0x5c;
      out[pos++] = SHORT_ESCAPE[b] as number;
    } else {
      out[pos++] = 0x5c;
      out[pos++] = 0x75;
      out[pos++] = 0x30;
      out[pos++] = 0x30;
      out[pos++] = HEX[b >> 4] as number;
      out[pos++] = HEX[b & 15] as number;
    }
  }
  return pos;
}

export interface EnvelopeFields {
  namespace: string;
  pod: string;
  container: string;
  /** "stdout" / "stderr" where the server separates them, else "output". */
  stream: string;
}

/** One record as it reaches the sink (JSON, keys in this order). */
export interface KubeRecord extends EnvelopeFields {
  timestamp: string;
  message: string;
}

const OPEN = Buffer.from('{"timestamp":"');
const CLOSE = Buffer.from('"}\n');

/** The encoded `","namespace":…,"message":"` part for one stream. */
export function envelopeMiddle(f: EnvelopeFields): Buffer {
  return Buffer.from(
    `",${JSON.stringify("namespace")}:${JSON.stringify(f.namespace)},"pod":${JSON.stringify(f.pod)},"container":${JSON.stringify(f.container)},"stream":${JSON.stringify(f.stream)},"message":"`,
  );
}

const BLOCK_BYTES = 64 * 1024;

/**
 * Writes records into shared blocks and hands out the filled part of a block
 * as one queue part per chunk of input (no object per line). One writer is
 * shared by all streams: each chunk is written and taken synchronously.
 */
export class EnvelopeWriter {
  private block = Buffer.allocUnsafe(BLOCK_BYTES);
  private start = 0;
  private pos = 0;
  private parts: Uint8Array[] = [];
  private bytes = 0;
  lines = 0;

  /**
   * Adds one record: timestamp ts[tsStart, tsEnd), the stream's fixed part
   * (envelopeMiddle) and message msg[msgStart, msgEnd) (valid UTF-8).
   */
  add(ts: Buffer, tsStart: number, tsEnd: number, msg: Uint8Array, msgStart: number, msgEnd: number, middle: Buffer): void {
    const need = OPEN.length + (tsEnd - tsStart) + middle.length + (msgEnd - msgStart) * 6 + CLOSE.length;
    const out = this.room(need);
    let pos = this.pos;
    // Short pieces are copied byte by byte: cheaper than a native call each.
    for (let i = 0; i < OPEN.length; i++) out[pos++] = OPEN[i] as number;
    for (let i = tsStart; i < tsEnd; i++) out[pos++] = ts[i] as number;
    middle.copy(out, pos);
    pos += middle.length;
    pos = escapeJsonBytes(msg, msgStart, msgEnd, out, pos);
    out[pos++] = 0x22; // "
    out[pos++] = 0x7d; // }
    out[pos++] = 0x0a; // \n
    this.bytes += pos - this.pos;
    this.pos = pos;
    this.lines++;
  }

  /** What was added since the last call, as queue parts; null if nothing. */
  take(): { parts: Uint8Array[]; bytes: number; lines: number } | null {
    this.cut();
    if (this.lines === 0) return null;
    const taken = { parts: this.parts, bytes: this.bytes, lines: this.lines };
    this.parts = [];
    this.bytes = 0;
    this.lines = 0;
    return taken;
  }

  private cut(): void {
    if (this.pos > this.start) {
      this.parts.push(this.block.subarray(this.start, this.pos));
      this.start = this.pos;
    }
  }

  /** A block with `need` bytes free; earlier parts keep their old block alive. */
  private room(need: number): Buffer {
    if (this.pos + need > this.block.length) {
      this.cut();
      this.block = Buffer.allocUnsafe(Math.max(BLOCK_BYTES, need));
      this.start = 0;
      this.pos = 0;
    }
    return this.block;
  }
}
