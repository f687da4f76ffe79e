import { describe, expect, test } from "bun:test";
import { LineFilter } from "../../src/pipeline/filter.ts";
import { HttpFramer, payloadStart, type FramerEvents } from "../../src/pipeline/framing.ts";
import type { QueueEntry } from "../../src/queue.ts";
import { rng } from "./rng.ts";

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { ignoreBOM: true });
const fatal = new TextDecoder("utf-8", { ignoreBOM: true, fatal: true });


function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const b = (...xs: Array<string | number[]>): Uint8Array => concat(xs.map((x) => (typeof x === "string" ? enc.encode(x) : new Uint8Array(x))));

type Ev = ["long", number] | ["lagged", number] | ["filtered", "include" | "exclude"] | ["skipped"] | ["invalid"];

interface Result {
  out: string;
  outBytes: Uint8Array;
  events: Ev[];
  entries: QueueEntry[];
  linesSeen: number;
}

function recorder(events: Ev[]): FramerEvents {
  return {
    tooLong: (n) => events.push(["long", n]),
    lagged: (n) => events.push(["lagged", n]),
    filtered: (by) => events.push(["filtered", by]),
    skipped: () => events.push(["skipped"]),
    invalidUtf8: () => events.push(["invalid"]),
  };
}

function checkEntry(e: QueueEntry): void {
  const all = concat(e.parts);
  expect(e.bytes).toBe(all.length);
  expect(e.lines).toBeGreaterThan(0);
  expect(all.filter((x) => x === 10).length).toBe(e.lines);
  expect(all[all.length - 1]).toBe(10);
}

function frame(chunks: Uint8Array[], opts: { filter?: LineFilter | null; max?: number; finish?: boolean } = {}): Result {
  const events: Ev[] = [];
  const f = new HttpFramer(opts.filter ?? null, opts.max ?? 1 << 20, recorder(events));
  const entries: QueueEntry[] = [];
  for (const c of chunks) {
    const e = f.feed(c);
    if (e) entries.push(e);
  }
  if (opts.finish !== false) {
    const e = f.finish();
    if (e) entries.push(e);
  }
  for (const e of entries) checkEntry(e);
  const outBytes = concat(entries.flatMap((e) => e.parts));
  return { out: dec.decode(outBytes), outBytes, events, entries, linesSeen: f.linesSeen };
}

const lit = (s: string): Uint8Array[] => [enc.encode(s)];

/** An independent model of REFERENCE's framing over the whole input at once. */
function reference(input: Uint8Array, max: number, filter: { include: RegExp[]; exclude: RegExp[] } | null): { outBytes: Uint8Array; events: Ev[]; linesSeen: number } {
  const events: Ev[] = [];
  const out: Uint8Array[] = [];
  let linesSeen = 0;
  const lines: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i < input.length; i++) {
    if (input[i] === 10) {
      lines.push(input.subarray(start, i));
      start = i + 1;
    }
  }
  const last = input.subarray(start);
  const handle = (raw: Uint8Array, final: boolean) => {
    const line = raw.length > 0 && raw[raw.length - 1] === 13 ? raw.subarray(0, -1) : raw;
    if (line.length > max) return void events.push(["long", line.length]);
    if (final && line.length === 0) return;
    linesSeen++;
    const latin = Buffer.from(line).toString("latin1");
    if (latin === "") return void events.push(["skipped"]);
    if (latin.startsWith(":")) {
      const m = /^:\s*lagged:\s*skipped\s+(\d+)/.exec(dec.decode(line.subarray(0, 80)));
      if (m) events.push(["lagged", Number(m[1])]);
      return void events.push(["skipped"]);
    }
    if (latin.startsWith("event:") || latin.startsWith("id:") || latin.startsWith("retry:")) return void events.push(["skipped"]);
    let payload = line;
    if (latin.startsWith("data:")) payload = line.subarray(5 + (/^ */.exec(latin.slice(5))?.[0].length ?? 0));
    if (payload.length === 0) return void events.push(["skipped"]);
    let valid = true;
    try {
      fatal.decode(payload);
    } catch {
      valid = false;
      events.push(["invalid"]);
    }
    const text = dec.decode(payload);
    if (filter) {
      if (filter.include.length > 0 && !filter.include.some((r) => r.test(text))) return void events.push(["filtered", "include"]);
      if (filter.exclude.some((r) => r.test(text))) return void events.push(["filtered", "exclude"]);
    }
    out.push(valid ? payload : enc.encode(text), new Uint8Array([10]));
  };
  for (const l of lines) handle(l, false);
  handle(last, true);
  return { outBytes: concat(out), events, linesSeen };
}

describe("payloadStart", () => {
  const ps = (s: string) => {
    const buf = enc.encode(`##${s}##`);
    const p = payloadStart(buf, 2, buf.length - 2);
    return p < 0 ? null : Buffer.from(buf.subarray(p, buf.length - 2)).toString();
  };

  test("framing-only lines", () => {
    for (const s of ["", ":", ": keepalive", ":x", "event:", "event: message", "id:", "id: 7", "retry:", "retry: 1000"]) expect(ps(s)).toBeNull();
  });

  test("data: with and without spaces (all leading spaces removed, as the reference does)", () => {
    expect(ps("data: X")).toBe("X");
    expect(ps("data:X")).toBe("X");
    expect(ps("data:  two")).toBe("two");
    expect(ps("data:\t tab")).toBe("\t tab");
    expect(ps("data:")).toBe("");
    expect(ps("data: ")).toBe("");
    expect(ps("data:    ")).toBe("");
    expect(ps('data: {"a":1}')).toBe('{"a":1}');
  });

  test("everything else is verbatim, including lines starting with d/e/i/r but not the prefixes", () => {
    for (const s of [
      "debug: something",
      "data",
      "dat:a",
      "Data: X",
      "d",
      "error: boom",
      "event",
      "events: 3",
      "e",
      "info: hello",
      "id",
      "idx: 1",
      "i",
      "retry",
      "retrying: soon",
      "r",
      " data: X",
      '{"msg":"x"}',
    ])
      expect(ps(s)).toBe(s);
  });

  test("respects the [start, end) window", () => {
    const buf = enc.encode("data: Xevent:");
    expect(payloadStart(buf, 0, 7)).toBe(6);
    expect(payloadStart(buf, 7, 13)).toBe(-1);
    // "dat" cut short by `end` is not "data:".
    expect(payloadStart(buf, 0, 3)).toBe(0);
    expect(payloadStart(buf, 5, 5)).toBe(-1);
  });
});

describe("HttpFramer rules", () => {
  test("ndjson lines are forwarded as they are", () => {
    const r = frame(lit('{"a":1}\n{"b":2}\n'));
    expect(r.out).toBe('{"a":1}\n{"b":2}\n');
    expect(r.events).toEqual([]);
    expect(r.linesSeen).toBe(2);
  });

  test("SSE: data lines forwarded, comments, fields and empty lines skipped", () => {
    const r = frame(lit("event: log\nid: 1\nretry: 500\ndata: first\n\n: keepalive\ndata:second\n\n"));
    expect(r.out).toBe("first\nsecond\n");
    expect(r.events.filter((e) => e[0] === "skipped").length).toBe(6);
    expect(r.linesSeen).toBe(8);
  });

  test("debug/error/info/retry-like words are forwarded verbatim", () => {
    const r = frame(lit("debug x\nerror y\ninfo z\nretrying\nidle\ndatabase up\n"));
    expect(r.out).toBe("debug x\nerror y\ninfo z\nretrying\nidle\ndatabase up\n");
    expect(r.events).toEqual([]);
  });

  test("empty data payloads are skipped", () => {
    const r = frame(lit("data:\ndata: \ndata:   \nx\n"));
    expect(r.out).toBe("x\n");
    expect(r.events).toEqual([["skipped"], ["skipped"], ["skipped"]]);
  });

  test("': lagged: skipped 42 entries' reports lagged(42) and is not forwarded", () => {
    const r = frame(lit("a\n: lagged: skipped 42 entries\n:lagged: skipped 7\n: lagged\n: not lagged: skipped 3\nb\n"));
    expect(r.out).toBe("a\nb\n");
    expect(r.events).toEqual([["lagged", 42], ["skipped"], ["lagged", 7], ["skipped"], ["skipped"], ["skipped"]]);
  });

  test("lagged notice split across chunks", () => {
    const s = ": lagged: skipped 1234 entries\r\n";
    for (let p = 0; p <= s.length; p++) {
      const whole = enc.encode(s);
      expect(frame([whole.slice(0, p), whole.slice(p)]).events).toEqual([["lagged", 1234], ["skipped"]]);
    }
  });

  test("CRLF, a final line without newline and lines over the maximum", () => {
    const r = frame(lit("data: a\r\nb\r\n" + "x".repeat(20) + "\r\nlast"), { max: 10 });
    expect(r.out).toBe("a\nb\nlast\n");
    expect(r.events).toEqual([["long", 20]]);
  });

  test("finish() without a pending line returns null; reset() drops a half line", () => {
    const events: Ev[] = [];
    const f = new HttpFramer(null, 100, recorder(events));
    expect(f.feed(enc.encode("a\nhal"))).not.toBeNull();
    expect(f.reset()).toBe(3);
    expect(f.finish()).toBeNull();
    expect(f.feed(enc.encode("f"))).toBeNull();
    const e = f.finish();
    expect(e && dec.decode(concat(e.parts))).toBe("f\n");
  });

  test("a feed with no complete line returns null", () => {
    const f = new HttpFramer(null, 100, recorder([]));
    expect(f.feed(enc.encode("partial"))).toBeNull();
    expect(f.feed(enc.encode(""))).toBeNull();
    expect(new HttpFramer(null, 100, recorder([])).feed(enc.encode(": comment\n"))).toBeNull();
  });
});

describe("HttpFramer output", () => {
  test("a large chunk of plain ndjson leaves as one uncopied view of the chunk", () => {
    const chunk = enc.encode('{"a":1}\n'.repeat(2000)); // 16,000 bytes
    const f = new HttpFramer(null, 100, recorder([]));
    const e = f.feed(chunk);
    expect(e).not.toBeNull();
    if (!e) return;
    expect(e.parts.length).toBe(1);
    const part = e.parts[0] as Uint8Array;
    expect(part.buffer).toBe(chunk.buffer);
    expect(part.byteOffset).toBe(chunk.byteOffset);
    expect(part.length).toBe(chunk.length);
    expect(e.lines).toBe(2000);
    expect(e.bytes).toBe(chunk.length);
  });

  test("SSE data lines are gathered into one part (payload + newline each)", () => {
    const chunk = enc.encode("data: one\nevent: x\ndata: two\n");
    const e = new HttpFramer(null, 100, recorder([])).feed(chunk);
    if (!e) throw new Error("entry expected");
    expect(e.parts.length).toBe(1);
    expect(e.parts.map((p) => dec.decode(p))).toEqual(["one\ntwo\n"]);
  });

  test("output is exactly the forwarded lines, each + \\n, with a filter and mixed framing", () => {
    const filter = new LineFilter({ include: [/keep/], exclude: [/drop/] });
    const r = frame(lit("keep 1\r\ndata: keep 2\nno\nkeep drop\n: c\nevent: x\nkeep 3"), { filter });
    expect(r.out).toBe("keep 1\nkeep 2\nkeep 3\n");
    expect(r.events).toEqual([["filtered", "include"], ["filtered", "exclude"], ["skipped"], ["skipped"]]);
  });
});

describe("HttpFramer UTF-8", () => {
  test("invalid UTF-8 is replaced with U+FFFD and counted (within a chunk)", () => {
    const r = frame([b("ok\nbad ", [0xff], " x\ndata: ", [0xc3, 0x28], "\n", [0xe2, 0x82], "\n")]);
    expect(r.out).toBe("ok\nbad \uFFFD x\n\uFFFD(\n\uFFFD\n");
    expect(r.events).toEqual([["invalid"], ["invalid"], ["invalid"]]);
  });

  test("invalid UTF-8 in a line split across chunks is counted once", () => {
    const whole = b("start\nab", [0xff, 0xfe], "cd\nend\n");
    for (let p = 0; p <= whole.length; p++) {
      const r = frame([whole.slice(0, p), whole.slice(p)]);
      expect(r.out).toBe("start\nab\uFFFD\uFFFDcd\nend\n");
      expect(r.events).toEqual([["invalid"]]);
    }
  });

  test("a multi-byte character split across chunks is not invalid", () => {
    const whole = enc.encode("héllo 日本 🎉\ndata: ünïcödé\n");
    for (let p = 0; p <= whole.length; p++) {
      for (const filter of [null, new LineFilter({ include: [/日本|ü/], exclude: [] })]) {
        const r = frame([whole.slice(0, p), whole.slice(p)], { filter });
        expect(r.out).toBe("héllo 日本 🎉\nünïcödé\n");
        expect(r.events).toEqual([]);
      }
    }
  });

  test("a leading BOM is kept, in the output and in what filters see", () => {
    const r = frame([b([0xef, 0xbb, 0xbf], "bom\n", [0xef, 0xbb, 0xbf], "bad ", [0xff], "\n")], {
      filter: new LineFilter({ include: [/^\uFEFF/], exclude: [] }),
    });
    expect(r.out).toBe("\uFEFFbom\n\uFEFFbad \uFFFD\n");
    expect(r.events).toEqual([["invalid"]]);
  });
});

describe("HttpFramer filters", () => {
  test("filters see the payload, after data:", () => {
    const filter = new LineFilter({ include: [/^payload/], exclude: [] });
    const r = frame(lit("data: payload a\ndata:payload b\npayload c\nx payload\n"), { filter });
    expect(r.out).toBe("payload a\npayload b\npayload c\n");
    expect(r.events).toEqual([["filtered", "include"]]);
  });

  test("include is an OR; exclude applies after include", () => {
    const filter = new LineFilter({ include: [/alpha/, /beta/], exclude: [/beta.*gamma/, /^skip/] });
    const r = frame(lit("alpha\nbeta\ndelta\nbeta gamma\nskip alpha\nalpha gamma\n"), { filter });
    expect(r.out).toBe("alpha\nbeta\nalpha gamma\n");
    expect(r.events).toEqual([
      ["filtered", "include"],
      ["filtered", "exclude"],
      ["filtered", "exclude"],
    ]);
  });

  test("only excludes", () => {
    const filter = new LineFilter({ include: [], exclude: [/DEBUG/] });
    expect(frame(lit("INFO a\nDEBUG b\nWARN c\n"), { filter }).out).toBe("INFO a\nWARN c\n");
  });

  test("the ASCII fast path and the non-ASCII path decide the same", () => {
    const filter = () => new LineFilter({ include: [/^a/, /z$/g, /\bmid\b/], exclude: [/x{2}/, /^abc$/] });
    const lines = ["abc", "abd", "xyz", "a mid", "mid", "q mid q", "axx", "zzz", "data: abz", "data:mid", "nothing", "  a"];
    const ascii = lines.join("\n") + "\n";
    const fast = frame(lit(ascii), { filter: filter() });
    // The same lines, in a chunk that is not ASCII (a trailing non-ASCII line): every line takes the decode path.
    const slow = frame(lit(ascii + "é\n"), { filter: filter() });
    // And one line per chunk, each carried (copied) through the splitter.
    const carried = frame(
      lines.flatMap((l) => [enc.encode(l), enc.encode("\n")]),
      { filter: filter() },
    );
    expect(fast.out).toBe("abd\nxyz\na mid\nmid\nq mid q\nzzz\nabz\nmid\n");
    expect(slow.out).toBe(fast.out);
    expect(slow.events).toEqual([...fast.events, ["filtered", "include"]]);
    expect(carried.out).toBe(fast.out);
    expect(carried.events).toEqual(fast.events);
  });
});

describe("HttpFramer against a reference model (seeded random chunks)", () => {
  const words: Array<string | number[]> = [
    "hello world",
    '{"level":"info","msg":"started"}',
    // JSON object lines take the framer's run fast path when nothing filters.
    "{}",
    "{",
    '{"a":1}',
    '{"msg":"日本 🎉"}',
    [0x7b, 0xff, 0x7d], // "{" + invalid + "}"
    "debug: x",
    "error something",
    "info",
    "id",
    "idx: 1",
    "event",
    "eventual",
    "retry",
    "retrying now",
    "dat",
    "data",
    "datum: 3",
    "d",
    "e",
    "i",
    "r",
    "data: payload",
    "data:tight",
    "data:",
    "data: ",
    "data:  two spaces",
    "event: message",
    "id: 42",
    "retry: 1000",
    ": keepalive",
    ":",
    ": lagged: skipped 42 entries",
    ":lagged: skipped 9",
    "",
    "héllo wörld",
    "日本語のログ",
    "emoji 🎉 party",
    "\uFEFFbom line",
    "cr\rinside",
    "keep me",
    "drop me",
    [0xff],
    [0x80, 0x41],
    [0xe2, 0x82],
    [0xc0, 0xaf],
    [0xed, 0xa0, 0x80],
    [0x64, 0x61, 0x74, 0x61, 0x3a, 0x20, 0xfe], // "data: " + invalid
  ];
  const filters: Array<{ include: RegExp[]; exclude: RegExp[] } | null> = [
    null,
    { include: [/o/], exclude: [] },
    { include: [/data|log|é|keep/, /^d/], exclude: [/wörld|party|drop/] },
    { include: [], exclude: [/^e/, /\uFFFD/] },
    { include: [/l/g], exclude: [/x/y] },
  ];

  test("random lines, random endings, random chunk boundaries", () => {
    const rand = rng(20260319);
    const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)] as T;
    for (let round = 0; round < 1500; round++) {
      const max = rand() < 0.5 ? 1 << 20 : 8 + Math.floor(rand() * 24);
      const pieces: Array<string | number[]> = [];
      const n = Math.floor(rand() * 12);
      for (let i = 0; i < n; i++) {
        let w = pick(words);
        if (rand() < 0.2) w = concat([b(pick(words)), b(pick(words))]).reduce<number[]>((a, x) => (a.push(x), a), []);
        if (rand() < 0.05) w = "long ".repeat(10);
        pieces.push(w, rand() < 0.3 ? "\r\n" : "\n");
      }
      if (rand() < 0.3) pieces.push(pick(words));
      const input = b(...pieces);
      const points: number[] = [];
      const density = rand();
      for (let i = 1; i < input.length; i++) if (rand() < density * 0.5) points.push(i);
      const chunks: Uint8Array[] = [];
      let prev = 0;
      for (const p of [...points, input.length]) {
        chunks.push(input.slice(prev, p));
        prev = p;
      }
      const fcfg = pick(filters);
      const clone = (rs: RegExp[]) => rs.map((r) => new RegExp(r.source, r.flags.replace(/[gy]/g, "")));
      const want = reference(input, max, fcfg && { include: clone(fcfg.include), exclude: clone(fcfg.exclude) });
      const got = frame(chunks, { max, filter: fcfg && new LineFilter({ include: [...fcfg.include], exclude: [...fcfg.exclude] }) });
      const ctx = `round ${round}: ${JSON.stringify(Buffer.from(input).toString("latin1"))} at ${JSON.stringify(points)}`;
      expect({ ctx, out: Buffer.from(got.outBytes).toString("hex") }).toEqual({ ctx, out: Buffer.from(want.outBytes).toString("hex") });
      expect({ ctx, events: got.events }).toEqual({ ctx, events: want.events });
      expect(got.linesSeen).toBe(want.linesSeen);
    }
  });
});
