// Renders `--help` from the same flag table that src/cli.ts hands to citty.
// citty's own renderUsage has one flat OPTIONS list (no groups, no env vars),
// so the grouped, clap-like layout of the Rust original is rendered here.

import type { FlagSpec, HelpGroup } from "./cli.ts";

export interface HelpInput {
  name: string;
  version: string;
  description: string;
  usage: string;
  groups: readonly HelpGroup[];
  flags: readonly FlagSpec[];
  footer: readonly string[];
}

function flagColumn(flag: FlagSpec): string {
  const short = flag.short === undefined ? "    " : `-${flag.short}, `;
  const value = flag.kind === "string" ? ` <${flag.valueHint ?? "VALUE"}>` : "";
  return `${short}--${flag.name}${value}`;
}

function detail(flag: FlagSpec): string {
  const parts = [flag.description];
  if (flag.repeatable === true) parts.push("(repeatable)");
  if (flag.env !== undefined) parts.push(`[env: ${flag.env}]`);
  if (flag.defaultText !== undefined) parts.push(`[default: ${flag.defaultText}]`);
  return parts.join(" ");
}

export function renderHelp(input: HelpInput): string {
  const width = Math.max(...input.flags.map((f) => flagColumn(f).length));
  const lines: string[] = [
    `${input.name} ${input.version}`,
    input.description,
    "",
    `Usage: ${input.usage}`,
  ];
  for (const group of input.groups) {
    const members = input.flags.filter((f) => f.group === group);
    if (members.length === 0) continue;
    lines.push("", `${group}:`);
    for (const flag of members) {
      lines.push(`  ${flagColumn(flag).padEnd(width)}  ${detail(flag)}`);
    }
  }
  if (input.footer.length > 0) lines.push("", ...input.footer);
  return lines.join("\n");
}
