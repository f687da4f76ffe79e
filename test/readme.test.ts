// The README must stay true: its flag reference is the CLI's flag table, and
// the two commands it promises exist in the Makefile.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { withTable } from "../scripts/flags-table.ts";
import { FLAGS } from "../src/cli.ts";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");

test("the README's flag tables are generated from src/cli.ts (run: bun scripts/flags-table.ts --write)", () => {
  expect(withTable(readme)).toBe(readme);
  for (const f of FLAGS) expect(readme).toContain(`\`--${f.name}`);
});

test("the README's two commands are Makefile targets", () => {
  const makefile = readFileSync(new URL("../Makefile", import.meta.url), "utf8");
  expect(readme).toContain("make demo");
  expect(readme).toContain("make test");
  expect(makefile).toMatch(/^demo:/m);
  expect(makefile).toMatch(/^test:/m);
});
