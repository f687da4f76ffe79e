import { describe, expect, test } from "bun:test";
import { LineSplitter } from "../../src/pipeline/lines.ts";
import { rng } from "./rng.ts";

const enc = new TextEncoder();
const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("latin1");
const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "latin1"));

type Ev = ["line", string, boolean] | ["long", number];


/**
 * Feeds the chunks, then finish(). Checks the OnLine contract on every call:
 * lf === (buf[end] === "\n"), and a line ended by CRLF has buf[end] === "\r".
 */
function run(chunks: Uint8Array[], max: number, opts: { finish?: boolean; scribble?: boolean } = {}): Ev[] {
  const events: Ev[] = [];
  const s = new LineSplitter(max, (n) => events.push(["long", n]));
  const onLine = (final: boolean) => (buf: Uint8Array, start: number, end: number, lf: boolean) => {
    expect(start).toBeGreaterThanOrEqual(0);
    expect(end).toBeGreaterThanOrEqual(start);
    expect(end).toBeLessThanOrEqual(buf.length);
    expect(lf).toBe(buf[end] === 10);
    if (!lf && !final) expect(buf[end]).toBe(13);
    events.push(["line", latin1(buf.subarray(start, end)), lf]);
  };
  for (const c of chunks) {
    s.push(c, onLine(false));
    // The reader may reuse a chunk's buffer once push() returns: nothing held may change.
    if (opts.scribble) c.fill(0x21);
  }
  if (opts.finish !== false) s.finish(onLine(true));
  return events;
}

/** The obviously-correct model: split the whole input at once. */
function model(input: string, max: number, finish = true): Ev[] {
  const out: Ev[] = [];
  const segs = input.split("\n");
  const last = segs.pop() as string;
  for (const seg of segs) {
    const crlf = seg.endsWith("\r");
    const content = crlf ? seg.slice(0, -1) : seg;
    if (content.length > max) out.push(["long", content.length]);
    else out.push(["line", content, !crlf]);
  }
  if (finish) {
    const content = last.endsWith("\r") ? last.slice(0, -1) : last;
    if (content.length > max) out.push(["long", content.length]);
    else if (content.length > 0) out.push(["line", content, false]);
  }
  return out;
}

function splitAt(input: string, points: number[]): Uint8Array[] {
  const b = bytes(input);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points, b.length]) {
    out.push(b.slice(prev, p));
    prev = p;
  }
  return out;
}

describe("LineSplitter basics", () => {
  test("LF lines within one chunk are views of the chunk, lf = true", () => {
    const chunk = enc.encode("one\ntwo\nthree\n");
    const seen: Array<[Uint8Array, number, number, boolean]> = [];
    const s = new LineSplitter(100, () => {
      throw new Error("none too long");
    });
    s.push(chunk, (buf, start, end, lf) => seen.push([buf, start, end, lf]));
    expect(seen.map(([b, s0, e]) => latin1(b.subarray(s0, e)))).toEqual(["one", "two", "three"]);
    for (const [buf, , end, lf] of seen) {
      // The same memory (seen as a Buffer), not a copy.
      expect(buf.buffer).toBe(chunk.buffer);
      expect(buf.byteOffset).toBe(chunk.byteOffset);
      expect(lf).toBe(true);
      expect(buf[end]).toBe(10);
    }
    expect(s.partialBytes).toBe(0);
  });

  test("CRLF lines: the CR is removed, lf = false and buf[end] is the CR", () => {
    expect(run([bytes("a\r\nbb\r\n")], 100)).toEqual([
      ["line", "a", false],
      ["line", "bb", false],
    ]);
  });

  test("a lone CR inside a line is kept", () => {
    expect(run([bytes("a\rb\n\rc\r\r\n")], 100)).toEqual([
      ["line", "a\rb", true],
      ["line", "\rc\r", false],
    ]);
  });

  test("empty lines are reported (LF and CRLF)", () => {
    expect(run([bytes("\n\r\n\nx\n")], 100)).toEqual([
      ["line", "", true],
      ["line", "", false],
      ["line", "", true],
      ["line", "x", true],
    ]);
  });

  test("the last line without newline arrives at finish(), not before", () => {
    expect(run([bytes("a\nlast")], 100, { finish: false })).toEqual([["line", "a", true]]);
    expect(run([bytes("a\nlast")], 100)).toEqual([
      ["line", "a", true],
      ["line", "last", false],
    ]);
    // A final CR is a line end too; nothing pending means nothing at finish().
    expect(run([bytes("last\r")], 100)).toEqual([["line", "last", false]]);
    expect(run([bytes("a\n")], 100)).toEqual([["line", "a", true]]);
    expect(run([bytes("\r")], 100)).toEqual([]);
    expect(run([], 100)).toEqual([]);
  });

  test("a line split exactly between \\r and \\n", () => {
    expect(run([bytes("abc\r"), bytes("\ndef\n")], 100)).toEqual([
      ["line", "abc", false],
      ["line", "def", true],
    ]);
    expect(run([bytes("abc"), bytes("\r"), bytes("\n")], 100)).toEqual([["line", "abc", false]]);
  });

  test("partialBytes counts the bytes held", () => {
    const s = new LineSplitter(100, () => {});
    const none = () => {
      throw new Error("no line expected");
    };
    s.push(bytes("ab"), none);
    s.push(bytes("cde"), none);
    expect(s.partialBytes).toBe(5);
    s.push(bytes("\n"), () => {});
    expect(s.partialBytes).toBe(0);
  });

  test("empty chunks change nothing", () => {
    expect(run([bytes(""), bytes("ab"), bytes(""), bytes("c\n"), bytes("")], 100)).toEqual([["line", "abc", true]]);
  });

  test("held partial lines are copies: a reused chunk buffer does not corrupt them", () => {
    const input = "first line\nsecond, split\r\nthird\nlast";
    for (let p = 0; p <= input.length; p++) {
      expect(run(splitAt(input, [p]), 100, { scribble: true })).toEqual(model(input, 100));
    }
  });
});

describe("LineSplitter: split points", () => {
  const inputs = [
    "a\nbb\r\nccc\rd\n\n\r\nee\r\r\n\rf\nlast",
    "\r\n\r\n\n\n",
    "no newline at all",
    "x\r",
    "0123456789\n01234567890\r\n0123456789\r\n012345678901\r\n",
  ];

  test("every 2-chunk split gives the same lines as the whole input", () => {
    for (const input of inputs) {
      for (const max of [0, 1, 2, 3, 5, 10, 11, 1000]) {
        const want = model(input, max);
        for (let p = 0; p <= input.length; p++) expect(run(splitAt(input, [p]), max)).toEqual(want);
      }
    }
  });

  test("every 3-chunk split gives the same lines", () => {
    for (const input of inputs) {
      for (const max of [1, 3, 10, 1000]) {
        const want = model(input, max);
        for (let p = 0; p <= input.length; p++) {
          for (let q = p; q <= input.length; q++) expect(run(splitAt(input, [p, q]), max)).toEqual(want);
        }
      }
    }
  });

  test("one byte per chunk", () => {
    for (const input of inputs) {
      const points = Array.from({ length: input.length }, (_, i) => i);
      for (const max of [0, 2, 10, 1000]) expect(run(splitAt(input, points), max)).toEqual(model(input, max));
    }
  });

  test("random inputs split randomly into N chunks (seeded)", () => {
    const rand = rng(0x5eed);
    const alphabet = ["a", "b", "\n", "\r", "\r\n", "xyz", "\n\n", "é"];
    for (let round = 0; round < 400; round++) {
      let input = "";
      const n = Math.floor(rand() * 40);
      for (let i = 0; i < n; i++) input += alphabet[Math.floor(rand() * alphabet.length)];
      if (rand() < 0.3) input += "w".repeat(Math.floor(rand() * 30)) + "\n";
      const max = Math.floor(rand() * 12);
      const points: number[] = [];
      for (let i = 0; i < input.length; i++) if (rand() < 0.3) points.push(i);
      const b = bytes(input);
      expect(run(splitAt(latin1(b), points), max)).toEqual(model(latin1(b), max));
    }
  });
});

describe("LineSplitter: maximum line length", () => {
  const max = 8;
  const at = "x".repeat(max);
  const over = "y".repeat(max + 1);

  test("exactly at the maximum passes, one over is reported (LF, within a chunk)", () => {
    expect(run([bytes(`${at}\n${over}\nok\n`)], max)).toEqual([
      ["line", at, true],
      ["long", max + 1],
      ["line", "ok", true],
    ]);
  });

  test("exactly at the maximum passes, one over is reported (CRLF, within a chunk)", () => {
    expect(run([bytes(`${at}\r\n${over}\r\nok\r\n`)], max)).toEqual([
      ["line", at, false],
      ["long", max + 1],
      ["line", "ok", false],
    ]);
  });

  test("at / over the maximum across chunks, at every split point, LF and CRLF", () => {
    for (const eol of ["\n", "\r\n"]) {
      const input = `${at}${eol}${over}${eol}${at}${eol}ok${eol}`;
      const want: Ev[] = [
        ["line", at, eol === "\n"],
        ["long", max + 1],
        ["line", at, eol === "\n"],
        ["line", "ok", eol === "\n"],
      ];
      expect(model(input, max)).toEqual(want);
      for (let p = 0; p <= input.length; p++) {
        expect(run(splitAt(input, [p]), max)).toEqual(want);
        for (let q = p; q <= input.length; q++) expect(run(splitAt(input, [p, q]), max)).toEqual(want);
      }
    }
  });

  test("a last line (no newline) over the maximum is reported at finish(), not forwarded", () => {
    expect(run([bytes(`ok\n${over}`)], max)).toEqual([
      ["line", "ok", true],
      ["long", max + 1],
    ]);
    expect(run([bytes(`ok\n${at}`)], max)).toEqual([
      ["line", "ok", true],
      ["line", at, false],
    ]);
    // Held across chunks, then EOF.
    expect(run([bytes(over.slice(0, 4)), bytes(over.slice(4))], max)).toEqual([["long", max + 1]]);
    expect(run([bytes(`${at}\r`)], max)).toEqual([["line", at, false]]);
  });

  test("a huge line over many chunks is reported once, with its full length; later lines arrive", () => {
    for (const eol of ["\n", "\r\n"]) {
      const huge = "h".repeat(10_000);
      const input = `before${eol}${huge}${eol}after${eol}tail`;
      for (const size of [1, 7, 64, 999, 4096]) {
        const points: number[] = [];
        for (let i = size; i < input.length; i += size) points.push(i);
        expect(run(splitAt(input, points), 100)).toEqual([
          ["line", "before", eol === "\n"],
          ["long", 10_000],
          ["line", "after", eol === "\n"],
          ["line", "tail", false],
        ]);
      }
    }
  });

  test("a huge last line without newline is reported once at finish()", () => {
    const huge = "h".repeat(5000);
    const points: number[] = [];
    for (let i = 13; i < huge.length; i += 13) points.push(i);
    expect(run(splitAt(huge, points), 100)).toEqual([["long", 5000]]);
    expect(run(splitAt(huge + "\r", points), 100)).toEqual([["long", 5000]]);
  });

  test("maximum 0: only empty lines pass", () => {
    expect(run([bytes("\na\n\r\n")], 0)).toEqual([
      ["line", "", true],
      ["long", 1],
      ["line", "", false],
    ]);
  });
});

describe("LineSplitter.reset", () => {
  test("drops a partial line and returns its size", () => {
    const events: Ev[] = [];
    const s = new LineSplitter(100, (n) => events.push(["long", n]));
    const onLine = (buf: Uint8Array, start: number, end: number, lf: boolean) => events.push(["line", latin1(buf.subarray(start, end)), lf]);
    s.push(bytes("done\nhalf a li"), onLine);
    expect(s.reset()).toBe(9);
    expect(s.partialBytes).toBe(0);
    s.push(bytes("ne\nnew\n"), onLine);
    s.finish(onLine);
    expect(events).toEqual([
      ["line", "done", true],
      ["line", "ne", true],
      ["line", "new", true],
    ]);
    expect(s.reset()).toBe(0);
  });

  test("reset inside a line already over the maximum: its size, no report, and the next line is clean", () => {
    const events: Ev[] = [];
    const s = new LineSplitter(4, (n) => events.push(["long", n]));
    const onLine = (buf: Uint8Array, start: number, end: number, lf: boolean) => events.push(["line", latin1(buf.subarray(start, end)), lf]);
    s.push(bytes("abcdefgh"), onLine);
    s.push(bytes("ij"), onLine);
    expect(s.reset()).toBe(10);
    s.push(bytes("ok\n"), onLine);
    expect(events).toEqual([["line", "ok", true]]);
  });

  test("reset after a CR does not make the next line lose a byte", () => {
    const events: Ev[] = [];
    const s = new LineSplitter(4, (n) => events.push(["long", n]));
    const onLine = (buf: Uint8Array, start: number, end: number, lf: boolean) => events.push(["line", latin1(buf.subarray(start, end)), lf]);
    s.push(bytes("abcdefg\r"), onLine);
    s.reset();
    s.push(bytes("abcdefg"), onLine);
    s.push(bytes("\n"), onLine);
    expect(events).toEqual([["long", 7]]);
  });
});
