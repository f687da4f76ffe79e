import { describe, expect, test } from "bun:test";
import { envelopeMiddle, EnvelopeWriter } from "../../src/pipeline/envelope.ts";
import { LineFilter } from "../../src/pipeline/filter.ts";
import { Cursor } from "../../src/sources/kubernetes/cursor.ts";
import { RecordReader } from "../../src/sources/kubernetes/records.ts";
import type { KubeRecord } from "../../src/pipeline/envelope.ts";

type Rec = KubeRecord;

function ts(s: number, ns = 0): string {
  return `2026-03-19T10:23:${String(s).padStart(2, "0")}.${String(ns).padStart(9, "0")}Z`;
}

const MIDDLE = envelopeMiddle({ namespace: "prod", pod: "api-1", container: "app", stream: "output" });

function setup(opts: { cursor?: Cursor; filter?: LineFilter | null; max?: number } = {}) {
  const cursor = opts.cursor ?? new Cursor();
  const writer = new EnvelopeWriter();
  const reader = new RecordReader(cursor, writer, MIDDLE, opts.filter ?? null, opts.max ?? 1024);
  /** Pushes the chunks and returns the records written. */
  const push = (...chunks: Array<string | Uint8Array>): Rec[] => {
    for (const c of chunks) reader.push(typeof c === "string" ? Buffer.from(c, "utf8") : c);
    const t = writer.take();
    if (t === null) return [];
    const text = Buffer.concat(t.parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength))).toString("utf8");
    const lines = text.split("\n");
    expect(lines.pop()).toBe("");
    expect(lines.length).toBe(t.lines);
    return lines.map((l) => JSON.parse(l) as Rec);
  };
  return { cursor, writer, reader, push };
}

const messages = (recs: Rec[]): string[] => recs.map((r) => r.message);

describe("RecordReader", () => {
  test("timestamped lines become envelopes", () => {
    const { reader, push, cursor } = setup();
    const recs = push(`${ts(1, 1)} hello world\n${ts(1, 2)} second "line"\n`);
    expect(recs).toEqual([
      { timestamp: ts(1, 1), namespace: "prod", pod: "api-1", container: "app", stream: "output", message: "hello world" },
      { timestamp: ts(1, 2), namespace: "prod", pod: "api-1", container: "app", stream: "output", message: 'second "line"' },
    ]);
    expect(cursor.state).toEqual({ ts: ts(1, 2), count: 1 });
    expect(reader.counts).toEqual({ read: 2, forwarded: 2, duplicates: 0, filtered: 0, invalidUtf8: 0, tooLong: 0 });
    expect(reader.errors).toEqual([]);
  });

  test("message keeps its spaces; empty message", () => {
    const { push } = setup();
    expect(messages(push(`${ts(1)}   indented  \n${ts(2)} \n${ts(3)}  \n`))).toEqual(["  indented  ", "", " "]);
  });

  test("other timestamp spellings are forwarded as sent", () => {
    const { push } = setup();
    const recs = push("2026-03-19T12:23:01.5+02:00 offset\n2026-03-19T10:23:02Z plain\n");
    expect(recs.map((r) => [r.timestamp, r.message])).toEqual([
      ["2026-03-19T12:23:01.5+02:00", "offset"],
      ["2026-03-19T10:23:02Z", "plain"],
    ]);
  });

  test("a line without a timestamp is kubelet error text: reported, not forwarded", () => {
    const { reader, push, cursor } = setup();
    const recs = push(
      `${ts(1)} before\n`,
      "unable to retrieve container logs for containerd://abc\n",
      "rpc error: code = NotFound desc = an error occurred\n",
      `${ts(2)} after\n`,
    );
    expect(messages(recs)).toEqual(["before", "after"]);
    expect(reader.errors).toEqual(["unable to retrieve container logs for containerd://abc", "rpc error: code = NotFound desc = an error occurred"]);
    expect(cursor.state).toEqual({ ts: ts(2), count: 1 });
    expect(reader.counts.forwarded).toBe(2);
  });

  test("timestamp-like but malformed prefixes are errors, never copied into JSON", () => {
    const { reader, push } = setup();
    const bad = [
      '2026-03-19T10:23:01.12345678"Z x',
      "2026-03-19T10:23:01\\123456789Z x",
      "2026-03-19T10:23:01.12345678\u0001Z x",
      "2026-03-19T10:23:01.1234567890Z x",
      "2026-03-19 10:23:01.123456789Z x",
      "2026-03-19T10:23:01.123456789Zx",
      "noSpacesAtAllInThisVeryLongLineThatGoesOnAndOnForMoreThanFortyBytes",
    ];
    expect(push(bad.join("\n") + "\n")).toEqual([]);
    expect(reader.errors).toEqual(bad);
    expect(reader.counts.forwarded).toBe(0);
  });

  test("error text is capped at 500 bytes per line", () => {
    const { reader, push } = setup({ max: 10_000 });
    push("e".repeat(2000) + "\n");
    expect(reader.errors).toEqual(["e".repeat(500)]);
  });

  test("invalid UTF-8 inside one chunk is replaced and counted", () => {
    const { reader, push } = setup();
    const chunk = Buffer.concat([
      Buffer.from(`${ts(1)} ok é\n${ts(2)} bad `),
      Buffer.from([0xff, 0x41, 0xc3]),
      Buffer.from(` end\n${ts(3)} surrogate `),
      Buffer.from([0xed, 0xa0, 0x80]),
      Buffer.from(`\n${ts(4)} fine 😀\n`),
    ]);
    const recs = push(chunk);
    expect(recs.length).toBe(4);
    expect(recs[0]?.message).toBe("ok é");
    expect(recs[1]?.message.startsWith("bad \ufffdA\ufffd")).toBe(true);
    expect(recs[1]?.message.endsWith(" end")).toBe(true);
    expect(recs[2]?.message.startsWith("surrogate \ufffd")).toBe(true);
    expect(recs[2]?.message.includes("\ud800")).toBe(false);
    expect(recs[3]?.message).toBe("fine 😀");
    expect(reader.counts.invalidUtf8).toBe(2);
  });

  test("invalid UTF-8 in a line split across chunks", () => {
    const { reader, push } = setup();
    const recs = push(Buffer.from(`${ts(1)} split `), Buffer.from([0x80, 0x80]), Buffer.from(" tail\n"));
    expect(messages(recs)).toEqual(["split \ufffd\ufffd tail"]);
    expect(reader.counts.invalidUtf8).toBe(1);
  });

  test("a valid multi-byte character split across chunks is not replaced", () => {
    const { reader, push } = setup();
    const whole = Buffer.from(`${ts(1)} a😀b\n${ts(2)} next\n`);
    const cut = whole.indexOf(Buffer.from("😀")) + 2;
    const recs = push(whole.subarray(0, cut), whole.subarray(cut));
    expect(messages(recs)).toEqual(["a😀b", "next"]);
    expect(reader.counts.invalidUtf8).toBe(0);
  });

  test("byte-by-byte chunks give the same records", () => {
    const text = `${ts(1)} one é\r\n${ts(2)} two 😀\n${ts(3)} three\n`;
    const { push } = setup();
    const bytes = Buffer.from(text);
    const recs: Rec[] = [];
    for (let i = 0; i < bytes.length; i++) recs.push(...push(bytes.subarray(i, i + 1)));
    expect(messages(recs)).toEqual(["one é", "two 😀", "three"]);
  });

  test("filters match the message only, not the timestamp", () => {
    const filter = new LineFilter({ include: [/^ERROR/, /2026-03-19/], exclude: [/secret/] });
    const { reader, push, cursor } = setup({ filter });
    const recs = push(`${ts(1)} ERROR boom\n${ts(2)} info quiet\n${ts(3)} ERROR secret\n${ts(4)} date 2026-03-19 inside\n`);
    expect(messages(recs)).toEqual(["ERROR boom", "date 2026-03-19 inside"]);
    expect(reader.counts.filtered).toBe(2);
    // Filtered lines still move the cursor (they were handled; a resume must not see them as new).
    expect(cursor.state).toEqual({ ts: ts(4), count: 1 });
  });

  test("filters see the replaced text of invalid UTF-8", () => {
    const filter = new LineFilter({ include: [/\ufffd/], exclude: [] });
    const { push } = setup({ filter });
    const recs = push(Buffer.concat([Buffer.from(`${ts(1)} x`), Buffer.from([0xfe]), Buffer.from(`\n${ts(2)} clean\n`)]));
    expect(messages(recs)).toEqual(["x\ufffd"]);
  });

  test("maximum line length applies to the message", () => {
    const max = 100;
    const { reader, push } = setup({ max });
    const exact = "m".repeat(max);
    const over = "o".repeat(max + 1);
    const way = "w".repeat(max * 3);
    const recs = push(`${ts(1)} ${exact}\n${ts(2)} ${over}\n${ts(3)} ${way}\n${ts(4)} ok\n`);
    expect(messages(recs)).toEqual([exact, "ok"]);
    expect(reader.counts.tooLong).toBe(2);
  });

  test("maximum line length with multi-byte characters counts bytes; also when split across chunks", () => {
    const { reader, push } = setup({ max: 8 });
    // "éééé" is 8 bytes; "ééééa" is 9.
    const line1 = Buffer.from(`${ts(1)} éééé\n`);
    const line2 = Buffer.from(`${ts(2)} ééééa\n`);
    const recs = push(line1.subarray(0, 32), line1.subarray(32), line2.subarray(0, 36), line2.subarray(36)); // cut inside an "é"
    expect(messages(recs)).toEqual(["éééé"]);
    expect(reader.counts.tooLong).toBe(1);
  });

  test("CRLF line ends", () => {
    const { reader, push } = setup();
    const recs = push(`${ts(1)} one\r\n${ts(2)} two\r`, `\n${ts(3)} three\r\n`);
    expect(messages(recs)).toEqual(["one", "two", "three"]);
    expect(reader.errors).toEqual([]);
  });

  test("duplicates are counted on resume and not forwarded", () => {
    const cursor = new Cursor();
    const body = `${ts(1)} a\n${ts(2)} b\n${ts(2)} c\n${ts(2)} d\n${ts(3)} e\n`;
    const first = setup({ cursor });
    expect(messages(first.push(`${ts(1)} a\n${ts(2)} b\n${ts(2)} c\n`))).toEqual(["a", "b", "c"]);
    cursor.beginResume();
    const second = setup({ cursor });
    expect(messages(second.push(body))).toEqual(["d", "e"]);
    expect(second.reader.counts).toEqual({ read: 5, forwarded: 2, duplicates: 3, filtered: 0, invalidUtf8: 0, tooLong: 0 });
  });

  test("discardPartial: the unfinished line is not forwarded nor moves the cursor", () => {
    const cursor = new Cursor();
    const r1 = setup({ cursor });
    const partial = `${ts(2)} half a li`;
    expect(messages(r1.push(`${ts(1)} whole\n${partial}`))).toEqual(["whole"]);
    expect(r1.reader.discardPartial()).toBe(Buffer.byteLength(partial));
    expect(r1.reader.discardPartial()).toBe(0);
    expect(r1.writer.take()).toBeNull();
    expect(cursor.state).toEqual({ ts: ts(1), count: 1 });
    // The resume reads it again, whole.
    cursor.beginResume();
    const r2 = setup({ cursor });
    expect(messages(r2.push(`${ts(1)} whole\n${ts(2)} half a line\n`))).toEqual(["half a line"]);
  });

  test("after discardPartial the reader starts at a line boundary", () => {
    const { reader, push } = setup();
    push(`${ts(1)} cut he`);
    reader.discardPartial();
    expect(messages(push(`${ts(2)} fresh\n`))).toEqual(["fresh"]);
  });

  test("finish: a last line without a newline at EOF is a record", () => {
    const { reader, writer, push } = setup();
    expect(messages(push(`${ts(1)} a\n${ts(2)} last words`))).toEqual(["a"]);
    reader.finish();
    const t = writer.take();
    expect(t?.lines).toBe(1);
    const text = Buffer.concat((t?.parts ?? []).map((p) => Buffer.from(p))).toString();
    expect((JSON.parse(text) as Rec).message).toBe("last words");
  });

  test("records of several readers share one writer", () => {
    const writer = new EnvelopeWriter();
    const a = new RecordReader(new Cursor(), writer, envelopeMiddle({ namespace: "n", pod: "p", container: "a", stream: "output" }), null, 1024);
    const b = new RecordReader(new Cursor(), writer, envelopeMiddle({ namespace: "n", pod: "p", container: "b", stream: "output" }), null, 1024);
    a.push(Buffer.from(`${ts(1)} from a\n`));
    b.push(Buffer.from(`${ts(1)} from b\n`));
    const t = writer.take();
    const recs = Buffer.concat((t?.parts ?? []).map((p) => Buffer.from(p)))
      .toString()
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as Rec);
    expect(recs.map((r) => [r.container, r.message])).toEqual([
      ["a", "from a"],
      ["b", "from b"],
    ]);
  });
});
