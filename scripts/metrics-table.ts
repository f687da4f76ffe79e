// The README's table of metrics, generated from the Metrics class itself (its
// fields: name, type, label and label values, help) so the two cannot drift
// apart (test/metrics-table.test.ts checks it).
//   bun scripts/metrics-table.ts            print the table
//   bun scripts/metrics-table.ts --write    replace it in README.md, between the markers
import { readFileSync, writeFileSync } from "node:fs";
import { Metrics, PREFIX } from "../src/metrics.ts";

export const START = "<!-- metrics:begin -->";
export const END = "<!-- metrics:end -->";

/** Markdown table cell text: pipes escaped, never a line break. */
function cell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

export function metricsTable(metrics: Metrics = new Metrics()): string {
  const out = ["| name | type | labels | meaning |", "|---|---|---|---|"];
  for (const m of metrics.all()) {
    const labels = m.labels === null ? "-" : `\`${m.labels.name}\`: ${m.labels.values.map((v) => `\`${v}\``).join(", ")}`;
    out.push(`| \`${PREFIX}${m.name}\` | ${m.type} | ${labels} | ${cell(m.help)} |`);
  }
  return out.join("\n");
}

/** True when the README holds both markers, in order. */
export function hasMarkers(readme: string): boolean {
  const a = readme.indexOf(START);
  const b = readme.indexOf(END);
  return a >= 0 && b > a;
}

/** The README with the text between the markers replaced by the table; throws without markers. */
export function withMetricsTable(readme: string): string {
  if (!hasMarkers(readme)) throw new Error(`README.md has no ${START} ... ${END} markers`);
  const a = readme.indexOf(START);
  const b = readme.indexOf(END);
  return `${readme.slice(0, a + START.length)}\n${metricsTable()}\n${readme.slice(b)}`;
}

if (import.meta.main) {
  if (process.argv.includes("--write")) {
    const readme = readFileSync("README.md", "utf8");
    if (!hasMarkers(readme)) {
      process.stderr.write(`metrics-table: README.md has no ${START} ... ${END} markers; nothing written\n`);
      process.exit(1);
    }
    writeFileSync("README.md", withMetricsTable(readme));
  } else {
    process.stdout.write(metricsTable() + "\n");
  }
}
