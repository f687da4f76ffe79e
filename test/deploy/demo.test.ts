/**
 * `make demo`, the README's first command, end to end: it builds the relay,
 * starts the fake cluster and a local receiver, forwards the pods' ndjson, and
 * ends by itself with a summary (lines, pods, resumes, 0 gaps, 0 duplicates)
 * in under a minute; Ctrl-C (SIGINT to the whole foreground process group,
 * as a terminal sends it) ends it early with the same summary. Either way
 * nothing it started is left running. DEMO_SECONDS shortens the run.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { ROOT } from "./helpers.ts";

interface Summary {
  lines: number;
  pods: number;
  containers: number;
  resumes: number;
  gaps: number;
  duplicates: number;
  relayExit: number;
}

function summary(stdout: string): Summary {
  const num = (re: RegExp): number => {
    const m = re.exec(stdout);
    if (!m) throw new Error(`no ${re} in the demo's output:\n${stdout.slice(-2000)}`);
    return Number(m[1]);
  };
  const pc = /pods \/ containers\s+(\d+) \/ (\d+)/.exec(stdout);
  const gd = /gaps \/ duplicates\s+(\d+) \/ (\d+) at the receiver/.exec(stdout);
  if (!pc || !gd) throw new Error(`no summary in the demo's output:\n${stdout.slice(-2000)}`);
  return {
    lines: num(/lines received\s+(\d+)/),
    pods: Number(pc[1]),
    containers: Number(pc[2]),
    resumes: num(/stream resumes\s+(\d+)/),
    gaps: Number(gd[1]),
    duplicates: Number(gd[2]),
    relayExit: num(/relay exit code\s+(\d+)/),
  };
}

/** Processes whose command line holds `needle` (Linux /proc; none elsewhere). */
function processesWith(needle: string): string[] {
  if (!existsSync("/proc/self/cmdline")) return [];
  const found: string[] = [];
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      if (cmd.includes(needle)) found.push(`${pid}: ${cmd}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** What identifies this run's children: the receiver's port (relay args) and the kubeconfig (fake cluster args). */
function leftovers(stderr: string): string[] {
  const port = /receiver on 127\.0\.0\.1:(\d+)/.exec(stderr)?.[1];
  const kubeconfig = /kubeconfig (\S+);/.exec(stderr)?.[1];
  expect(port).toBeDefined();
  expect(kubeconfig).toBeDefined();
  return [...processesWith(`--tcp-sink-port ${port} `), ...processesWith(`--kubeconfig ${kubeconfig}`)];
}

function expectRecords(stdout: string): void {
  const records = stdout.split("\n").filter((l) => l.startsWith("{"));
  expect(records.length).toBeGreaterThan(0);
  const r = JSON.parse(records[0] as string) as Record<string, unknown>;
  expect(Object.keys(r)).toEqual(["timestamp", "namespace", "pod", "container", "stream", "message"]);
}

/** A stream's text so far; more() reads one more chunk of it (false at its end). */
function collector(stream: ReadableStream<Uint8Array>): { text: string; more(): Promise<boolean> } {
  const reader = stream.getReader();
  const dec = new TextDecoder();
  const c = {
    text: "",
    async more(): Promise<boolean> {
      const { value, done } = await reader.read();
      if (done) return false;
      c.text += dec.decode(value, { stream: true });
      return true;
    },
  };
  return c;
}

describe("make demo", () => {
  test("ends by itself in under a minute: lines from 3 pods, resumes, 0 gaps, 0 duplicates, nothing left", async () => {
    const started = Date.now();
    const proc = Bun.spawn(["make", "--no-print-directory", "demo"], {
      cwd: ROOT,
      env: { ...process.env, DEMO_SECONDS: "7" },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    const elapsed = Date.now() - started;
    if (code !== 0) throw new Error(`make demo exited ${code}:\n${stdout.slice(-2000)}\n${stderr}`);
    expect(elapsed).toBeLessThan(60_000);
    const s = summary(stdout);
    expect(s.lines).toBeGreaterThan(0);
    expect(s.pods).toBe(3);
    expect(s.containers).toBe(6);
    // streams are cut every 4 s: each container resumed at least once
    expect(s.resumes).toBeGreaterThan(0);
    expect(s.gaps).toBe(0);
    expect(s.duplicates).toBe(0);
    expect(s.relayExit).toBe(0);
    expectRecords(stdout);
    expect(leftovers(stderr)).toEqual([]);
  }, 60_000);

  test("Ctrl-C ends it early with the summary and leaves nothing running", async () => {
    // Its own process group, so that the SIGINT below reaches make, the demo
    // and (unless the demo shields them) its children, like a terminal's Ctrl-C.
    const proc = Bun.spawn(["make", "--no-print-directory", "demo"], {
      cwd: ROOT,
      env: { ...process.env, DEMO_SECONDS: "55" },
      stdout: "pipe",
      stderr: "pipe",
      detached: true,
    });
    const out = collector(proc.stdout);
    const err = collector(proc.stderr);
    // Until the receiver has printed 20 records (Ctrl-C while lines flow).
    const deadline = Date.now() + 30_000;
    while (out.text.split("\n").filter((l) => l.startsWith("{")).length < 20) {
      if (Date.now() > deadline) throw new Error(`the demo did not start:\n${out.text.slice(-2000)}`);
      if (!(await out.more())) throw new Error(`the demo ended early:\n${out.text.slice(-2000)}`);
    }
    process.kill(-proc.pid, "SIGINT");
    const outEnded = (async () => {
      while (await out.more()) {}
    })();
    while (await err.more()) {}
    // stdout closes when the demo itself has ended, not only make
    await outEnded;
    await proc.exited;
    const stdout = out.text;
    const stderr = err.text;
    const s = summary(stdout);
    expect(s.lines).toBeGreaterThan(0);
    expect(s.gaps).toBe(0);
    expect(s.duplicates).toBe(0);
    // one orderly stop: the relay flushed and exited 0 (not 130 from a second signal)
    expect(s.relayExit).toBe(0);
    expect(stderr).toContain("stopped; queue flushed");
    expect(leftovers(stderr)).toEqual([]);
  }, 60_000);
});
