/**
 * Helpers for the tests of deploy/ and the release: the repository's files as
 * parsed YAML, and the relay's own parser as the judge of every flag and
 * environment variable those files hand it.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, parseCli } from "../../src/cli.ts";
import type { Config } from "../../src/config.ts";

export const ROOT = join(import.meta.dir, "..", "..");
export const DEPLOY = join(ROOT, "deploy");

export function readText(rel: string): string {
  return readFileSync(join(ROOT, rel), "utf8");
}

/** Every YAML document of a text, each parsed on its own (documents split at `---` lines). */
export function yamlAll(text: string): unknown[] {
  return text
    .split(/^---[ \t]*$/m)
    .map((doc): unknown => Bun.YAML.parse(doc))
    .filter((d) => d !== null && d !== undefined);
}

/** The one YAML document of a repository file. */
export function yamlFile(rel: string): unknown {
  const docs = yamlAll(readText(rel));
  if (docs.length !== 1) throw new Error(`${rel}: expected one YAML document, got ${docs.length}`);
  return docs[0];
}

/** A YAML mapping, with a clear failure when it is not one. */
export type Obj = Record<string, unknown>;
export function obj(v: unknown, what: string): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`${what}: expected a mapping, got ${JSON.stringify(v)}`);
  return v as Obj;
}
export function arr(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new Error(`${what}: expected a list, got ${JSON.stringify(v)}`);
  return v;
}
export function str(v: unknown, what: string): string {
  if (typeof v !== "string") throw new Error(`${what}: expected a string, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Runs the relay's CLI parser over argv and env exactly as the binary does at
 * start; returns the Config, or throws the one-line error that would make the
 * binary exit 2.
 */
export function relayConfig(argv: string[], env: Record<string, string>): Config {
  try {
    const r = parseCli(argv, env);
    if (r.kind !== "run") throw new Error(`parsed as ${r.kind}, not a run`);
    return r.config;
  } catch (e) {
    if (e instanceof ConfigError) throw new Error(`the relay would exit 2: ${e.message} (argv ${JSON.stringify(argv)}, env ${JSON.stringify(env)})`);
    throw e;
  }
}

/** Splits a command line the way sh does for plain words and '…' / "…" quotes (no expansions). */
export function splitCommand(line: string): string[] {
  const out: string[] = [];
  const re = /'([^']*)'|"([^"]*)"|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(line)) !== null) out.push(m[1] ?? m[2] ?? m[3] ?? "");
  return out;
}

/** systemd unit / env files: `[Section]` then `Key=value` lines; repeated keys keep every value. */
export function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current = new Map<string, string[]>();
  sections.set("", current);
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      current = new Map();
      sections.set(sec[1] as string, current);
      continue;
    }
    const eq = line.indexOf("=");
    if (eq < 0) throw new Error(`not a Key=value line: ${line}`);
    const key = line.slice(0, eq).trim();
    const list = current.get(key) ?? [];
    list.push(line.slice(eq + 1).trim());
    current.set(key, list);
  }
  return sections;
}
