/**
 * Patterns in the reference's Rust `regex` syntax match what they match there:
 * each case is a pattern, lines it must match and lines it must not (the Rust
 * outcome, from the regex crate's documented semantics).
 */
import { describe, expect, test } from "bun:test";
import { translateRustRegex } from "../../src/pipeline/rust-regex.ts";

function compile(pattern: string): RegExp {
  const { source, flags } = translateRustRegex(pattern);
  return new RegExp(source, flags);
}

const CASES: [pattern: string, matches: string[], nonMatches: string[]][] = [
  ["(?i)error", ["ERROR here", "an Error"], ["warn"]],
  ["(?i)error|(?i)warn", ["WARN x", "Error"], ["info"]],
  // Flags run to the end of the group, later alternatives included.
  ["a(?i)b|c", ["aB", "C"], ["Ab", "x"]],
  ["level=(?i)error", ["level=ERROR"], ["LEVEL=error"]],
  ["x(?i:a)b", ["xAb"], ["xAB"]],
  ["(?i)a(?-i)b", ["Ab"], ["AB"]],
  ["(a(?i)b)c", ["aBc"], ["aBC"]],
  ["(?s)a.b", ["a\nb"], []],
  ["a.b", ["a-b"], ["a\nb"]],
  ["(?m)^b$", ["a\nb\nc"], []],
  ["(?x) err  or  # a comment\n", ["error"], ["err or"]],
  ["(?x)a\\ b", ["a b"], ["ab"]],
  ["(?x)[a b]+c", ["abc"], [" c"]],
  ["\\AERROR", ["ERROR x"], ["x ERROR"]],
  ["ERROR\\z", ["x ERROR"], ["ERROR x", "x ERROR\n"]],
  ["[[:digit:]]+", ["5"], ["x"]],
  ["^[[:alpha:]_]+$", ["ab_c"], ["a1"]],
  ["[^[:space:]]", ["x"], [" \t"]],
  ["\\x{41}", ["A"], ["B"]],
  ["\\x{1F600}", ["😀"], ["x"]],
  ["\\x41", ["A"], []],
  ["\\pL+", ["é"], ["1"]],
  ["\\p{Lu}", ["A"], ["a"]],
  ["^\\PL+$", ["123"], ["a1"]],
  ["\\<err", ["an err"], ["terr"]],
  ["err\\>", ["err!"], ["error"]],
  ["a\\:b", ["a:b"], ["ab"]],
  ['\\"q\\"', ['say "q"'], []],
  ["a\\-b", ["a-b"], []],
  ["[a\\-z]", ["-"], ["b"]],
  ["\\#x", ["#x"], []],
  ["[]a]", ["]"], ["b"]],
  ["(?P<lvl>WARN|ERROR) (?P<msg>.+)", ["ERROR disk full"], ["INFO ok"]],
  ["(?<lvl>WARN)", ["WARN"], []],
  ["a{2}", ["aa"], ["a"]],
  ["a{2,}b", ["aaab"], ["ab"]],
  ["x{y", ["x{y"], []],
  ["a}", ["a}"], []],
  // \p makes the u flag: literal braces and escaped punctuation still work then.
  ["\\pL{2} \\: x{", ["ab : x{"], []],
  ["/healthz", ["GET /healthz"], ["GET /readyz"]],
  ["^\\{", ['{"a":1}'], ["x{"]],
];

describe("Rust regex syntax", () => {
  for (const [pattern, yes, no] of CASES) {
    test(JSON.stringify(pattern), () => {
      const re = compile(pattern);
      for (const line of yes) expect({ line, matched: re.test(line) }).toEqual({ line, matched: true });
      for (const line of no) expect({ line, matched: re.test(line) }).toEqual({ line, matched: false });
    });
  }

  test("(?U) swaps greed", () => {
    expect(compile("(?U)a+").exec("aaa")?.[0]).toBe("a");
    expect(compile("(?U)a+?").exec("aaa")?.[0]).toBe("aaa");
    expect(compile("(?U:(a{1,3}))a*").exec("aaa")?.[1]).toBe("a");
    expect(compile("a+").exec("aaa")?.[0]).toBe("aaa");
  });

  test("what is not Rust syntax, or not supported, is an error, not a silent mismatch", () => {
    for (const bad of ["(?Z)x", "(", "a)", "[a", "[[:nope:]]", "[[:^alpha:]]", "\\x{zz}", "\\", "[a[b]]"]) {
      expect(() => compile(bad)).toThrow();
    }
  });
});
