/**
 * Helpers for the integration tests: the relay as a real child process (its
 * stderr/stdout collected line by line, with awaitable patterns), condition
 * polling with a deadline where no event exists, gates, temp dirs and cleanup.
 */
import type { Subprocess } from "bun";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Script, Step, VigildRequest } from "../fixtures/fake-vigild.ts";

/** The tree whose src/main.ts is run (VIGIL_IT_ROOT: another checkout, e.g. a snapshot). */
export const ROOT = process.env.VIGIL_IT_ROOT ?? join(import.meta.dir, "..", "..");
export const MAIN = join(ROOT, "src", "main.ts");

/** Flags every test relay gets unless it overrides them: a free health port, fast reconnects. */
export const FAST = ["--healthcheck", "127.0.0.1:0", "--source-reconnect-delay", "20", "--dest-reconnect-delay", "20"];

function withTimeout<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what()}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Polls `cond` every `intervalMs` until it holds; rejects after `ms`. For state with no event to await. */
export async function waitUntil(
  cond: () => boolean | Promise<boolean>,
  ms = 10_000,
  what: string | (() => string) = "condition",
  intervalMs = 20,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === "string" ? what : what()}`);
    await Bun.sleep(intervalMs);
  }
}

/** A deferred promise: open() from the test releases whoever awaits `promise`. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** A fresh temp dir, removed by cleanup(). */
export function tempDir(prefix = "vigil-it-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const cleanups: Array<() => Promise<void>> = [];

/** Registers something to stop in cleanup() (fixtures: fake vigild, receiver, proxy). */
export function track<T extends { stop(): Promise<void> }>(thing: T): T {
  cleanups.push(() => thing.stop());
  return thing;
}

/** Kills every relay still running, then stops every tracked fixture. Call from afterEach. */
export async function cleanup(): Promise<void> {
  const rs = [...relays];
  relays.clear();
  await Promise.all(rs.map((r) => r.kill()));
  const cs = cleanups.splice(0);
  for (const c of cs.reverse()) await c().catch(() => {});
}

/** Collects a stream's text line by line and lets callers await a line. */
export class LineLog {
  readonly lines: string[] = [];
  text = "";
  ended = false;
  private waiters: Array<() => void> = [];

  /** `gate`: start reading only once it resolves (until then the pipe fills and the writer blocks). */
  constructor(stream: ReadableStream<Uint8Array>, gate?: Promise<void>) {
    void this.pump(stream, gate);
  }

  private async pump(stream: ReadableStream<Uint8Array>, gate?: Promise<void>): Promise<void> {
    if (gate) await gate;
    const decoder = new TextDecoder();
    let partial = "";
    try {
      for await (const chunk of stream) {
        const t = decoder.decode(chunk, { stream: true });
        this.text += t;
        const parts = (partial + t).split("\n");
        partial = parts.pop() ?? "";
        for (const l of parts) this.lines.push(l);
        this.notify();
      }
    } catch {
      // the process went away
    }
    const rest = decoder.decode();
    this.text += rest;
    const tail = partial + rest;
    if (tail !== "") this.lines.push(tail);
    this.ended = true;
    this.notify();
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves once the stream ended (the process closed it). */
  end(timeoutMs = 10_000): Promise<void> {
    return this.until(() => this.ended, timeoutMs, () => "end of stream");
  }

  until(cond: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
    const p = new Promise<void>((resolve) => {
      const check = (): void => {
        if (cond()) resolve();
        else this.waiters.push(check);
      };
      check();
    });
    return withTimeout(p, timeoutMs, what);
  }

  /** The first line (from index `from`) matching `pattern`, once it is there. */
  async waitFor(pattern: RegExp | string, timeoutMs = 10_000, from = 0): Promise<string> {
    const match = (l: string): boolean => (typeof pattern === "string" ? l.includes(pattern) : pattern.test(l));
    let found: string | undefined;
    await this.until(
      () => {
        for (let i = from; i < this.lines.length; i++) {
          const l = this.lines[i] ?? "";
          if (match(l)) {
            found = l;
            return true;
          }
        }
        return this.ended;
      },
      timeoutMs,
      () => `no line matching ${String(pattern)}; got:\n${this.lines.join("\n")}`,
    );
    if (found === undefined) throw new Error(`stream ended without a line matching ${String(pattern)}; got:\n${this.lines.join("\n")}`);
    return found;
  }

  count(pattern: RegExp | string): number {
    return this.lines.filter((l) => (typeof pattern === "string" ? l.includes(pattern) : pattern.test(l))).length;
  }
}

export interface RelayOptions {
  env?: Record<string, string | undefined>;
  /** run this executable instead of `bun src/main.ts` (the compiled binary) */
  binary?: string;
  /** leave out the FAST defaults */
  bare?: boolean;
  /** working directory of the relay (default: the repository) */
  cwd?: string;
  /** read the relay's stdout only once this resolves */
  stdoutGate?: Promise<void>;
}

export interface Relay {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  stderr: LineLog;
  stdout: LineLog;
  /** exit code (null when killed by a signal) */
  exited: Promise<number | null>;
  /** http://127.0.0.1:PORT of the health server, from the relay's log line */
  healthUrl(timeoutMs?: number): Promise<string>;
  signal(sig: "SIGTERM" | "SIGINT"): void;
  /** waits for the exit; rejects after timeoutMs */
  waitExit(timeoutMs?: number): Promise<number | null>;
  kill(): Promise<void>;
}

const relays = new Set<Relay>();

/** Env without proxy variables of the machine, plus `extra`. */
function childEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  const drop = /^(https?_proxy|all_proxy|no_proxy|source_.*|tcp_sink_.*|dest_.*|healthcheck.*|vigil_log_format|stdout_sink|queue_max_bytes|shutdown_timeout|max_line_bytes)$/i;
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !drop.test(k)) env[k] = v;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Starts the relay as a real child process. */
export function startRelay(flags: string[], opts: RelayOptions = {}): Relay {
  const cmd = opts.binary ? [opts.binary] : [process.execPath, MAIN];
  // a flag the test gives itself replaces the FAST default (flags may not repeat)
  const defaults: string[] = [];
  if (!opts.bare) {
    for (let i = 0; i < FAST.length; i += 2) {
      const name = FAST[i] ?? "";
      if (!flags.some((f) => f === name || f.startsWith(`${name}=`))) defaults.push(name, FAST[i + 1] ?? "");
    }
  }
  const proc = Bun.spawn([...cmd, ...defaults, ...flags], {
    cwd: opts.cwd ?? ROOT,
    env: childEnv(opts.env),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const stderr = new LineLog(proc.stderr);
  const stdout = new LineLog(proc.stdout, opts.stdoutGate);
  const exited = proc.exited.then(() => proc.exitCode);
  let healthUrl: string | undefined;
  const relay: Relay = {
    proc,
    stderr,
    stdout,
    exited,
    async healthUrl(timeoutMs = 10_000) {
      if (healthUrl) return healthUrl;
      const line = await stderr.waitFor(/health check listening/, timeoutMs);
      const m = /address=(\S+)\/healthz/.exec(line);
      if (!m?.[1]) throw new Error(`no address in ${JSON.stringify(line)}`);
      healthUrl = m[1];
      return healthUrl;
    },
    signal(sig) {
      proc.kill(sig);
    },
    waitExit(timeoutMs = 15_000) {
      return withTimeout(exited, timeoutMs, () => `relay did not exit; stderr:\n${stderr.lines.join("\n")}`);
    },
    async kill() {
      relays.delete(relay);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await exited;
    },
  };
  relays.add(relay);
  return relay;
}

/** Runs the relay to completion (for start-up errors); kills it after timeoutMs. */
export async function runRelay(
  flags: string[],
  opts: RelayOptions & { timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = startRelay(flags, opts);
  try {
    const code = await r.waitExit(opts.timeoutMs ?? 15_000);
    await Promise.all([r.stderr.end(), r.stdout.end()]);
    return { code, stdout: r.stdout.text, stderr: r.stderr.text };
  } finally {
    await r.kill();
  }
}

/** The lines of a start-up failure: exactly one, no stack frames. */
export function expectOneErrorLine(stderr: string): string {
  const lines = stderr.split("\n").filter((l) => l !== "");
  if (lines.length !== 1) throw new Error(`expected exactly one stderr line, got ${lines.length}:\n${stderr}`);
  const line = lines[0] ?? "";
  if (/^\s+at /m.test(stderr) || /\bat .*\(.*:\d+:\d+\)/.test(stderr)) throw new Error(`stack trace on stderr:\n${stderr}`);
  return line;
}

/** GET a URL; status and body text. */
export async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { proxy: undefined });
  return { status: res.status, body: await res.text() };
}

/** A fake vigild handler: request i gets scripts[i]; later requests hang (no more data, no EOF). */
export function sequence(...scripts: Script[]): (req: VigildRequest) => Script {
  return (req) => scripts[req.index] ?? { steps: [{ hang: true }] };
}

/** A script: these exact chunks (one HTTP chunk each), then hang or close. */
export function chunks(parts: Array<string | Uint8Array>, close: "end" | "abort" | "hang" = "end", contentType?: string): Script {
  const steps: Step[] = parts.map((p) => ({ write: p }));
  steps.push(close === "hang" ? { hang: true } : { close });
  return contentType ? { headers: { "content-type": contentType }, steps } : { steps };
}

/** The sum of a metric's samples (every label set) from the relay's /metrics, or of those whose labels contain `labels`. */
export async function metric(relay: Relay, name: string, labels = ""): Promise<number> {
  const { body } = await get(`${await relay.healthUrl()}/metrics`);
  let sum = 0;
  for (const line of body.split("\n")) {
    if (!line.startsWith(`vigil_log_relay_${name}`)) continue;
    const m = /^(\w+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== `vigil_log_relay_${name}`) continue;
    if (labels !== "" && !(m[2] ?? "").includes(labels)) continue;
    sum += Number(m[3]);
  }
  return sum;
}

/**
 * Resolves once the relay's sink is stuck: it holds more than `queueMaxBytes`
 * read but not written to the kernel (only possible while the receiver's side is full).
 * Polls /metrics: there is no event for it.
 */
export async function waitForSinkStall(relay: Relay, queueMaxBytes: number, ms = 20_000): Promise<void> {
  let last = "";
  await waitUntil(
    async () => {
      const read = await metric(relay, "bytes_read_total");
      const written = await metric(relay, "bytes_forwarded_total");
      last = `read ${read}, written ${written}`;
      return read - written >= queueMaxBytes;
    },
    ms,
    () => `a stalled sink (${last})`,
    50,
  );
}

let compiled: string | undefined;

/**
 * The relay compiled with scripts/build.ts (as `make build` does), built once per
 * test process into a temp dir that cleanup never removes (other files reuse it).
 */
export function compiledRelay(): string {
  if (compiled) return compiled;
  const dir = mkdtempSync(join(tmpdir(), "vigil-it-binary-"));
  const out = join(dir, "vigil-log-relay");
  const r = Bun.spawnSync([process.execPath, join(ROOT, "scripts", "build.ts"), "--out", out], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`build failed (${r.exitCode}): ${r.stderr.toString()}`);
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  compiled = out;
  return out;
}
