// The framer's byte paths (literal filters tested on bytes, lines compacted in
// place) against its text paths (the same filters as regexes that cannot be
// literals): same output, same events, for random SSE/ndjson split anywhere.
import { describe, expect, test } from "bun:test";
import { LineFilter } from "../../src/pipeline/filter.ts";
import { HttpFramer, type FramerEvents } from "../../src/pipeline/framing.ts";
import { rng } from "./rng.ts";

function run(input: Uint8Array, cuts: number[], filter: LineFilter | null, max: number): { out: string; events: string[] } {
  const events: string[] = [];
  const ev: FramerEvents = {
    tooLong: (n) => events.push(`long ${n}`),
    lagged: (n) => events.push(`lagged ${n}`),
    filtered: (by) => events.push(`filtered ${by}`),
    skipped: () => events.push("skipped"),
    invalidUtf8: () => events.push("invalid"),
  };
  const f = new HttpFramer(filter, max, ev);
  const parts: Uint8Array[] = [];
  let prev = 0;
  for (const c of [...cuts, input.length]) {
    // A copy per feed (Buffer#slice would be a view): the framer rewrites what it is given.
    const e = f.feed(Uint8Array.prototype.slice.call(input, prev, c));
    if (e) parts.push(...e.parts);
    prev = c;
  }
  const last = f.finish();
  if (last) parts.push(...last.parts);
  return { out: Buffer.concat(parts).toString("latin1"), events };
}

/** The same patterns, but never literal-only (an alternative that cannot match), so matched as text. */
const asText = (rs: RegExp[]) => rs.map((r) => new RegExp(`(?:${r.source})|[^\\s\\S]`, r.flags));

describe("HttpFramer byte paths match the text paths", () => {
  const records = [
    '{"level":"INFO","msg":"GET /api/v1/orders"}',
    '{"level":"WARN","msg":"GET /healthz"}',
    '{"level":"ERROR","msg":"café 日本 🎉"}',
    '{"level":"DEBUG","msg":"x"}',
    "plain text line",
    "\uFEFFbom line",
  ];
  const framing = ["event: log", "id: 7", "retry: 100", ": keepalive", ": lagged: skipped 3 entries", ""];
  const filters: Array<{ include: RegExp[]; exclude: RegExp[] }> = [
    { include: [/"level":"(INFO|WARN|ERROR)"/], exclude: [/\/healthz/] },
    { include: [], exclude: [/DEBUG|日本/] },
    { include: [/🎉|bom/, /plain/], exclude: [] },
    { include: [/\uFEFF/], exclude: [/x/] },
  ];

  test("random streams, random chunk boundaries, CRLF, invalid bytes, long lines", () => {
    const rand = rng(42);
    for (let round = 0; round < 600; round++) {
      const pieces: Buffer[] = [];
      const n = 1 + Math.floor(rand() * 30);
      for (let i = 0; i < n; i++) {
        const r = rand();
        let line: Buffer;
        if (r < 0.35) line = Buffer.from(`data: ${records[Math.floor(rand() * records.length)]}`);
        else if (r < 0.6) line = Buffer.from(framing[Math.floor(rand() * framing.length)] as string);
        else if (r < 0.9) line = Buffer.from(records[Math.floor(rand() * records.length)] as string);
        else if (r < 0.95) line = Buffer.concat([Buffer.from('data: {"level":"INFO","bad":"'), Buffer.from([0xff, 0xc3]), Buffer.from('"}')]);
        else line = Buffer.from(`data: ${"long".repeat(40)}`);
        pieces.push(line, Buffer.from(rand() < 0.2 ? "\r\n" : "\n"));
      }
      if (rand() < 0.3) pieces.push(Buffer.from("data: last without newline"));
      const input = Buffer.concat(pieces);
      const cuts: number[] = [];
      const density = rand();
      for (let i = 1; i < input.length; i++) if (rand() < density * 0.05) cuts.push(i);
      const cfg = filters[Math.floor(rand() * filters.length)] as { include: RegExp[]; exclude: RegExp[] };
      const max = rand() < 0.5 ? 1 << 20 : 120;
      const bytes = new LineFilter(cfg);
      const textual = new LineFilter({ include: asText(cfg.include), exclude: asText(cfg.exclude) });
      expect(bytes.bytes).not.toBeNull();
      expect(textual.bytes).toBeNull();
      const a = run(input, cuts, bytes, max);
      const b = run(input, cuts, textual, max);
      const ctx = `round ${round}`;
      expect({ ctx, out: a.out }).toEqual({ ctx, out: b.out });
      expect({ ctx, events: a.events }).toEqual({ ctx, events: b.events });
    }
  });
});

describe("lagged notices behind the keepalive shortcut", () => {
  test("any whitespace \\s allows before 'lagged' still counts (tab, NBSP, U+3000); keepalives do not", () => {
    const input = Buffer.from(":\tlagged: skipped 5\n:\u00a0lagged: skipped 6\n:\u3000 lagged: skipped 7\n: keepalive\n:\n: \n:lagged: skipped 8\n");
    const r = run(input, [], null, 1 << 20);
    expect(r.events.filter((e) => e.startsWith("lagged"))).toEqual(["lagged 5", "lagged 6", "lagged 7", "lagged 8"]);
    expect(r.events.filter((e) => e === "skipped").length).toBe(7);
    expect(r.out).toBe("");
  });
});
