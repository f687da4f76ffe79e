import { describe, expect, test } from "bun:test";
import { NEWLINE, OutputBuilder } from "../../src/pipeline/output.ts";

const enc = new TextEncoder();
const text = (parts: Uint8Array[]) => parts.map((p) => Buffer.from(p).toString()).join("");

describe("OutputBuilder", () => {
  test("nothing added: take() is null", () => {
    const o = new OutputBuilder();
    expect(o.take()).toBeNull();
  });

  test("contiguous ranges of one buffer merge into one view, without a copy", () => {
    const buf = enc.encode("a\nbb\nccc\n");
    const o = new OutputBuilder();
    o.addRange(buf, 0, 2);
    o.addRange(buf, 2, 5);
    o.addRange(buf, 5, 9);
    const e = o.take();
    expect(e).not.toBeNull();
    if (!e) return;
    expect(e.parts.length).toBe(1);
    const v = e.parts[0] as Uint8Array;
    expect(v.buffer).toBe(buf.buffer);
    expect(v.byteOffset).toBe(buf.byteOffset);
    expect(v.length).toBe(9);
    expect(e.lines).toBe(3);
    expect(e.bytes).toBe(9);
    // A view: the builder did not copy the bytes.
    buf[0] = 0x7a;
    expect(v[0]).toBe(0x7a);
  });

  test("a gap, another buffer or addLine starts a new part", () => {
    const a = enc.encode("a\nskip\nb\n");
    const other = enc.encode("c\n");
    const o = new OutputBuilder();
    o.addRange(a, 0, 2);
    o.addRange(a, 7, 9); // gap: "skip\n" is not forwarded
    o.addRange(other, 0, 2); // another buffer
    o.addLine(enc.encode("d"));
    o.addRange(other, 0, 2);
    o.addLine(new Uint8Array(0));
    const e = o.take();
    if (!e) throw new Error("entry expected");
    expect(text(e.parts)).toBe("a\nb\nc\nd\nc\n\n");
    expect(e.parts.map((p) => p.length)).toEqual([2, 2, 2, 1, 1, 2, 1]);
    expect(e.parts[4]).toBe(NEWLINE);
    expect(e.lines).toBe(6);
    expect(e.bytes).toBe(11);
  });

  test("ranges with several lines count them", () => {
    const buf = enc.encode("1\n2\n3\n");
    const o = new OutputBuilder();
    o.addRange(buf, 0, 6, 3);
    const e = o.take();
    expect(e?.lines).toBe(3);
    expect(e?.parts.length).toBe(1);
  });

  test("take() resets: the next batch is independent", () => {
    const buf = enc.encode("a\nb\n");
    const o = new OutputBuilder();
    o.addRange(buf, 0, 2);
    const first = o.take();
    // Contiguous with the previous take's range, but that run is closed.
    o.addRange(buf, 2, 4);
    const second = o.take();
    expect(first && text(first.parts)).toBe("a\n");
    expect(second && text(second.parts)).toBe("b\n");
    expect(second?.bytes).toBe(2);
    expect(second?.lines).toBe(1);
    expect(o.take()).toBeNull();
  });
});
