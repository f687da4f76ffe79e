import { afterEach, describe, expect, setSystemTime, test } from "bun:test";
import { createLogger, silentLogger, type LoggerOptions } from "../../src/log.ts";

function capture(opts: Omit<LoggerOptions, "write">) {
  const lines: string[] = [];
  const log = createLogger({ ...opts, write: (l) => lines.push(l) });
  return { log, lines };
}

afterEach(() => {
  setSystemTime();
});

describe("text format", () => {
  test("LEVEL msg k=v, the level padded to five columns", () => {
    const { log, lines } = capture({ format: "text", debug: false });
    log.info("source connected", { source: "http://x", status: 200, ok: true });
    log.warn("slow");
    log.error("failed", { attempt: 3 });
    expect(lines).toEqual([" INFO source connected source=http://x status=200 ok=true", " WARN slow", "ERROR failed attempt=3"]);
  });

  test("values with spaces, quotes, = or nothing are quoted; undefined fields are left out", () => {
    const { log, lines } = capture({ format: "text", debug: false });
    log.info("m", { a: "two words", b: 'say "hi"', c: "k=v", d: "", e: undefined, f: "tab\there", g: "line\nbreak", h: "plain-value_1.2:3/4" });
    expect(lines).toEqual([' INFO m a="two words" b="say \\"hi\\"" c="k=v" d="" f="tab\\there" g="line\\nbreak" h=plain-value_1.2:3/4']);
  });

  test("a message with line breaks stays on one line", () => {
    const { log, lines } = capture({ format: "text", debug: false });
    log.error("first\nsecond\r\nthird", { k: 1 });
    expect(lines).toEqual(["ERROR first\\nsecond\\r\\nthird k=1"]);
  });

  test("debug lines only with --debug, and then with a timestamp", () => {
    const quiet = capture({ format: "text", debug: false });
    quiet.log.debug("hidden");
    expect(quiet.lines).toEqual([]);
    setSystemTime(new Date("2026-03-19T10:23:45.123Z"));
    const loud = capture({ format: "text", debug: true });
    loud.log.debug("shown", { n: 1 });
    loud.log.info("too");
    expect(loud.lines).toEqual(["2026-03-19T10:23:45.123Z DEBUG shown n=1", "2026-03-19T10:23:45.123Z  INFO too"]);
  });

  test("identical lines in a row are all written (no consola throttling)", () => {
    const { log, lines } = capture({ format: "text", debug: false });
    for (let i = 0; i < 20; i++) log.info("same", { k: 1 });
    expect(lines.length).toBe(20);
    expect(new Set(lines).size).toBe(1);
  });
});

describe("json format", () => {
  test("one JSON object per line with timestamp, level, message and the fields", () => {
    setSystemTime(new Date("2026-03-19T10:23:45.123Z"));
    const { log, lines } = capture({ format: "json", debug: false });
    log.info("source connected", { source: "http://x", status: 200, ok: true, skip: undefined });
    log.warn("multi\nline", { q: 'a"b' });
    log.error("boom");
    log.debug("hidden");
    expect(lines.length).toBe(3);
    for (const l of lines) expect(l).not.toContain("\n");
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      { timestamp: "2026-03-19T10:23:45.123Z", level: "info", message: "source connected", source: "http://x", status: 200, ok: true },
      { timestamp: "2026-03-19T10:23:45.123Z", level: "warn", message: "multi\nline", q: 'a"b' },
      { timestamp: "2026-03-19T10:23:45.123Z", level: "error", message: "boom" },
    ]);
  });

  test("fields cannot overwrite timestamp, level or message", () => {
    const { log, lines } = capture({ format: "json", debug: true });
    log.debug("real", { message: "fake", level: "fake", timestamp: "fake", x: 1 });
    const rec = JSON.parse(lines[0] as string);
    expect(rec.message).toBe("real");
    expect(rec.level).toBe("debug");
    expect(rec.timestamp).not.toBe("fake");
    expect(rec.x).toBe(1);
  });
});

describe("warnLimited", () => {
  test("logs once per interval per key, then reports how many were suppressed", () => {
    const t0 = Date.parse("2026-03-19T10:00:00Z");
    setSystemTime(t0);
    const { log, lines } = capture({ format: "text", debug: false });
    log.warnLimited("k", "too long", { bytes: 1 });
    setSystemTime(t0 + 1000);
    log.warnLimited("k", "too long", { bytes: 2 });
    log.warnLimited("k", "too long", { bytes: 3 });
    log.warnLimited("other", "lagged", { skipped: 5 }, 1000);
    setSystemTime(t0 + 29_999);
    log.warnLimited("k", "too long", { bytes: 4 });
    expect(lines).toEqual([" WARN too long bytes=1", " WARN lagged skipped=5"]);
    setSystemTime(t0 + 30_000);
    log.warnLimited("k", "too long", { bytes: 5 });
    expect(lines[2]).toBe(" WARN too long bytes=5 repeated=3");
    // The counter starts again after a report.
    setSystemTime(t0 + 60_000);
    log.warnLimited("k", "too long");
    expect(lines[3]).toBe(" WARN too long");
  });

  test("a custom interval; json output carries repeated as a number", () => {
    const t0 = 1_000_000;
    setSystemTime(t0);
    const { log, lines } = capture({ format: "json", debug: false });
    log.warnLimited("k", "m", undefined, 100);
    setSystemTime(t0 + 50);
    log.warnLimited("k", "m", undefined, 100);
    setSystemTime(t0 + 100);
    log.warnLimited("k", "m", undefined, 100);
    expect(lines.map((l) => JSON.parse(l).repeated)).toEqual([undefined, 1]);
  });
});

test("silentLogger drops everything", () => {
  silentLogger.info("x");
  silentLogger.warnLimited("k", "x");
  silentLogger.error("x", { a: 1 });
});
