import { describe, expect, test } from "bun:test";
import { compareTs, Cursor, isApiTimestamp, sinceTimeFor } from "../../src/sources/kubernetes/cursor.ts";

/** A fixed-width API timestamp: second `s` of 2026-03-19T10:23, nanoseconds `ns`. */
function ts(s: number, ns = 0): string {
  return `2026-03-19T10:23:${String(s).padStart(2, "0")}.${String(ns).padStart(9, "0")}Z`;
}

const sign = (n: number): number => (n < 0 ? -1 : n > 0 ? 1 : 0);

/** Lines (timestamp + id) fed to accept(); returns the ids forwarded. */
function feed(c: Cursor, lines: Array<[string, string]>): string[] {
  const out: string[] = [];
  for (const [t, id] of lines) if (c.accept(t)) out.push(id);
  return out;
}

describe("compareTs", () => {
  test("fixed-width Z form", () => {
    expect(sign(compareTs(ts(1, 5), ts(1, 6)))).toBe(-1);
    expect(sign(compareTs(ts(2, 0), ts(1, 999_999_999)))).toBe(1);
    expect(compareTs(ts(3, 100), ts(3, 100))).toBe(0);
    expect(sign(compareTs("2025-12-31T23:59:59.999999999Z", "2026-01-01T00:00:00.000000000Z"))).toBe(-1);
  });

  test("other precisions", () => {
    expect(compareTs("2026-03-19T10:23:01.5Z", ts(1, 500_000_000))).toBe(0);
    expect(compareTs("2026-03-19T10:23:01Z", ts(1, 0))).toBe(0);
    expect(sign(compareTs("2026-03-19T10:23:01.5Z", "2026-03-19T10:23:01.49Z"))).toBe(1);
    expect(sign(compareTs("2026-03-19T10:23:01.000001Z", ts(1, 999)))).toBe(1);
    expect(sign(compareTs("2026-03-19T10:23:01.123Z", ts(1, 123_000_001)))).toBe(-1);
  });

  test("offsets against Z", () => {
    expect(compareTs("2026-03-19T12:23:01.000000000+02:00", ts(1))).toBe(0);
    expect(compareTs("2026-03-19T05:23:01.25-05:00", ts(1, 250_000_000))).toBe(0);
    // 12:23:00 +02:00 is 10:23:00 Z: earlier than 10:23:01 Z, though the text is larger.
    expect(sign(compareTs("2026-03-19T12:23:00.000000000+02:00", ts(1)))).toBe(-1);
    expect(sign(compareTs(ts(1), "2026-03-19T12:23:00.9+02:00"))).toBe(1);
    // Across a date boundary.
    expect(compareTs("2026-03-20T01:00:00+02:00", "2026-03-19T23:00:00.000000000Z")).toBe(0);
  });

  test("antisymmetric and transitive on a mixed sample", () => {
    const sample = [
      ts(0),
      ts(0, 1),
      "2026-03-19T10:23:00.5Z",
      "2026-03-19T12:23:00.500000001+02:00",
      ts(1),
      "2026-03-19T10:23:01Z",
      "2026-03-19T09:23:02.1-01:00",
      ts(2, 200_000_000),
    ];
    for (const a of sample) {
      for (const b of sample) {
        expect(sign(compareTs(a, b))).toBe(0 - sign(compareTs(b, a)));
        for (const c of sample) {
          if (compareTs(a, b) <= 0 && compareTs(b, c) <= 0) expect(compareTs(a, c)).toBeLessThanOrEqual(0);
        }
      }
    }
  });
});

describe("isApiTimestamp", () => {
  test("accepts RFC3339 forms, rejects others", () => {
    expect(isApiTimestamp(ts(1, 2))).toBe(true);
    expect(isApiTimestamp("2026-03-19T10:23:01Z")).toBe(true);
    expect(isApiTimestamp("2026-03-19T10:23:01.5+05:30")).toBe(true);
    expect(isApiTimestamp("2026-03-19 10:23:01Z")).toBe(false);
    expect(isApiTimestamp("unable")).toBe(false);
    expect(isApiTimestamp('2026-03-19T10:23:01."Z')).toBe(false);
    expect(isApiTimestamp("")).toBe(false);
  });
});

describe("sinceTimeFor", () => {
  test("the whole second, UTC, Z", () => {
    expect(sinceTimeFor("2026-03-19T10:23:45.999999999Z")).toBe("2026-03-19T10:23:45Z");
    expect(sinceTimeFor("2026-03-19T10:23:45.000000000Z")).toBe("2026-03-19T10:23:45Z");
    expect(sinceTimeFor("2026-03-19T10:23:45.5Z")).toBe("2026-03-19T10:23:45Z");
    expect(sinceTimeFor("2026-03-19T10:23:45Z")).toBe("2026-03-19T10:23:45Z");
    expect(sinceTimeFor("2026-03-19T12:23:45.7+02:00")).toBe("2026-03-19T10:23:45Z");
    expect(sinceTimeFor("2026-03-20T01:30:00.1+05:30")).toBe("2026-03-19T20:00:00Z");
  });

  test("never after the cursor", () => {
    for (const t of [ts(5, 1), ts(5, 999_999_999), "2026-03-19T10:23:05.5-03:00"]) {
      expect(compareTs(sinceTimeFor(t), t)).toBeLessThanOrEqual(0);
    }
  });
});

describe("Cursor", () => {
  test("a fresh cursor accepts everything and counts ties", () => {
    const c = new Cursor();
    expect(c.state).toBeNull();
    c.beginResume(); // nothing to skip
    expect(feed(c, [[ts(1), "a"], [ts(1), "b"], [ts(0), "c"], [ts(1), "d"], [ts(1), "e"]])).toEqual(["a", "b", "c", "d", "e"]);
    expect(c.state).toEqual({ ts: ts(1), count: 2 });
  });

  test("a new timestamp resets the count", () => {
    const c = new Cursor();
    feed(c, [[ts(1), "a"], [ts(1), "b"], [ts(2), "c"]]);
    expect(c.state).toEqual({ ts: ts(2), count: 1 });
  });

  test("resume skips lines before the cursor and exactly count at it", () => {
    const c = new Cursor({ ts: ts(5, 500), count: 2 });
    c.beginResume();
    const got = feed(c, [
      [ts(5, 100), "old1"],
      [ts(5, 499), "old2"],
      [ts(5, 500), "dup1"],
      [ts(5, 500), "dup2"],
      [ts(5, 500), "new1"],
      [ts(5, 500), "new2"],
      [ts(5, 600), "new3"],
    ]);
    expect(got).toEqual(["new1", "new2", "new3"]);
    expect(c.state).toEqual({ ts: ts(5, 600), count: 1 });
  });

  test("ties forwarded after the resume point keep counting", () => {
    const c = new Cursor({ ts: ts(5), count: 1 });
    c.beginResume();
    expect(feed(c, [[ts(5), "dup"], [ts(5), "n1"], [ts(5), "n2"]])).toEqual(["n1", "n2"]);
    expect(c.state).toEqual({ ts: ts(5), count: 3 });
    // A second reconnect skips all three.
    c.beginResume();
    expect(feed(c, [[ts(5), "dup"], [ts(5), "d1"], [ts(5), "d2"], [ts(5), "n3"]])).toEqual(["n3"]);
  });

  test("fewer ties than counted on replay: the next later line is forwarded", () => {
    const c = new Cursor({ ts: ts(5), count: 3 });
    c.beginResume();
    expect(feed(c, [[ts(5), "a"], [ts(6), "b"], [ts(5), "c"]])).toEqual(["b", "c"]);
  });

  test("300 identical timestamps across a reconnect", () => {
    const T = ts(7, 123_456_789);
    const run: Array<[string, string]> = [];
    for (let i = 0; i < 300; i++) run.push([T, `same-${i}`]);
    const more: Array<[string, string]> = [];
    for (let i = 0; i < 20; i++) more.push([ts(8, i), `more-${i}`]);

    const c = new Cursor();
    c.beginResume();
    const first = feed(c, run.slice(0, 120));
    expect(first.length).toBe(120);
    expect(c.state).toEqual({ ts: T, count: 120 });

    // Reconnect with sinceTime = the cursor's second: the whole second comes back.
    expect(sinceTimeFor(T)).toBe("2026-03-19T10:23:07Z");
    c.beginResume();
    const replay: Array<[string, string]> = [[ts(7, 1), "before"], ...run, ...more];
    const second = feed(c, replay);
    expect(second).toEqual([...run.slice(120).map(([, id]) => id), ...more.map(([, id]) => id)]);
    expect(second.length).toBe(180 + 20);
    // Together: every line exactly once.
    expect([...first, ...second]).toEqual([...run, ...more].map(([, id]) => id));
  });

  test("a disconnect during a resume resumes again exactly", () => {
    const T = ts(7);
    const lines: Array<[string, string]> = [];
    for (let i = 0; i < 50; i++) lines.push([T, `l${i}`]);
    const c = new Cursor();
    const out = feed(c, lines.slice(0, 10));
    c.beginResume();
    out.push(...feed(c, lines.slice(0, 5))); // replay cut off while still skipping
    c.beginResume();
    out.push(...feed(c, lines.slice(0, 30)));
    c.beginResume();
    out.push(...feed(c, lines));
    expect(out).toEqual(lines.map(([, id]) => id));
  });

  test("earlier timestamps after the resume point are never dropped", () => {
    // Forwarded: a(5) b(5). The log continues with c(3) (a clock step back), d(5), e(1).
    const c = new Cursor();
    expect(feed(c, [[ts(5), "a"], [ts(5), "b"]])).toEqual(["a", "b"]);
    c.beginResume();
    const replay: Array<[string, string]> = [
      [ts(5), "a"],
      [ts(5), "b"],
      [ts(3), "c"],
      [ts(5), "d"],
      [ts(1), "e"],
      [ts(2), "f"],
    ];
    expect(feed(c, replay)).toEqual(["c", "d", "e", "f"]);
  });

  test("no monotonic drop without a resume", () => {
    const c = new Cursor();
    expect(feed(c, [[ts(9), "a"], [ts(1), "b"], [ts(9), "c"], [ts(0), "d"]])).toEqual(["a", "b", "c", "d"]);
  });

  test("the same instant in another spelling counts as a tie", () => {
    const c = new Cursor();
    feed(c, [[ts(1, 500_000_000), "a"], ["2026-03-19T10:23:01.5Z", "b"]]);
    expect(c.state?.count).toBe(2);
    c.beginResume();
    expect(feed(c, [["2026-03-19T12:23:01.5+02:00", "a"], [ts(1, 500_000_000), "b"], [ts(1, 500_000_000), "c"]])).toEqual(["c"]);
  });

  test("a cursor from a state file resumes without having forwarded anything", () => {
    const c = new Cursor({ ts: ts(3), count: 1 });
    // Before beginResume (first request of this process) it is still a resume point.
    c.beginResume();
    expect(feed(c, [[ts(2), "x"], [ts(3), "y"], [ts(4), "z"]])).toEqual(["z"]);
  });
});
