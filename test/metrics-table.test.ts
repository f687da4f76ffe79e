// The README's table of metrics is generated from src/metrics.ts (scripts/metrics-table.ts)
// and must list every metric the relay exports, with its type and label values.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { END, START, hasMarkers, metricsTable, withMetricsTable } from "../scripts/metrics-table.ts";
import { Metrics, PREFIX } from "../src/metrics.ts";
import { parsePrometheusText } from "./fixtures/prometheus-parser.ts";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
const markers = hasMarkers(readme);

describe("the README's metrics table", () => {
  if (markers) {
    test("is the one scripts/metrics-table.ts generates from src/metrics.ts (run: bun scripts/metrics-table.ts --write)", () => {
      expect(withMetricsTable(readme)).toBe(readme);
    });
  } else {
    // Not an assertion yet: the README section that holds the table has not got its markers.
    test.skip(`SKIPPED: README.md has no ${START} ... ${END} markers yet, so its table is not checked`, () => {});
  }

  test("the generated table has one row per exported metric, with its type and every known label value", () => {
    const m = new Metrics();
    const table = metricsTable(m);
    const rows = table.split("\n").slice(2);
    expect(rows.length).toBe(m.all().length);
    // The table and /metrics agree: every family of a fresh scrape is a row of the table.
    const families = parsePrometheusText(m.render());
    expect(families.size).toBe(m.all().length);
    for (const f of families.values()) {
      const row = rows.find((r) => r.startsWith(`| \`${f.name}\` |`));
      expect(row, f.name).toBeDefined();
      expect(row).toContain(`| ${f.type} |`);
      for (const s of f.samples) for (const v of Object.values(s.labels)) expect(row).toContain(`\`${v}\``);
    }
    for (const metric of m.all()) {
      expect(metric.help.length, metric.name).toBeGreaterThan(10);
      expect(`${PREFIX}${metric.name}`).toMatch(/^vigil_log_relay_[a-z0-9_]+$/);
    }
  });

  test("a README with markers gets the table between them; one without is refused", () => {
    const doc = `# x\n\nbefore\n${START}\nold text\n${END}\nafter\n`;
    const out = withMetricsTable(doc);
    expect(out).toBe(`# x\n\nbefore\n${START}\n${metricsTable()}\n${END}\nafter\n`);
    expect(withMetricsTable(out)).toBe(out);
    expect(() => withMetricsTable("# no markers\n")).toThrow("markers");
  });
});
