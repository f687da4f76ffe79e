import { describe, expect, test } from "bun:test";
import { OutputBuilder } from "../../src/pipeline/output.ts";

const enc = { encode: (t: string) => Buffer.from(t) };
const text = (parts: Uint8Array[]) => parts.map((p) => Buffer.from(p).toString()).join("");

describe("OutputBuilder", () => {
  test("nothing added: take() is null", () => {
    const o = new OutputBuilder();
    expect(o.take()).toBeNull();
  });

  test("a long contiguous run of one buffer leaves as one view, without a copy", () => {
    const line = "x".repeat(99) + "\n";
    const buf = enc.encode(line.repeat(100)); // 10,000 bytes: over the view threshold
    const o = new OutputBuilder();
    for (let i = 0; i < 100; i++) o.addRange(buf, i * 100, (i + 1) * 100);
    const e = o.take();
    expect(e).not.toBeNull();
    if (!e) return;
    expect(e.parts.length).toBe(1);
    const v = e.parts[0] as Uint8Array;
    expect(v.buffer).toBe(buf.buffer);
    expect(v.byteOffset).toBe(buf.byteOffset);
    expect(v.length).toBe(10_000);
    expect(e.lines).toBe(100);
    expect(e.bytes).toBe(10_000);
    // A view: the builder did not copy the bytes.
    buf[0] = 0x7a;
    expect(v[0]).toBe(0x7a);
  });

  test("short runs are copied into one shared part, not one view per line", () => {
    const buf = enc.encode("a\nbb\nccc\n");
    const o = new OutputBuilder();
    o.addRange(buf, 0, 2);
    o.addRange(buf, 5, 9); // gap: "bb\n" is not forwarded
    const e = o.take();
    if (!e) throw new Error("entry expected");
    expect(e.parts.length).toBe(1);
    expect(text(e.parts)).toBe("a\nccc\n");
    // A copy: changing the source afterwards does not change the output.
    buf[0] = 0x7a;
    expect(text(e.parts)).toBe("a\nccc\n");
  });

  test("gaps, other buffers and addLine keep the order of lines", () => {
    const a = enc.encode("a\nskip\nb\n");
    const other = enc.encode("c\n");
    const big = enc.encode("y".repeat(9999) + "\n");
    const o = new OutputBuilder();
    o.addRange(a, 0, 2);
    o.addRange(a, 7, 9); // gap: "skip\n" is not forwarded
    o.addRange(other, 0, 2); // another buffer
    o.addLine(enc.encode("d"));
    o.addRange(big, 0, big.length); // long enough to be a view of its own
    o.addRange(other, 0, 2);
    o.addLine(new Uint8Array(0));
    const e = o.take();
    if (!e) throw new Error("entry expected");
    expect(text(e.parts)).toBe("a\nb\nc\nd\n" + "y".repeat(9999) + "\nc\n\n");
    expect(e.parts.length).toBe(3);
    expect((e.parts[1] as Uint8Array).buffer).toBe(big.buffer);
    expect(e.lines).toBe(7);
    expect(e.bytes).toBe(8 + 10_000 + 3);
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
