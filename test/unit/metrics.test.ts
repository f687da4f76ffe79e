import { describe, expect, test } from "bun:test";
import { Counter, Gauge, Metrics } from "../../src/metrics.ts";

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const VALUE = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN)$/;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: string;
}

/** A strict reader of the Prometheus text format 0.0.4, as far as these metrics use it. */
function parse(text: string): { help: Map<string, string>; type: Map<string, string>; samples: Sample[] } {
  expect(text.endsWith("\n")).toBe(true);
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  const samples: Sample[] = [];
  let current = "";
  for (const line of text.slice(0, -1).split("\n")) {
    if (line.startsWith("# HELP ")) {
      const m = /^# HELP (\S+) (.*)$/.exec(line);
      expect(m).not.toBeNull();
      const [, name, doc] = m as unknown as [string, string, string];
      expect(name).toMatch(NAME);
      expect(help.has(name)).toBe(false);
      // Only \\ and \n escapes are allowed in HELP.
      expect(doc.replace(/\\[\\n]/g, "")).not.toContain("\\");
      help.set(name, doc);
      current = name;
      continue;
    }
    if (line.startsWith("# TYPE ")) {
      const m = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      expect(m).not.toBeNull();
      const name = (m as RegExpExecArray)[1] as string;
      expect(name).toBe(current);
      expect(type.has(name)).toBe(false);
      type.set(name, (m as RegExpExecArray)[2] as string);
      continue;
    }
    expect(line.startsWith("#")).toBe(false);
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    expect(m).not.toBeNull();
    const [, name, labelText, value] = m as unknown as [string, string, string | undefined, string];
    expect(name).toBe(current);
    expect(type.has(name)).toBe(true);
    expect(value).toMatch(VALUE);
    const labels: Record<string, string> = {};
    if (labelText !== undefined) {
      const re = /([^=,]+)="((?:[^"\\]|\\.)*)"(,|$)/gy;
      let last = 0;
      for (let lm = re.exec(labelText); lm; lm = re.exec(labelText)) {
        const [, k, v] = lm as unknown as [string, string, string];
        expect(k).toMatch(LABEL_NAME);
        expect(v.replace(/\\[\\n"]/g, "")).not.toMatch(/[\\"\n]/);
        labels[k] = v.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
        last = re.lastIndex;
        if (last === labelText.length) break;
      }
      expect(last).toBe(labelText.length);
    }
    samples.push({ name, labels, value });
  }
  return { help, type, samples };
}

describe("Metrics.render", () => {
  test("is valid text format 0.0.4: HELP then TYPE then samples, for every metric", () => {
    const m = new Metrics();
    m.linesRead.inc(3, { source: "url" });
    m.linesRead.inc(2, { source: "socket" });
    m.linesDropped.inc(1, { reason: "too_long" });
    m.linesForwarded.inc(10);
    m.sinkConnected.set(1);
    m.lastWriteSeconds.set(1_700_000_000.5);
    const text = m.render();
    const { help, type, samples } = parse(text);
    expect(help.size).toBe(m.all().length);
    for (const metric of m.all()) {
      const full = `vigil_log_relay_${metric.name}`;
      expect(type.get(full)).toBe(metric.type);
      if (metric.type === "counter") expect(full.endsWith("_total")).toBe(true);
    }
    const find = (name: string, labels: Record<string, string> = {}) =>
      samples.find((s) => s.name === `vigil_log_relay_${name}` && JSON.stringify(s.labels) === JSON.stringify(labels))?.value;
    expect(find("lines_read_total", { source: "url" })).toBe("3");
    expect(find("lines_read_total", { source: "socket" })).toBe("2");
    expect(find("lines_dropped_total", { reason: "too_long" })).toBe("1");
    expect(find("lines_forwarded_total")).toBe("10");
    expect(find("sink_connected")).toBe("1");
    expect(find("last_write_timestamp_seconds")).toBe("1700000000.5");
    // Gauges without a value show 0.
    expect(find("queue_bytes")).toBe("0");
  });

  test("label values are escaped (backslash, quote, newline) and label names sorted", () => {
    const c = new Counter("x_total", "Help.");
    c.inc(1, { z: "last", a: 'q"uo\\te\nnl' });
    const line = c.render().split("\n")[2];
    expect(line).toBe('vigil_log_relay_x_total{a="q\\"uo\\\\te\\nnl",z="last"} 1');
    const { samples } = parse(c.render());
    expect(samples[0]?.labels).toEqual({ a: 'q"uo\\te\nnl', z: "last" });
    // The same labels in another order are the same series.
    c.inc(2, { a: 'q"uo\\te\nnl', z: "last" });
    expect(c.get({ z: "last", a: 'q"uo\\te\nnl' })).toBe(3);
  });

  test("HELP text is escaped", () => {
    const g = new Gauge("g", "a \\ b\nc");
    expect(g.render().split("\n")[0]).toBe("# HELP vigil_log_relay_g a \\\\ b\\nc");
    parse(g.render());
  });

  test("non-finite values use the format's spelling", () => {
    const g = new Gauge("g", "G.");
    g.set(Infinity, { k: "a" });
    g.set(-Infinity, { k: "b" });
    g.set(Number.NaN, { k: "c" });
    g.set(-2.5, { k: "d" });
    const { samples } = parse(g.render());
    expect(samples.map((s) => s.value)).toEqual(["+Inf", "-Inf", "NaN", "-2.5"]);
  });
});

describe("Counter and Gauge", () => {
  test("counters ignore negative, zero and NaN increments", () => {
    const c = new Counter("c_total", "C.");
    c.inc();
    c.inc(5);
    c.inc(-3);
    c.inc(0);
    c.inc(Number.NaN);
    expect(c.get()).toBe(6);
    c.inc(-1, { k: "v" });
    expect(c.get({ k: "v" })).toBe(0);
    // A counter never incremented renders no sample (but still HELP and TYPE).
    expect(new Counter("n_total", "N.").render()).toBe("# HELP vigil_log_relay_n_total N.\n# TYPE vigil_log_relay_n_total counter\n");
  });

  test("gauges set and add, per label set", () => {
    const g = new Gauge("g", "G.");
    g.set(5);
    g.add(-2);
    g.add(1, { a: "x" });
    g.add(1, { a: "x" });
    expect(g.get()).toBe(3);
    expect(g.get({ a: "x" })).toBe(2);
    expect(g.get({ a: "y" })).toBe(0);
  });

  test("a bound series counts into the same sample as inc() with those labels, and ignores what inc() ignores", () => {
    const c = new Counter("s_total", "S.");
    const url = c.series({ source: "url" });
    // Bound: the series is exported (at 0) before its first increment.
    expect(c.render()).toContain('vigil_log_relay_s_total{source="url"} 0\n');
    url.inc(3);
    c.inc(2, { source: "url" });
    url.inc(0);
    url.inc(-4);
    url.inc(Number.NaN);
    expect(c.get({ source: "url" })).toBe(5);
    expect(c.get({ source: "socket" })).toBe(0);
    expect(c.render()).toContain('vigil_log_relay_s_total{source="url"} 5\n');
  });

  test("Metrics instances are independent", () => {
    const a = new Metrics();
    const b = new Metrics();
    a.linesRead.inc(1);
    expect(b.linesRead.get()).toBe(0);
  });
});
