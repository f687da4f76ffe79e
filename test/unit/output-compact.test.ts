import { describe, expect, test } from "bun:test";
import { OutputBuilder } from "../../src/pipeline/output.ts";
import { rng } from "./rng.ts";

const text = (parts: Uint8Array[]) => parts.map((p) => Buffer.from(p).toString("latin1")).join("");

/** The [start, end) of each line of `s` (with its "\n"). */
function lineRanges(s: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "\n") {
      out.push([start, i + 1]);
      start = i + 1;
    }
  }
  return out;
}

describe("OutputBuilder.keep (compaction in place)", () => {
  test("neighbouring lines of a chunk are not moved: one view of the chunk", () => {
    const buf = Buffer.from("a\nbb\nccc\n");
    const o = new OutputBuilder();
    for (const [s, e] of lineRanges(buf.toString())) o.keep(buf, s, e);
    const e = o.take();
    if (!e) throw new Error("entry expected");
    expect(e.parts.length).toBe(1);
    const v = e.parts[0] as Uint8Array;
    expect(v.buffer).toBe(buf.buffer);
    expect(v.byteOffset).toBe(buf.byteOffset);
    expect(text(e.parts)).toBe("a\nbb\nccc\n");
    expect(e.lines).toBe(3);
    expect(e.bytes).toBe(9);
  });

  test("kept pieces between dropped bytes move to the front of the chunk, still one view", () => {
    const s = "e\ndata: first payload\n\ne\ndata: second payload\n\n";
    const buf = Buffer.from(s);
    const o = new OutputBuilder();
    const a = s.indexOf("first");
    const b = s.indexOf("second");
    o.keep(buf, a, s.indexOf("\n", a) + 1);
    o.keep(buf, b, s.indexOf("\n", b) + 1);
    const e = o.take();
    if (!e) throw new Error("entry expected");
    expect(e.parts.length).toBe(1);
    expect((e.parts[0] as Uint8Array).buffer).toBe(buf.buffer);
    expect(text(e.parts)).toBe("first payload\nsecond payload\n");
    expect(e.bytes).toBe(29);
    expect(e.lines).toBe(2);
  });

  test("keepContent turns CRLF into LF", () => {
    const buf = Buffer.from("a\r\nbb\r\nskip\r\ncc\n");
    const o = new OutputBuilder();
    o.keepContent(buf, 0, 1);
    o.keepContent(buf, 3, 5);
    o.keep(buf, 13, 16);
    const e = o.take();
    expect(e && text(e.parts)).toBe("a\nbb\ncc\n");
    expect(e?.bytes).toBe(8);
    expect(e?.lines).toBe(3);
  });

  test("a region under half of its chunk is copied out (the chunk is not kept alive for it)", () => {
    const buf = Buffer.from("x".repeat(100) + "\nkeep\n");
    const o = new OutputBuilder();
    o.keep(buf, 101, 106);
    const e = o.take();
    if (!e) throw new Error("entry expected");
    expect(text(e.parts)).toBe("keep\n");
    expect((e.parts[0] as Uint8Array).buffer).not.toBe(buf.buffer);
  });

  test("keep, addLine and addRange interleaved keep the order of lines", () => {
    const chunk = Buffer.from("one\ntwo\nthree\nfour\n");
    const other = Buffer.from("carried\n");
    const o = new OutputBuilder();
    o.keep(other, 0, 8);
    o.keep(chunk, 0, 4);
    o.addLine(Buffer.from("rewritten"));
    o.keep(chunk, 8, 14);
    o.addRange(Buffer.from("ranged\n"), 0, 7);
    o.keep(chunk, 14, 19);
    const e = o.take();
    expect(e && text(e.parts)).toBe("carried\none\nrewritten\nthree\nranged\nfour\n");
    expect(e?.lines).toBe(6);
    expect(e?.bytes).toBe(e ? text(e.parts).length : -1);
  });

  test("take() resets: the next chunk starts a new region", () => {
    const a = Buffer.from("skip\nx\n");
    const b = Buffer.from("y\n");
    const o = new OutputBuilder();
    o.keep(a, 5, 7);
    const first = o.take();
    o.keep(b, 0, 2);
    const second = o.take();
    expect(first && text(first.parts)).toBe("x\n");
    expect(second && text(second.parts)).toBe("y\n");
    expect(o.take()).toBeNull();
  });

  test("random keeps, drops and rewrites give the forwarded lines in order (seeded)", () => {
    const rand = rng(7);
    for (let round = 0; round < 500; round++) {
      const o = new OutputBuilder();
      let want = "";
      const entries: Uint8Array[] = [];
      for (let c = 0; c < 3; c++) {
        const lines = Array.from({ length: Math.floor(rand() * 12) }, (_, i) => `${c}.${i}${"z".repeat(Math.floor(rand() * 30))}${rand() < 0.3 ? "\r" : ""}`);
        const s = lines.map((l) => l + "\n").join("");
        const buf = Buffer.from(s, "latin1");
        let start = 0;
        for (const l of lines) {
          const end = start + l.length; // at the "\n"
          const r = rand();
          const cr = l.endsWith("\r");
          const contentEnd = cr ? end - 1 : end;
          if (r < 0.3) {
            // dropped
          } else if (r < 0.4) {
            o.addLine(Buffer.from(`new ${l.replace("\r", "")}`));
            want += `new ${l.replace("\r", "")}\n`;
          } else if (cr) {
            o.keepContent(buf, start, contentEnd);
            want += l.slice(0, -1) + "\n";
          } else {
            o.keep(buf, start, end + 1);
            want += l + "\n";
          }
          start = end + 1;
        }
        const e = o.take();
        if (e) {
          entries.push(...e.parts);
          expect(e.bytes).toBe(e.parts.reduce((n, p) => n + p.length, 0));
        }
      }
      expect(text(entries)).toBe(want);
    }
  });
});
