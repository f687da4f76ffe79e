// Command line and environment -> validated Config.
//
// Flags are declared once (FLAGS) and handed to citty as its ArgsDef; citty's
// parseArgs reads the values. citty 0.2.2 is deliberately lenient, though: it
// accepts unknown flags, keeps only the last of repeated flags, turns a missing
// value into "", accepts camelCase spellings and rewrites every `--no-X` into
// `X: false` (which would swallow `--no-stream-param`). The Rust original
// (clap) rejects all of that, so a strict pre-pass over argv checks every token
// against the same table first, collects repeatable flags, and hands citty a
// normalised argv (`--name=value`) whose meaning is unambiguous.

import { defineCommand, parseArgs } from "citty";
import type { ArgDef, ArgsDef, ParsedArgs } from "citty";
import pkg from "../package.json" with { type: "json" };
import { renderHelp } from "./cli-help.ts";
import { shownUrl } from "./http/userinfo.ts";
import { translateRustRegex } from "./pipeline/rust-regex.ts";
import type { Config, LogFormat, SourceKind, WhenFull } from "./config.ts";

export const VERSION: string = pkg.version;
const NAME: string = pkg.name;

/** A user-facing start-up error; `message` is one line without a stack. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message.replace(/[\r\n]+/g, " "));
    this.name = "ConfigError";
  }
}

export type CliResult =
  | { kind: "run"; config: Config }
  | { kind: "help"; text: string }
  | { kind: "version"; text: string };

export const HELP_GROUPS = [
  "Source",
  "Source Connection",
  "Source Reconnect",
  "Kubernetes",
  "Filter",
  "Sink",
  "TCP Sink",
  "TCP Sink Connection",
  "TCP Sink Reconnect",
  "Health Check",
  "Logging",
  "Options",
] as const;
export type HelpGroup = (typeof HELP_GROUPS)[number];

export interface FlagSpec {
  /** Long name without the leading `--`. */
  name: string;
  short?: string;
  kind: "boolean" | "string";
  valueHint?: string;
  env?: string;
  /** Shown as `[default: X]` in the help; the real defaults live in buildConfig. */
  defaultText?: string;
  repeatable?: boolean;
  group: HelpGroup;
  description: string;
}

const DEFAULT_SOURCE_PATH = "/v1/logs/follow?format=ndjson";

export const FLAGS: readonly FlagSpec[] = [
  // Source
  { name: "kubernetes", kind: "boolean", group: "Source", description: "Watch the pods of one namespace via the API and stream their logs" },
  { name: "source-url", kind: "string", valueHint: "URL", group: "Source", description: "Read an ndjson or SSE stream over HTTP/HTTPS" },
  { name: "source-socket", kind: "string", valueHint: "PATH", group: "Source", description: "Read an ndjson or SSE stream over a Unix-domain socket (HTTP/1.1)" },
  { name: "source-path", kind: "string", valueHint: "PATH", group: "Source", defaultText: DEFAULT_SOURCE_PATH, description: "Request path for --source-socket" },
  // Source Connection
  { name: "source-connect-timeout", kind: "string", valueHint: "MS", env: "SOURCE_CONNECT_TIMEOUT", defaultText: "10000", group: "Source Connection", description: "Connect timeout in ms, 0 = none" },
  { name: "source-read-timeout", kind: "string", valueHint: "MS", env: "SOURCE_READ_TIMEOUT", defaultText: "0", group: "Source Connection", description: "Reconnect after this many ms without any data, 0 = never" },
  { name: "source-idle-timeout", kind: "string", valueHint: "MS", env: "SOURCE_IDLE_TIMEOUT", defaultText: "0", group: "Source Connection", description: "Reconnect after this many ms without a complete line, 0 = never" },
  { name: "source-keepalive-interval", kind: "string", valueHint: "S", env: "SOURCE_KEEPALIVE_INTERVAL", defaultText: "0", group: "Source Connection", description: "TCP keepalive interval in s, 0 = off" },
  { name: "source-keepalive-timeout", kind: "string", valueHint: "S", env: "SOURCE_KEEPALIVE_TIMEOUT", defaultText: "0", group: "Source Connection", description: "TCP keepalive probe timeout in s (0 = 3x interval)" },
  { name: "source-insecure", kind: "boolean", env: "SOURCE_INSECURE", group: "Source Connection", description: "Skip TLS verification of the source" },
  { name: "source-cacert", kind: "string", valueHint: "PATH", env: "SOURCE_CACERT", group: "Source Connection", description: "PEM CA chain (one or more certificates) for the source" },
  { name: "source-proxy", kind: "string", valueHint: "URL", env: "SOURCE_PROXY", group: "Source Connection", description: "Proxy for the source and the Kubernetes API; overrides HTTP(S)_PROXY" },
  { name: "source-proxy-insecure", kind: "boolean", env: "SOURCE_PROXY_INSECURE", group: "Source Connection", description: "Skip TLS verification of the proxy" },
  { name: "source-proxy-cacert", kind: "string", valueHint: "PATH", env: "SOURCE_PROXY_CACERT", group: "Source Connection", description: "PEM CA chain for the proxy" },
  { name: "source-no-proxy", kind: "string", valueHint: "LIST", env: "SOURCE_NO_PROXY", group: "Source Connection", description: "Comma-separated hosts, .suffix domains and IPv4/IPv6 CIDRs that bypass the proxy (unset: NO_PROXY)" },
  // Source Reconnect
  { name: "source-reconnect-delay", kind: "string", valueHint: "MS", env: "SOURCE_RECONNECT_DELAY", defaultText: "500", group: "Source Reconnect", description: "First reconnect backoff in ms, doubles per failure" },
  { name: "source-reconnect-max", kind: "string", valueHint: "MS", env: "SOURCE_RECONNECT_MAX", defaultText: "30000", group: "Source Reconnect", description: "Reconnect backoff ceiling in ms" },
  { name: "source-reconnect-retries", kind: "string", valueHint: "N", env: "SOURCE_RECONNECT_RETRIES", defaultText: "0", group: "Source Reconnect", description: "Exit non-zero after N consecutive failures, 0 = never" },
  // Kubernetes
  { name: "namespace", kind: "string", valueHint: "NS", env: "NAMESPACE", group: "Kubernetes", description: "Namespace to watch (unset: the in-cluster or kubeconfig namespace, else \"default\")" },
  { name: "pod-selector", kind: "string", valueHint: "SEL", env: "POD_SELECTOR", defaultText: "\"\"", group: "Kubernetes", description: "Label selector for the pods" },
  { name: "watch-interval", kind: "string", valueHint: "S", env: "WATCH_INTERVAL", defaultText: "10", group: "Kubernetes", description: "Reconcile tick in s" },
  { name: "container", kind: "string", valueHint: "NAME", group: "Kubernetes", description: "Container to stream (unset: every container of the pod)" },
  { name: "tail-lines", kind: "string", valueHint: "N", env: "TAIL_LINES", defaultText: "0", group: "Kubernetes", description: "First connect per pod: start with the last N lines" },
  { name: "since-seconds", kind: "string", valueHint: "S", env: "SINCE_SECONDS", defaultText: "10", group: "Kubernetes", description: "Without --tail-lines and nothing to resume from: start S seconds back" },
  { name: "exclude-pod", kind: "string", valueHint: "REGEX", repeatable: true, group: "Kubernetes", description: "Skip pods whose name matches (any of) these" },
  { name: "max-log-requests", kind: "string", valueHint: "N", env: "MAX_LOG_REQUESTS", defaultText: "0", group: "Kubernetes", description: "Cap on concurrent log streams, 0 = none; streams over the cap wait" },
  { name: "stream-rotate-after", kind: "string", valueHint: "S", env: "STREAM_ROTATE_AFTER", defaultText: "30", group: "Kubernetes", description: "Under --max-log-requests: s a stream holds a slot while others wait" },
  { name: "no-stream-param", kind: "boolean", env: "NO_STREAM_PARAM", group: "Kubernetes", description: "Never send stream= (OpenShift); one combined stream" },
  { name: "split-streams", kind: "boolean", env: "SPLIT_STREAMS", group: "Kubernetes", description: "Request stdout and stderr as separate streams (Kubernetes >= 1.32)" },
  { name: "state-file", kind: "string", valueHint: "PATH", env: "STATE_FILE", group: "Kubernetes", description: "Keep the log cursors here (saved every second and on stop) and resume from them after a restart" },
  // Filter
  { name: "include", kind: "string", valueHint: "REGEX", repeatable: true, group: "Filter", description: "Forward only lines matching any of these" },
  { name: "exclude", kind: "string", valueHint: "REGEX", repeatable: true, group: "Filter", description: "Drop lines matching any of these, checked after --include" },
  { name: "max-line-bytes", kind: "string", valueHint: "BYTES", env: "MAX_LINE_BYTES", defaultText: "1048576", group: "Filter", description: "Drop (and count) lines longer than this" },
  // Sink
  { name: "stdout-sink", kind: "boolean", env: "STDOUT_SINK", group: "Sink", description: "Write lines to stdout instead of TCP" },
  { name: "queue-max-bytes", kind: "string", valueHint: "BYTES", env: "QUEUE_MAX_BYTES", defaultText: "67108864", group: "Sink", description: "Bytes buffered for the sink before sources wait" },
  { name: "buffer-dir", kind: "string", valueHint: "DIR", env: "BUFFER_DIR", group: "Sink", description: "Spool lines that do not fit in the memory queue to segment files here; sent in order, kept across restarts" },
  { name: "buffer-max-bytes", kind: "string", valueHint: "BYTES", env: "BUFFER_MAX_BYTES", defaultText: "1073741824", group: "Sink", description: "Disk the --buffer-dir spool may use before --when-full applies" },
  { name: "when-full", kind: "string", valueHint: "block|drop-newest", env: "WHEN_FULL", defaultText: "block", group: "Sink", description: "When the queue (and spool) is full: sources wait, or new lines are dropped and counted" },
  { name: "shutdown-timeout", kind: "string", valueHint: "MS", env: "SHUTDOWN_TIMEOUT", defaultText: "5000", group: "Sink", description: "Time SIGTERM/SIGINT may spend flushing the queue, in ms" },
  // TCP Sink
  { name: "tcp-sink-host", kind: "string", valueHint: "HOST", env: "TCP_SINK_HOST", defaultText: "127.0.0.1", group: "TCP Sink", description: "Host of the TCP log collector" },
  { name: "tcp-sink-port", kind: "string", valueHint: "PORT", env: "TCP_SINK_PORT", defaultText: "5170", group: "TCP Sink", description: "Port of the collector (Filebeat / Fluent Bit / Logstash tcp input)" },
  // TCP Sink Connection
  { name: "dest-connect-timeout", kind: "string", valueHint: "MS", env: "DEST_CONNECT_TIMEOUT", defaultText: "10000", group: "TCP Sink Connection", description: "Connect timeout in ms, 0 = none" },
  { name: "dest-read-timeout", kind: "string", valueHint: "MS", env: "DEST_READ_TIMEOUT", defaultText: "0", group: "TCP Sink Connection", description: "Per-write timeout in ms, then reconnect; 0 = none" },
  { name: "dest-idle-timeout", kind: "string", valueHint: "MS", env: "DEST_IDLE_TIMEOUT", defaultText: "0", group: "TCP Sink Connection", description: "Reconnect after this many ms with nothing written, 0 = never" },
  { name: "dest-keepalive-interval", kind: "string", valueHint: "S", env: "DEST_KEEPALIVE_INTERVAL", defaultText: "0", group: "TCP Sink Connection", description: "TCP keepalive interval in s, 0 = off" },
  { name: "dest-keepalive-timeout", kind: "string", valueHint: "S", env: "DEST_KEEPALIVE_TIMEOUT", defaultText: "0", group: "TCP Sink Connection", description: "TCP keepalive probe timeout in s" },
  // TCP Sink Reconnect
  { name: "dest-reconnect-delay", kind: "string", valueHint: "MS", env: "DEST_RECONNECT_DELAY", defaultText: "500", group: "TCP Sink Reconnect", description: "First reconnect backoff in ms, doubles per failure" },
  { name: "dest-reconnect-max", kind: "string", valueHint: "MS", env: "DEST_RECONNECT_MAX", defaultText: "30000", group: "TCP Sink Reconnect", description: "Reconnect backoff ceiling in ms" },
  // Health Check
  { name: "healthcheck", kind: "string", valueHint: "HOST:PORT", env: "HEALTHCHECK", defaultText: "127.0.0.1:9091", group: "Health Check", description: "Serve GET /healthz here (200 ok / 503 stale); port 0 = any free port" },
  { name: "healthcheck-max-age", kind: "string", valueHint: "S", env: "HEALTHCHECK_MAX_AGE", defaultText: "30", group: "Health Check", description: "Stale after S seconds without a tick" },
  // Logging
  { name: "log-format", kind: "string", valueHint: "text|json", env: "VIGIL_LOG_FORMAT", defaultText: "text", group: "Logging", description: "Format of the relay's own log lines" },
  { name: "debug", kind: "boolean", group: "Logging", description: "Debug level with timestamps" },
  // Options
  { name: "help", short: "h", kind: "boolean", group: "Options", description: "Print help" },
  { name: "version", short: "V", kind: "boolean", group: "Options", description: "Print version" },
];

const BY_NAME: ReadonlyMap<string, FlagSpec> = new Map(FLAGS.map((f) => [f.name, f]));

function toCittyArg(flag: FlagSpec): ArgDef {
  // No citty `default`s: a default there would hide whether the flag was
  // given, and environment variables must apply only when it was not.
  if (flag.kind === "boolean") {
    return flag.short === undefined
      ? { type: "boolean", description: flag.description }
      : { type: "boolean", description: flag.description, alias: flag.short };
  }
  return { type: "string", description: flag.description, valueHint: flag.valueHint };
}

const ARGS: ArgsDef = Object.fromEntries(FLAGS.map((f) => [f.name, toCittyArg(f)]));

/** The citty command; main.ts need not use it, parseCli is the entry point. */
export const command = defineCommand<ArgsDef>({
  meta: { name: NAME, version: VERSION, description: pkg.description },
  args: ARGS,
});

const SOURCE_FLAGS = ["kubernetes", "source-url", "source-socket"] as const;

export function helpText(): string {
  return renderHelp({
    name: NAME,
    version: VERSION,
    description: pkg.description,
    usage: `${NAME} (--kubernetes | --source-url <URL> | --source-socket <PATH>) [OPTIONS]`,
    groups: HELP_GROUPS,
    flags: FLAGS,
    footer: [
      "A flag wins over its environment variable. Boolean variables take true/false/1/0/yes/no.",
      "Durations are in the unit shown: MS milliseconds, S seconds.",
    ],
  });
}

// ---------------------------------------------------------------------------
// Strict pre-pass

interface Scanned {
  /** Normalised argv for citty: `--name` or `--name=value`. */
  normalized: string[];
  /** Values of every occurrence of each string flag, in order. */
  values: Map<string, string[]>;
  /** Boolean flags given. */
  booleans: Set<string>;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

function suggest(name: string): string {
  const kebab = name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).replace(/_/g, "-").toLowerCase();
  let best: string | undefined;
  let bestDist = Infinity;
  for (const flag of FLAGS) {
    const d = editDistance(kebab, flag.name);
    if (d < bestDist) {
      best = flag.name;
      bestDist = d;
    }
  }
  return best !== undefined && bestDist <= Math.max(2, Math.floor(kebab.length / 4))
    ? ` (did you mean --${best}?)`
    : "";
}

function quote(s: string): string {
  return JSON.stringify(s);
}

type Scan = { kind: "help" } | { kind: "version" } | { kind: "args"; scanned: Scanned };

function scan(argv: string[]): Scan {
  const scanned: Scanned = { normalized: [], values: new Map(), booleans: new Set() };
  // The first error is kept while scanning on, so that --help / --version
  // anywhere still answers.
  let firstError: string | undefined;
  const fail = (msg: string): void => {
    firstError ??= msg;
  };
  const seen = new Set<string>();

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--") {
      const rest = argv[i + 1];
      if (rest !== undefined) fail(`unexpected argument ${quote(rest)}: this program takes no positional arguments`);
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      fail(`unexpected argument ${quote(arg)}: this program takes no positional arguments`);
      continue;
    }
    let name: string;
    let inline: string | undefined;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
    } else {
      const short = FLAGS.find((f) => f.short !== undefined && `-${f.short}` === arg);
      if (short === undefined) {
        fail(`unknown flag ${arg}${suggest(arg.replace(/^-+/, "").split("=")[0] ?? "")}`);
        continue;
      }
      name = short.name;
    }
    const spec = BY_NAME.get(name);
    if (spec === undefined) {
      fail(`unknown flag --${name}${suggest(name)}`);
      continue;
    }
    if (spec.kind === "boolean") {
      if (inline !== undefined) {
        fail(`--${name} takes no value (got ${quote(inline)})`);
        continue;
      }
      if (name === "help") return { kind: "help" };
      if (name === "version") return { kind: "version" };
    }
    if (seen.has(name) && spec.repeatable !== true) {
      fail(`--${name} given more than once`);
      continue;
    }
    seen.add(name);
    if (spec.kind === "boolean") {
      scanned.booleans.add(name);
      scanned.normalized.push(`--${name}`);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = argv[i + 1];
      if (next === undefined) {
        fail(`--${name} requires a value <${spec.valueHint ?? "VALUE"}>`);
        continue;
      }
      if (next.startsWith("--")) {
        fail(`--${name} requires a value <${spec.valueHint ?? "VALUE"}> (got flag ${next}; write --${name}=VALUE for a value starting with --)`);
        continue;
      }
      value = next;
      i++;
    }
    const list = scanned.values.get(name);
    if (list === undefined) scanned.values.set(name, [value]);
    else list.push(value);
    scanned.normalized.push(`--${name}=${value}`);
  }
  if (firstError !== undefined) throw new ConfigError(firstError);
  return { kind: "args", scanned };
}

// ---------------------------------------------------------------------------
// Values: flag (via citty), else environment, else default

type Env = Record<string, string | undefined>;

interface Found {
  value: string;
  /** How to name the value's origin in an error message. */
  label: string;
}

class Inputs {
  constructor(
    private readonly scanned: Scanned,
    private readonly parsed: ParsedArgs,
    private readonly env: Env,
  ) {}

  private spec(name: string): FlagSpec {
    const spec = BY_NAME.get(name);
    if (spec === undefined) throw new Error(`cli.ts: no flag --${name}`);
    return spec;
  }

  private envValue(spec: FlagSpec): Found | undefined {
    if (spec.env === undefined) return undefined;
    const value = this.env[spec.env];
    // An empty variable counts as unset (e.g. `value: ""` in a Deployment).
    if (value === undefined || value === "") return undefined;
    return { value, label: `${spec.env} (env for --${spec.name})` };
  }

  /** A single-valued string flag: command line, then env. */
  string(name: string): Found | undefined {
    const spec = this.spec(name);
    if (this.scanned.values.has(name)) {
      const raw: unknown = this.parsed[name];
      // citty yields a string; take the last if a future version collects.
      const value = Array.isArray(raw) ? raw.at(-1) : raw;
      if (typeof value !== "string") throw new Error(`cli.ts: citty lost the value of --${name}`);
      return { value, label: `--${name}` };
    }
    return this.envValue(spec);
  }

  /** Every occurrence of a repeatable flag. */
  list(name: string): Found[] {
    const values = this.scanned.values.get(name) ?? [];
    // citty 0.2.2 keeps only the last occurrence (string); should it ever
    // collect (string[]), it must agree with the pre-pass.
    const raw: unknown = this.parsed[name];
    const fromCitty = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
    if (fromCitty.length > 0 && fromCitty.at(-1) !== values.at(-1)) {
      throw new Error(`cli.ts: citty and the pre-pass disagree on --${name}`);
    }
    return values.map((value) => ({ value, label: `--${name}` }));
  }

  given(name: string): boolean {
    return this.scanned.booleans.has(name) || this.scanned.values.has(name);
  }

  boolean(name: string): boolean {
    const spec = this.spec(name);
    if (this.scanned.booleans.has(name)) {
      // citty turns `--no-X` into `X: false` rather than `no-X: true`.
      const raw: unknown = name.startsWith("no-") ? this.parsed[name.slice(3)] === false || this.parsed[name] === true : this.parsed[name];
      if (raw !== true) throw new Error(`cli.ts: citty lost --${name}`);
      return true;
    }
    const found = this.envValue(spec);
    return found === undefined ? false : parseBool(found);
  }
}

function parseBool(found: Found): boolean {
  switch (found.value.trim().toLowerCase()) {
    case "true":
    case "1":
    case "yes":
      return true;
    case "false":
    case "0":
    case "no":
      return false;
    default:
      throw new ConfigError(`${found.label}: invalid boolean ${quote(found.value)}: expected true/false/1/0/yes/no`);
  }
}

function parseUint(found: Found, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const n = /^[0-9]+$/.test(found.value) ? Number(found.value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    throw new ConfigError(`${found.label}: invalid value ${quote(found.value)}: expected ${range}`);
  }
  return n;
}

function nonEmpty(found: Found): string {
  if (found.value === "") throw new ConfigError(`${found.label}: value must not be empty`);
  return found.value;
}

/** The URL as the user wrote it, unless that would echo credentials. */
function shown(url: URL, text: string): string {
  return url.username === "" && url.password === "" ? text : shownUrl(url);
}

function parseHttpUrl(found: Found, what: string, assumeHttp: boolean): string {
  let text = found.value;
  // reqwest (the Rust original's proxy parser) takes `host:port` as http://host:port.
  if (assumeHttp && text !== "" && !text.includes("://")) text = `http://${text}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError(`${found.label}: invalid ${what} URL ${quote(found.value.replace(/\/\/[^/@]*@/, "//***@"))}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(`${found.label}: ${what} URL ${quote(shown(url, found.value))} must use http:// or https://`);
  }
  if (url.hostname === "") {
    throw new ConfigError(`${found.label}: ${what} URL ${quote(shown(url, found.value))} has no host`);
  }
  return assumeHttp ? text : found.value;
}

/** A pattern in the reference's (Rust) regex syntax, rewritten where JavaScript reads it differently. */
function compileRegex(found: Found): RegExp {
  try {
    const { source, flags } = translateRustRegex(found.value);
    return new RegExp(source, flags);
  } catch (err) {
    const reason = (err instanceof Error ? err.message : String(err)).replace(/^Invalid regular expression:\s*(\/.*\/[a-z]*:\s*)?/, "");
    throw new ConfigError(`${found.label}: invalid regular expression ${quote(found.value)}: ${reason}`);
  }
}

function osReason(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = "code" in err && typeof err.code === "string" ? err.code : undefined;
  // "ENOENT: no such file or directory, open '/x'" -> "no such file or directory (ENOENT)"
  let text = err.message.replace(/, \w+ '.*'$/, "");
  if (code !== undefined && text.startsWith(`${code}: `)) text = `${text.slice(code.length + 2)} (${code})`;
  return text;
}

function readCaFile(found: Found): { pem: string; path: string } {
  const path = nonEmpty(found);
  let pem: string;
  try {
    // Loaded here, only when a CA file is given: node:fs costs every start 2-4 ms.
    const { readFileSync } = require("node:fs") as typeof import("node:fs");
    pem = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`${found.label}: cannot read ${quote(path)}: ${osReason(err)}`);
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new ConfigError(`${found.label}: ${quote(path)} holds no PEM certificate (no -----BEGIN CERTIFICATE----- block)`);
  }
  return { pem, path };
}

function parseHostPort(found: Found): { host: string; port: number } {
  const v = found.value;
  let host: string;
  let portText: string;
  if (v.startsWith("[")) {
    const m = /^\[([^\]]*)\](?::(.*))?$/.exec(v);
    if (m === null) throw new ConfigError(`${found.label}: invalid address ${quote(v)}: expected HOST:PORT or [IPv6]:PORT`);
    host = m[1] ?? "";
    if (m[2] === undefined) throw new ConfigError(`${found.label}: address ${quote(v)} has no port: expected [IPv6]:PORT`);
    portText = m[2];
  } else {
    const colon = v.lastIndexOf(":");
    if (colon < 0) throw new ConfigError(`${found.label}: address ${quote(v)} has no port: expected HOST:PORT`);
    host = v.slice(0, colon);
    portText = v.slice(colon + 1);
    if (host.includes(":")) {
      throw new ConfigError(`${found.label}: invalid address ${quote(v)}: write an IPv6 address in brackets, e.g. [::1]:9091`);
    }
  }
  if (host === "") throw new ConfigError(`${found.label}: address ${quote(v)} has no host: expected HOST:PORT`);
  if (portText === "") throw new ConfigError(`${found.label}: address ${quote(v)} has no port: expected HOST:PORT`);
  const port = parseUint({ value: portText, label: `${found.label}: port of ${quote(v)}` }, 0, 65535);
  return { host, port };
}

function splitList(found: Found | undefined): string[] {
  if (found === undefined) return [];
  return found.value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

// ---------------------------------------------------------------------------

function buildConfig(inp: Inputs): Config {
  const given = SOURCE_FLAGS.filter((f) => inp.given(f));
  if (given.length === 0) throw new ConfigError("no source: give one of --kubernetes, --source-url, --source-socket");
  if (given.length > 1) {
    throw new ConfigError(`only one source allowed, got ${given.map((f) => `--${f}`).join(" and ")}`);
  }
  const sourceFlag = given[0];
  const source: SourceKind = sourceFlag === "kubernetes" ? "kubernetes" : sourceFlag === "source-url" ? "url" : "socket";

  const num = (name: string, dflt: number, min = 0, max?: number): number => {
    const found = inp.string(name);
    return found === undefined ? dflt : parseUint(found, min, max);
  };
  /** A count the reference reads as a signed number and uses only when above 0: a negative one is 0. */
  const count = (name: string, dflt: number): number => {
    const found = inp.string(name);
    if (found === undefined) return dflt;
    return /^-[0-9]+$/.test(found.value) ? 0 : parseUint(found);
  };
  const str = (name: string): string | undefined => {
    const found = inp.string(name);
    return found === undefined ? undefined : nonEmpty(found);
  };

  const urlFound = inp.string("source-url");
  const sourceUrl = urlFound === undefined ? undefined : parseHttpUrl(urlFound, "source", false);
  const sourceSocket = str("source-socket");
  const pathFound = inp.string("source-path");
  const sourcePath = pathFound === undefined ? DEFAULT_SOURCE_PATH : pathFound.value;
  // Only a socket source uses it (the reference accepts anything elsewhere).
  if (source === "socket" && !sourcePath.startsWith("/")) {
    throw new ConfigError(`${pathFound?.label ?? "--source-path"}: ${quote(sourcePath)} must start with "/"`);
  }

  const caFound = inp.string("source-cacert");
  const ca = caFound === undefined ? undefined : readCaFile(caFound);
  const proxyFound = inp.string("source-proxy");
  const proxyCaFound = inp.string("source-proxy-cacert");
  const proxyCa = proxyCaFound === undefined ? undefined : readCaFile(proxyCaFound);

  const healthFound = inp.string("healthcheck");
  const health = healthFound === undefined ? { host: "127.0.0.1", port: 9091 } : parseHostPort(healthFound);

  const logFound = inp.string("log-format");
  let logFormat: LogFormat = "text";
  if (logFound !== undefined) {
    const value = logFound.value.trim().toLowerCase();
    if (value === "json") logFormat = "json";
    // VIGIL_LOG_FORMAT is vigild's variable too, and both it and the reference take any
    // value but "json" as text; only the flag itself is checked.
    else if (value !== "text" && logFound.label.startsWith("--")) {
      throw new ConfigError(`${logFound.label}: invalid log format ${quote(logFound.value)}: expected text or json`);
    }
  }

  const whenFullFound = inp.string("when-full");
  let whenFull: WhenFull = "block";
  if (whenFullFound !== undefined) {
    if (whenFullFound.value !== "block" && whenFullFound.value !== "drop-newest") {
      throw new ConfigError(`${whenFullFound.label}: invalid value ${quote(whenFullFound.value)}: expected block or drop-newest`);
    }
    whenFull = whenFullFound.value;
  }

  const config: Config = {
    source,
    sourcePath,
    connection: {
      connectTimeoutMs: num("source-connect-timeout", 10000),
      readTimeoutMs: num("source-read-timeout", 0),
      idleTimeoutMs: num("source-idle-timeout", 0),
      keepaliveIntervalS: num("source-keepalive-interval", 0),
      keepaliveTimeoutS: num("source-keepalive-timeout", 0),
      insecure: inp.boolean("source-insecure"),
      proxy: {
        insecure: inp.boolean("source-proxy-insecure"),
        noProxy: splitList(inp.string("source-no-proxy")),
      },
      reconnectDelayMs: num("source-reconnect-delay", 500),
      reconnectMaxMs: num("source-reconnect-max", 30000),
      reconnectRetries: num("source-reconnect-retries", 0),
    },
    kubernetes: {
      podSelector: inp.string("pod-selector")?.value ?? "",
      // 0 would be a busy loop (and panics tokio's interval in the original).
      watchIntervalS: num("watch-interval", 10, 1),
      tailLines: count("tail-lines", 0),
      sinceSeconds: count("since-seconds", 10),
      excludePods: inp.list("exclude-pod").map(compileRegex),
      maxLogRequests: num("max-log-requests", 0),
      fairShareS: num("stream-rotate-after", 30, 1),
      noStreamParam: inp.boolean("no-stream-param"),
      splitStreams: inp.boolean("split-streams"),
    },
    filter: {
      include: inp.list("include").map(compileRegex),
      exclude: inp.list("exclude").map(compileRegex),
    },
    maxLineBytes: num("max-line-bytes", 1048576, 1),
    stdoutSink: inp.boolean("stdout-sink"),
    tcp: {
      host: str("tcp-sink-host") ?? "127.0.0.1",
      port: num("tcp-sink-port", 5170, 1, 65535),
      connectTimeoutMs: num("dest-connect-timeout", 10000),
      writeTimeoutMs: num("dest-read-timeout", 0),
      idleTimeoutMs: num("dest-idle-timeout", 0),
      keepaliveIntervalS: num("dest-keepalive-interval", 0),
      keepaliveTimeoutS: num("dest-keepalive-timeout", 0),
      reconnectDelayMs: num("dest-reconnect-delay", 500),
      reconnectMaxMs: num("dest-reconnect-max", 30000),
    },
    queueMaxBytes: num("queue-max-bytes", 67108864, 1),
    whenFull,
    shutdownTimeoutMs: num("shutdown-timeout", 5000),
    health: { ...health, maxAgeS: num("healthcheck-max-age", 30) },
    logFormat,
    debug: inp.boolean("debug"),
  };
  if (sourceUrl !== undefined) config.sourceUrl = sourceUrl;
  if (sourceSocket !== undefined) config.sourceSocket = sourceSocket;
  if (ca !== undefined) {
    config.connection.caPem = ca.pem;
    config.connection.caPath = ca.path;
  }
  if (proxyFound !== undefined) config.connection.proxy.url = parseHttpUrl(proxyFound, "proxy", true);
  if (proxyCa !== undefined) config.connection.proxy.caPem = proxyCa.pem;
  const namespace = str("namespace");
  if (namespace !== undefined) config.kubernetes.namespace = namespace;
  const container = str("container");
  if (container !== undefined) config.kubernetes.container = container;
  const stateFile = str("state-file");
  if (stateFile !== undefined) config.kubernetes.stateFile = stateFile;
  const bufferDir = str("buffer-dir");
  const bufferMax = num("buffer-max-bytes", 1073741824, 1);
  if (bufferDir !== undefined) config.spool = { dir: bufferDir, maxBytes: bufferMax };
  return config;
}

/**
 * Parses `process.argv.slice(2)` and the environment into a validated Config.
 * Throws ConfigError (one line) on bad input. Reads the CA files, nothing else.
 */
export function parseCli(argv: string[], env: Record<string, string | undefined>): CliResult {
  const scanned = scan(argv);
  if (scanned.kind === "help") return { kind: "help", text: helpText() };
  if (scanned.kind === "version") return { kind: "version", text: `${NAME} ${VERSION}` };
  // citty reads the values; it is given the definitions of the flags present only,
  // since its set-up per definition cost every start ~3 ms for the full table.
  const given = new Set([...scanned.scanned.values.keys(), ...scanned.scanned.booleans]);
  const defs: ArgsDef = {};
  for (const name of given) {
    const def = ARGS[name];
    if (def !== undefined) defs[name] = def;
  }
  const parsed = parseArgs(scanned.scanned.normalized, defs);
  return { kind: "run", config: buildConfig(new Inputs(scanned.scanned, parsed, env)) };
}
