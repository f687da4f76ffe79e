/**
 * The response head parser and the body decoders against what a broken or
 * hostile server may send: valid responses split at random points decode to
 * exactly their body; randomly corrupted ones fail only with HeadError or
 * FramingError (which the source turns into a reconnect), never with anything
 * else, and never hang. Seeded, so a failure repeats.
 */
import { describe, expect, test } from "bun:test";
import { bodyDecoderFor, FramingError } from "../../src/http/body.ts";
import { HeadError, HeadParser } from "../../src/http/head.ts";
import { rng } from "./rng.ts";

function chunkedBody(rand: () => number, body: Uint8Array): string {
  let out = "";
  let off = 0;
  while (off < body.length) {
    const n = Math.min(body.length - off, 1 + Math.floor(rand() * 300));
    const ext = rand() < 0.1 ? ";name=value" : "";
    const size = rand() < 0.5 ? n.toString(16) : n.toString(16).toUpperCase();
    out += `${size}${ext}\r\n${Buffer.from(body.subarray(off, off + n)).toString("latin1")}\r\n`;
    off += n;
  }
  return out + (rand() < 0.2 ? "0\r\nX-Trailer: t\r\n\r\n" : "0\r\n\r\n");
}

/** A response whose body is `body`, framed chunked, by length or until close. */
function response(rand: () => number, body: Uint8Array): { wire: Uint8Array; framing: string } {
  const r = rand();
  const latin = Buffer.from(body).toString("latin1");
  if (r < 0.6) return { wire: latin1(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-ndjson\r\n\r\n${chunkedBody(rand, body)}`), framing: "chunked" };
  if (r < 0.85) return { wire: latin1(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${latin}`), framing: "length" };
  return { wire: latin1(`HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n${latin}`), framing: "close" };
}

/** One byte per character (the WHATWG "latin1" decoder is windows-1252, not a byte mapping). */
function latin1(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, "latin1"));
}

/** Splits `wire` at random points. */
function pieces(rand: () => number, wire: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let off = 0;
  while (off < wire.length) {
    const n = rand() < 0.3 ? 1 : 1 + Math.floor(rand() * 200);
    out.push(wire.slice(off, off + n));
    off += n;
  }
  return out;
}

/** Feeds the pieces through a head parser and the decoder it picks: the body bytes, and whether the body completed. */
function decode(parts: Uint8Array[]): { body: Uint8Array; complete: boolean; endError: string | null } {
  const head = new HeadParser();
  let decoder: ReturnType<typeof bodyDecoderFor> | null = null;
  const got: number[] = [];
  const emit = (d: Uint8Array): void => {
    for (const b of d) got.push(b);
  };
  for (const p of parts) {
    let rest = p;
    if (decoder === null) {
      const r = head.push(p);
      if (r === null) continue;
      decoder = bodyDecoderFor(r.head.status, r.head.headers);
      rest = r.rest;
    }
    if (decoder.push(rest, emit)) break;
  }
  return { body: Uint8Array.from(got), complete: decoder?.complete ?? false, endError: decoder === null ? "no head" : decoder.endError() };
}

function randomBody(rand: () => number): Uint8Array {
  const n = Math.floor(rand() * 2000);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = rand() < 0.05 ? 10 : Math.floor(rand() * 256);
  return b;
}

describe("HTTP decoding under random splits and corruption", () => {
  test("valid responses split anywhere: exactly the body, a clean end", () => {
    const rand = rng(20261122);
    for (let round = 0; round < 2000; round++) {
      const body = randomBody(rand);
      const { wire, framing } = response(rand, body);
      const r = decode(pieces(rand, wire));
      expect(r.body).toEqual(body);
      expect(r.endError).toBeNull();
      if (framing !== "close") expect(r.complete).toBe(true);
    }
  });

  test("corrupted responses: only HeadError or FramingError, or a body that ends unclean or short", () => {
    const rand = rng(7);
    let rejected = 0;
    for (let round = 0; round < 5000; round++) {
      const body = randomBody(rand);
      const wire = response(rand, body).wire;
      // Overwrite, delete or insert a few bytes anywhere (head, sizes, CRLFs, data).
      const bytes = Array.from(wire);
      const edits = 1 + Math.floor(rand() * 4);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(rand() * bytes.length);
        const kind = rand();
        const junk = [13, 10, 48, 102, 59, 58, 32, 255, 0, Math.floor(rand() * 256)][Math.floor(rand() * 10)] ?? 0;
        if (kind < 0.4) bytes[at] = junk;
        else if (kind < 0.7) bytes.splice(at, 1);
        else bytes.splice(at, 0, junk);
      }
      try {
        const r = decode(pieces(rand, Uint8Array.from(bytes)));
        // Whatever came through is bounded by what was sent.
        expect(r.body.length).toBeLessThanOrEqual(bytes.length);
      } catch (err) {
        if (!(err instanceof HeadError || err instanceof FramingError)) throw err;
        rejected++;
      }
    }
    // The corruption does reach the parsers (not every edit lands in body data).
    expect(rejected).toBeGreaterThan(500);
  });

  test("a chunk size too large for a number, or negative, is a FramingError", () => {
    for (const size of ["ffffffffffffffffffff", "-5", "0x10", " ", "1 2", "+1"]) {
      const wire = latin1(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${size}\r\nabc\r\n0\r\n\r\n`);
      expect(() => decode([wire])).toThrow(FramingError);
    }
  });
});
