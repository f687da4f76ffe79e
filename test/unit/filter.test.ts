import { describe, expect, test } from "bun:test";
import { LineFilter } from "../../src/pipeline/filter.ts";

describe("LineFilter", () => {
  test("no patterns: everything passes, empty is true", () => {
    const f = new LineFilter({ include: [], exclude: [] });
    expect(f.empty).toBe(true);
    expect(f.check("anything")).toBe("pass");
    expect(f.check("")).toBe("pass");
  });

  test("include is an OR of searches anywhere in the line", () => {
    const f = new LineFilter({ include: [/error/, /^WARN/], exclude: [] });
    expect(f.empty).toBe(false);
    expect(f.check("an error here")).toBe("pass");
    expect(f.check("WARN x")).toBe("pass");
    expect(f.check("x WARN")).toBe("include");
    expect(f.check("info")).toBe("include");
  });

  test("exclude applies after include", () => {
    const f = new LineFilter({ include: [/a/], exclude: [/b/, /c/] });
    expect(f.check("a")).toBe("pass");
    expect(f.check("ab")).toBe("exclude");
    expect(f.check("ac")).toBe("exclude");
    expect(f.check("b")).toBe("include");
  });

  test("only excludes", () => {
    const f = new LineFilter({ include: [], exclude: [/health/] });
    expect(f.check("GET /healthz")).toBe("exclude");
    expect(f.check("GET /api")).toBe("pass");
  });

  test("g and y flags do not make results alternate; other flags are kept", () => {
    const f = new LineFilter({ include: [/x/g, /^Y/iy], exclude: [/z/gi] });
    for (let i = 0; i < 4; i++) {
      expect(f.check("x")).toBe("pass");
      expect(f.check("yes")).toBe("pass");
      expect(f.check("x Z")).toBe("exclude");
      expect(f.check("none")).toBe("include");
    }
  });

  test("the caller's regexes are not modified", () => {
    const r = /x/g;
    const f = new LineFilter({ include: [r], exclude: [] });
    f.check("x");
    expect(r.lastIndex).toBe(0);
    expect(r.flags).toBe("g");
  });

  test("unicode text", () => {
    const f = new LineFilter({ include: [/日本/u, /ü/], exclude: [/\u{1F389}/u] });
    expect(f.check("日本語")).toBe("pass");
    expect(f.check("über")).toBe("pass");
    expect(f.check("über 🎉")).toBe("exclude");
  });
});
