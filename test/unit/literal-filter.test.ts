import { describe, expect, test } from "bun:test";
import { LineFilter, LiteralMatcher, literalAlternatives } from "../../src/pipeline/filter.ts";
import { rng } from "./rng.ts";

describe("literalAlternatives", () => {
  test("literal-only patterns expand to their strings", () => {
    const cases: Array<[RegExp, string[]]> = [
      [/\/healthz/, ["/healthz"]],
      [new RegExp("/healthz"), ["/healthz"]],
      [/"level":"(INFO|WARN|ERROR)"/, ['"level":"INFO"', '"level":"WARN"', '"level":"ERROR"']],
      [/a(?:b|c)d/, ["abd", "acd"]],
      [/(?<name>ab)|c/, ["ab", "c"]],
      [/(a|b)(c|d)/, ["ac", "ad", "bc", "bd"]],
      [/\x41\t\.\*\(\)\[\]\{\}\|\\\^\$/, ["A\t.*()[]{}|\\^$"]],
      [/\u00e9t\u00e9/, ["été"]],
      [/\u{1F389}/u, ["🎉"]],
      [/🎉/, ["🎉"]],
      [/\uD83C\uDF89/u, ["🎉"]],
      [/日本|ü/, ["日本", "ü"]],
      [/x/g, ["x"]],
      [/x/y, ["x"]],
      [/x/ms, ["x"]],
      [new RegExp(""), [""]],
      [/(|x)/, ["", "x"]],
      [/a-b,c=d: e/, ["a-b,c=d: e"]],
    ];
    for (const [re, want] of cases) expect({ re: String(re), got: literalAlternatives(re) }).toEqual({ re: String(re), got: want });
  });

  test("anything that is not a plain literal is refused", () => {
    const refused = [
      /a+/, /a*/, /a?/, /a{2}/, /(ab)+/, /^a/, /a$/, /a.b/, /[ab]/, /\d/, /\w/, /\s/, /\b/, /\Bx/,
      /(?=a)/, /(?!a)/, /(?<=a)b/, /(?<!a)b/, /(a)\1/, /a/i, /a/v, /x]/, /x}/, /\cJ/, /\0/, /\p{L}/u, /\uD83C/,
      new RegExp("(?i:a)"), /(a|b)(c|d)(e|f)(g|h)(i|j)(k|l)(m|n)/,
    ];
    for (const re of refused) expect({ re: String(re), got: literalAlternatives(re) }).toEqual({ re: String(re), got: null });
  });

  test("LineFilter uses bytes only when every pattern is a literal", () => {
    expect(new LineFilter({ include: [/a|b/], exclude: [/c/] }).bytes).not.toBeNull();
    expect(new LineFilter({ include: [/a|b/], exclude: [/^c/] }).bytes).toBeNull();
    expect(new LineFilter({ include: [/a+/], exclude: [] }).bytes).toBeNull();
    const onlyExclude = new LineFilter({ include: [], exclude: [/c/] }).bytes;
    expect(onlyExclude?.include).toBeNull();
    expect(onlyExclude?.exclude).not.toBeNull();
  });
});

/** A line of random text from a small alphabet (so literals occur often), with multi-byte characters. */
function randomLine(rand: () => number): string {
  const alphabet = ["a", "b", "c", "ab", "ba", "é", "日", "🎉", " ", '"', ":", "/", "\uFEFF", "\uFFFD", "\t", "\r"];
  let s = "";
  const n = Math.floor(rand() * 24);
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
  return s;
}

describe("checkBytes decides as check() does", () => {
  const patterns = [
    /a/, /ab/, /b|c/, /abc/, /a(b|c)a/, /é/, /日🎉/, /🎉|é/, /\uFEFF/, /\uFFFD/, /"a":"/, /\//, /ba|ab|aa/, /a\tb/, /\r/, /(|z)/, /zz/,
  ];

  test("random lines, in order within one buffer, random pattern sets", () => {
    const rand = rng(20261122);
    for (let round = 0; round < 400; round++) {
      const pick = () => patterns[Math.floor(rand() * patterns.length)] as RegExp;
      const include = Array.from({ length: Math.floor(rand() * 3) }, pick);
      const exclude = Array.from({ length: Math.floor(rand() * 3) }, pick);
      const filter = new LineFilter({ include, exclude });
      if (filter.empty) continue;
      expect(filter.bytes).not.toBeNull();
      const lines = Array.from({ length: 1 + Math.floor(rand() * 20) }, () => randomLine(rand));
      const buf = Buffer.from(lines.join("\n") + "\n");
      filter.resetBytes();
      let start = 0;
      for (const line of lines) {
        const end = start + Buffer.byteLength(line);
        const ctx = `${include.map(String)} / ${exclude.map(String)} on ${JSON.stringify(line)}`;
        expect({ ctx, got: filter.checkBytes(buf, start, end) }).toEqual({ ctx, got: filter.check(line) });
        start = end + 1;
      }
    }
  });

  test("a literal crossing the end of the line does not count", () => {
    const m = new LiteralMatcher(["ab", "abc"]);
    const buf = Buffer.from("xa\nbc\nab");
    expect(m.matches(buf, 0, 2)).toBe(false); // "xa" ("a\nb" is not "ab")
    expect(m.matches(buf, 3, 5)).toBe(false); // "bc"
    expect(m.matches(buf, 6, 8)).toBe(true);
    // "ab" occurs, but only ending one byte past the range.
    expect(new LiteralMatcher(["ab"]).matches(Buffer.from("xab"), 0, 2)).toBe(false);
  });

  test("remembered occurrences: later lines, earlier lines, another buffer, reset()", () => {
    const m = new LiteralMatcher(["needle"]);
    const buf = Buffer.from("aaaa\nbbbb\nxneedle\ncccc\nneedle");
    expect(m.matches(buf, 0, 4)).toBe(false);
    expect(m.matches(buf, 5, 9)).toBe(false);
    expect(m.matches(buf, 10, 17)).toBe(true);
    expect(m.matches(buf, 18, 22)).toBe(false);
    expect(m.matches(buf, 23, 29)).toBe(true);
    // Out of order: the earlier line is searched again, not answered from memory.
    expect(m.matches(buf, 10, 17)).toBe(true);
    expect(m.matches(buf, 0, 4)).toBe(false);
    const other = Buffer.from("needle");
    expect(m.matches(other, 0, 6)).toBe(true);
    // The same buffer with new bytes: reset() forgets what was found in the old ones.
    other.write("nothin");
    m.reset();
    expect(m.matches(other, 0, 6)).toBe(false);
  });

  test("several literals without a common prefix, and a prefix that is itself a literal", () => {
    const m = new LiteralMatcher(["foo", "bar"]);
    const buf = Buffer.from("xxbar\nfooyy\nbaz\n");
    expect(m.matches(buf, 0, 5)).toBe(true);
    expect(m.matches(buf, 6, 11)).toBe(true);
    expect(m.matches(buf, 12, 15)).toBe(false);
    const p = new LiteralMatcher(["ab", "abcd"]);
    const b2 = Buffer.from("xabx\nxxabc");
    expect(p.matches(b2, 0, 4)).toBe(true);
    expect(p.matches(b2, 5, 10)).toBe(true);
  });
});
