// The relay's own log lines (consola with one reporter of ours): text or JSON,
// always on stderr so they can never mix into a --stdout-sink stream.
// consola/core: the logger without its terminal reporters (we bring our own; faster start-up).
import { createConsola, type ConsolaInstance, type LogObject } from "consola/core";
import type { LogFormat } from "./config.ts";

export type LogFields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A warning logged at most once per `intervalMs` for `key`; suppressed repeats are counted in the next one. */
  warnLimited(key: string, msg: string, fields?: LogFields, intervalMs?: number): void;
}

export interface LoggerOptions {
  format: LogFormat;
  debug: boolean;
  /** Where lines go; stderr by default (tests capture them). */
  write?: (line: string) => void;
}

const LEVEL_NAMES: Record<number, string> = { 0: "ERROR", 1: "WARN", 2: "INFO", 3: "INFO", 4: "DEBUG", 5: "TRACE" };

function fieldsOf(obj: LogObject): { msg: string; fields: LogFields } {
  const [first, second] = obj.args as unknown[];
  const msg = typeof first === "string" ? first : String(first);
  const fields = second !== null && typeof second === "object" ? (second as LogFields) : {};
  return { msg, fields };
}

function quoteIfNeeded(v: string): string {
  return /^[^\s"=]*$/.test(v) && v !== "" ? v : JSON.stringify(v);
}

export function formatText(obj: LogObject, withTime: boolean): string {
  const { msg, fields } = fieldsOf(obj);
  let line = withTime ? `${obj.date.toISOString()} ` : "";
  // One record, one line: a message with line breaks (an error's text, say) keeps them escaped.
  line += `${(LEVEL_NAMES[obj.level] ?? "INFO").padStart(5)} ${msg.replace(/\r/g, "\\r").replace(/\n/g, "\\n")}`;
  for (const [k, v] of Object.entries(fields)) {
    if (v !== undefined) line += ` ${k}=${quoteIfNeeded(String(v))}`;
  }
  return line;
}

export function formatJson(obj: LogObject): string {
  const { msg, fields } = fieldsOf(obj);
  const rec: Record<string, unknown> = {
    timestamp: obj.date.toISOString(),
    level: (LEVEL_NAMES[obj.level] ?? "INFO").toLowerCase(),
    message: msg,
  };
  for (const [k, v] of Object.entries(fields)) if (v !== undefined && !(k in rec)) rec[k] = v;
  return JSON.stringify(rec);
}

/**
 * Writes one line to stderr, whole and in order; when stderr is a full pipe
 * Bun keeps the lines until it can write them (the relay never waits on its
 * logs). Bun's console is native: node:fs (writeSync) took 2-4 ms to load at
 * start-up and process.stderr ~10 ms to set up. "%s": the line is printed as
 * it is, never read as a format string.
 */
export function writeStderr(line: string): void {
  console.error("%s", line);
}

export function createLogger(opts: LoggerOptions): Logger {
  const write = opts.write ?? writeStderr;
  const consola: ConsolaInstance = createConsola({
    level: opts.debug ? 4 : 3,
    throttle: 0,
    reporters: [
      {
        log(obj) {
          write(opts.format === "json" ? formatJson(obj) : formatText(obj, opts.debug));
        },
      },
    ],
  });
  const limited = new Map<string, { last: number; suppressed: number }>();
  return {
    debug: (msg, fields) => consola.debug(msg, fields ?? {}),
    info: (msg, fields) => consola.info(msg, fields ?? {}),
    warn: (msg, fields) => consola.warn(msg, fields ?? {}),
    error: (msg, fields) => consola.error(msg, fields ?? {}),
    warnLimited(key, msg, fields, intervalMs = 30_000) {
      const now = Date.now();
      const state = limited.get(key);
      if (state && now - state.last < intervalMs) {
        state.suppressed++;
        return;
      }
      const suppressed = state?.suppressed ?? 0;
      limited.set(key, { last: now, suppressed: 0 });
      consola.warn(msg, suppressed > 0 ? { ...fields, repeated: suppressed } : (fields ?? {}));
    },
  };
}

/** A logger that drops everything: for unit tests of modules that log. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  warnLimited() {},
};
