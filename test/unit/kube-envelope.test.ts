import { describe, expect, test } from "bun:test";
import { envelopeMiddle, EnvelopeWriter, escapeJsonBytes, type EnvelopeFields } from "../../src/pipeline/envelope.ts";
import { rng } from "./rng.ts";


const TS = "2026-03-19T10:23:45.123456789Z";
const FIELDS: EnvelopeFields = { namespace: "prod", pod: "api-1", container: "app", stream: "output" };
const KEYS = ["timestamp", "namespace", "pod", "container", "stream", "message"];

function concat(parts: Uint8Array[]): Buffer {
  return Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
}

/** Writes one record per message and returns the decoded records (one per line). */
function encode(messages: string[], fields: EnvelopeFields = FIELDS, ts = TS): { records: Record<string, unknown>[]; raw: string } {
  const w = new EnvelopeWriter();
  const middle = envelopeMiddle(fields);
  const tsBuf = Buffer.from(`xx${ts}yy`, "latin1");
  for (const m of messages) {
    // Pad the message so start/end offsets inside a larger buffer are exercised.
    const msg = Buffer.concat([Buffer.from("<<"), Buffer.from(m, "utf8"), Buffer.from(">>")]);
    w.add(tsBuf, 2, 2 + ts.length, msg, 2, msg.length - 2, middle);
  }
  const taken = w.take();
  if (messages.length === 0) {
    expect(taken).toBeNull();
    return { records: [], raw: "" };
  }
  expect(taken).not.toBeNull();
  if (taken === null) throw new Error("unreachable");
  expect(taken.lines).toBe(messages.length);
  const raw = concat(taken.parts);
  expect(taken.bytes).toBe(raw.length);
  const text = raw.toString("utf8");
  expect(text.endsWith("\n")).toBe(true);
  const lines = text.slice(0, -1).split("\n");
  expect(lines.length).toBe(messages.length);
  return { records: lines.map((l) => JSON.parse(l) as Record<string, unknown>), raw: text };
}

function expectRecord(r: Record<string, unknown> | undefined, message: string, fields: EnvelopeFields = FIELDS, ts = TS): void {
  expect(r).toBeDefined();
  if (r === undefined) return;
  expect(Object.keys(r)).toEqual(KEYS);
  expect(r).toEqual({ timestamp: ts, ...fields, message });
}

describe("escapeJsonBytes", () => {
  test("every byte 0x00-0x7f round-trips through JSON.parse", () => {
    const src = new Uint8Array(128);
    for (let i = 0; i < 128; i++) src[i] = i;
    const out = new Uint8Array(128 * 6 + 2);
    out[0] = 0x22;
    const end = escapeJsonBytes(src, 0, 128, out, 1);
    out[end] = 0x22;
    const json = Buffer.from(out.subarray(0, end + 1)).toString("latin1");
    expect(JSON.parse(json)).toBe(Buffer.from(src).toString("latin1"));
    // Every control character is escaped: no raw byte below 0x20 in the output.
    for (let i = 0; i <= end; i++) expect(out[i] as number).toBeGreaterThanOrEqual(0x20);
  });

  test("short escapes and \\u00XX forms", () => {
    const cases: Array<[number, string]> = [
      [0x22, '\\"'],
      [0x5c, "\\\\"],
      [0x08, "\\b"],
      [0x09, "\\t"],
      [0x0a, "\\n"],
      [0x0c, "\\f"],
      [0x0d, "\\r"],
      [0x00, "\\u0000"],
      [0x1b, "\\u001b"],
      [0x1f, "\\u001f"],
      [0x7f, "\x7f"],
      [0x41, "A"],
    ];
    for (const [b, want] of cases) {
      const out = new Uint8Array(6);
      const n = escapeJsonBytes(new Uint8Array([b]), 0, 1, out, 0);
      expect(Buffer.from(out.subarray(0, n)).toString("latin1")).toBe(want);
    }
  });

  test("respects start/end and returns the new position", () => {
    const src = Buffer.from('ab"cd');
    const out = new Uint8Array(64).fill(0x2e);
    const n = escapeJsonBytes(src, 1, 4, out, 3);
    expect(n).toBe(3 + 4);
    expect(Buffer.from(out.subarray(0, 8)).toString("latin1")).toBe('...b\\"c.');
  });
});

describe("EnvelopeWriter records", () => {
  test("field order, names and values", () => {
    const { records, raw } = encode(["hello world"]);
    expect(raw).toBe(`{"timestamp":"${TS}","namespace":"prod","pod":"api-1","container":"app","stream":"output","message":"hello world"}\n`);
    expectRecord(records[0], "hello world");
  });

  test("all control characters, quotes, backslashes, DEL", () => {
    let all = "";
    for (let c = 0; c < 0x20; c++) all += String.fromCharCode(c);
    const messages = [all, '"quoted" \\back\\slash\\', "\x7f", 'a"b\\c\nd\re\tf\u0000', "\\u0041 is not A", "\\"];
    for (let c = 0; c < 0x20; c++) messages.push(`x${String.fromCharCode(c)}y`);
    const { records, raw } = encode(messages);
    // One record per line: no raw newline or other control character inside a record.
    expect(raw.split("\n").length).toBe(messages.length + 1);
    expect(/[\u0000-\u0009\u000b-\u001f]/.test(raw)).toBe(false);
    messages.forEach((m, i) => expectRecord(records[i], m));
  });

  test("multi-byte UTF-8, emoji, U+2028/2029, BOM, private use", () => {
    const messages = [
      "héllo wörld",
      "日本語のログ",
      "emoji 😀👍🏽 family 👨‍👩‍👧‍👦",
      "sep\u2028line\u2029para",
      "\ufeffbom",
      "\uffff\ue000\u{10ffff}",
      "Ω≈ç√∫",
    ];
    const { records } = encode(messages);
    messages.forEach((m, i) => expectRecord(records[i], m));
  });

  test("empty message", () => {
    const { records, raw } = encode([""]);
    expect(raw.endsWith('"message":""}\n')).toBe(true);
    expectRecord(records[0], "");
  });

  test("long messages (100 KiB, also all escapes)", () => {
    const r = rng(7);
    let plain = "";
    while (plain.length < 100 * 1024) plain += String.fromCharCode(0x20 + Math.floor(r() * 95));
    const escapes = "\n\"\\\u0001".repeat(25 * 1024);
    const { records } = encode([plain, escapes, "after"]);
    expectRecord(records[0], plain);
    expectRecord(records[1], escapes);
    expectRecord(records[2], "after");
  });

  test("names that need escaping (envelopeMiddle)", () => {
    const fields: EnvelopeFields = { namespace: 'n"s\\x', pod: 'p"od\n', container: "c\u0001\u2028ü", stream: "stderr" };
    const { records } = encode(["m"], fields);
    expectRecord(records[0], "m", fields);
  });

  test("timestamps in other spellings are copied as sent", () => {
    const ts = "2026-03-19T12:23:45.5+02:00";
    const { records } = encode(["x"], FIELDS, ts);
    expectRecord(records[0], "x", FIELDS, ts);
  });

  test("property: seeded random strings round-trip", () => {
    const r = rng(20260319);
    const pick = (): string => {
      const k = r();
      if (k < 0.25) return String.fromCharCode(Math.floor(r() * 0x20)); // control
      if (k < 0.35) return ['"', "\\", "/", "\x7f"][Math.floor(r() * 4)] ?? "";
      if (k < 0.6) return String.fromCharCode(0x20 + Math.floor(r() * 95)); // ASCII
      if (k < 0.75) return String.fromCharCode(0x80 + Math.floor(r() * 0x780)); // 2 bytes
      if (k < 0.9) {
        // 3 bytes, avoiding lone surrogates (not representable in UTF-8)
        let c = 0x800 + Math.floor(r() * (0x10000 - 0x800));
        if (c >= 0xd800 && c <= 0xdfff) c = 0x2028 + (c & 1);
        return String.fromCharCode(c);
      }
      return String.fromCodePoint(0x10000 + Math.floor(r() * 0x100000)); // 4 bytes
    };
    const messages: string[] = [];
    for (let i = 0; i < 500; i++) {
      const len = Math.floor(r() * 200);
      let s = "";
      for (let j = 0; j < len; j++) s += pick();
      messages.push(s);
    }
    const { records } = encode(messages);
    expect(records.length).toBe(messages.length);
    messages.forEach((m, i) => {
      expect(records[i]?.message).toBe(m);
    });
  });
});

describe("EnvelopeWriter parts", () => {
  const middle = envelopeMiddle(FIELDS);
  const ts = Buffer.from(TS, "latin1");
  const add = (w: EnvelopeWriter, m: string): void => {
    const b = Buffer.from(m);
    w.add(ts, 0, ts.length, b, 0, b.length, middle);
  };

  test("take() with nothing added is null; parts are subarrays of one block", () => {
    const w = new EnvelopeWriter();
    expect(w.take()).toBeNull();
    add(w, "a");
    add(w, "b");
    add(w, "c");
    const t = w.take();
    expect(t?.parts.length).toBe(1);
    expect(t?.lines).toBe(3);
    const p = t?.parts[0];
    expect(p).toBeDefined();
    if (p === undefined) return;
    // A view into a larger block, not a copy.
    expect(p.buffer.byteLength).toBeGreaterThan(p.byteLength);
    expect(w.take()).toBeNull();

    add(w, "d");
    const t2 = w.take();
    const p2 = t2?.parts[0];
    expect(t2?.parts.length).toBe(1);
    expect(p2?.buffer).toBe(p.buffer); // same block, after the first part
    expect(p2?.byteOffset).toBe(p.byteOffset + p.byteLength);
    // The first part is unchanged by later writes.
    expect(Buffer.from(p).toString().split("\n").filter(Boolean).map((l) => (JSON.parse(l) as { message: string }).message)).toEqual(["a", "b", "c"]);
  });

  test("block rollover keeps earlier parts intact", () => {
    const w = new EnvelopeWriter();
    const r = rng(99);
    const all: string[] = [];
    const takes: Array<{ parts: Uint8Array[]; messages: string[] }> = [];
    let batch: string[] = [];
    // ~300 KiB of records in takes of a few records each: several blocks.
    for (let i = 0; i < 1500; i++) {
      const m = `#${i} ` + "x\"é😀\n".repeat(Math.floor(r() * 40));
      all.push(m);
      batch.push(m);
      add(w, m);
      if (r() < 0.3) {
        const t = w.take();
        if (t === null) throw new Error("expected records");
        expect(t.lines).toBe(batch.length);
        takes.push({ parts: t.parts, messages: batch });
        batch = [];
      }
    }
    const last = w.take();
    if (last !== null) takes.push({ parts: last.parts, messages: batch });
    // Some take spanned two blocks: one part per block.
    expect(takes.some((t) => t.parts.length === 2)).toBe(true);
    expect(new Set(takes.flatMap((t) => t.parts.map((p) => p.buffer))).size).toBeGreaterThan(3);
    // Checked only now, after all writes: nothing earlier was overwritten.
    const seen: string[] = [];
    for (const t of takes) {
      const lines = concat(t.parts).toString("utf8").split("\n");
      expect(lines.pop()).toBe("");
      const msgs = lines.map((l) => {
        const rec = JSON.parse(l) as Record<string, unknown>;
        expect(Object.keys(rec)).toEqual(KEYS);
        return rec.message as string;
      });
      expect(msgs).toEqual(t.messages);
      seen.push(...msgs);
    }
    expect(seen).toEqual(all);
  });

  test("a record larger than a block gets a block of its own", () => {
    const w = new EnvelopeWriter();
    add(w, "small");
    // Room is reserved for the worst case (6 bytes per byte): a plain 70 KiB
    // message leaves space after it, an all-escaped one fills its block.
    const plain = "p".repeat(70 * 1024);
    const escaped = "\u0001".repeat(70 * 1024);
    add(w, plain);
    add(w, "tail");
    add(w, escaped);
    add(w, "end");
    const t = w.take();
    if (t === null) throw new Error("expected records");
    expect(t.lines).toBe(5);
    // [small] | [plain, tail] in the big block | [escaped] filling its own | [end]
    expect(t.parts.length).toBe(4);
    const msgs = concat(t.parts)
      .toString()
      .trimEnd()
      .split("\n")
      .map((l) => (JSON.parse(l) as { message: string }).message);
    expect(msgs).toEqual(["small", plain, "tail", escaped, "end"]);
  });
});
