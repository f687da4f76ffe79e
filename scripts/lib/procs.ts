// Small process helpers shared by the demo and the benchmarks.
import { readdirSync, readFileSync } from "node:fs";
import type { Subprocess } from "bun";

/** Reads the first stdout line of a process as JSON (its "ready" line). */
export async function readyLine<T>(proc: Subprocess<"ignore" | "pipe" | "inherit", "pipe", "pipe" | "inherit" | "ignore">, what: string, timeoutMs = 30_000): Promise<T> {
  const reader = proc.stdout.getReader();
  const dec = new TextDecoder();
  let buf = "";
  const timer = setTimeout(() => proc.kill(), timeoutMs);
  try {
    while (!buf.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`${what} ended before it was ready`);
      buf += dec.decode(value, { stream: true });
    }
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
  return JSON.parse(buf.slice(0, buf.indexOf("\n"))) as T;
}

/** Waits for the relay's "health check listening address=…/healthz" line on stderr, passing stderr through when asked. */
export async function healthUrl(proc: Subprocess<"ignore" | "pipe" | "inherit", "pipe" | "inherit" | "ignore", "pipe">, echo: (line: string) => void): Promise<string> {
  const reader = proc.stderr.getReader();
  const dec = new TextDecoder();
  let buf = "";
  let found: string | null = null;
  while (found === null) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the relay ended before it listened");
    buf += dec.decode(value, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      echo(line);
      const m = /address=(http:\/\/\S+)\/healthz/.exec(line);
      if (m) found = m[1] as string;
    }
  }
  // Keep passing the rest of stderr through.
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += dec.decode(value, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        echo(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    }
  })();
  return found;
}

/** One metric's value summed over its label sets, from a Prometheus text page. */
export function metricSum(page: string, name: string): number {
  let sum = 0;
  for (const line of page.split("\n")) {
    if (line.startsWith(name + " ") || line.startsWith(name + "{")) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

/** VmHWM (the process's own peak) and RssFile (its file-backed resident share) in bytes, from one read of /proc/PID/status; null when the process is gone (or there is no /proc). */
function memoryStatus(pid: number): { peak: number; file: number } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return null;
  }
  const kB = (field: string) => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(text);
    return m ? Number(m[1]) * 1024 : null;
  };
  const peak = kB("VmHWM");
  return peak === null ? null : { peak, file: kB("RssFile") ?? 0 };
}

/** VmHWM of one process in bytes: its own peak resident memory. */
function ownPeak(pid: number): number | null {
  return memoryStatus(pid)?.peak ?? null;
}

/** The process and its descendants, by /proc/PID/task/TID/children. */
function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    const p = out[i] as number;
    try {
      for (const t of readdirSync(`/proc/${p}/task`)) {
        const text = readFileSync(`/proc/${p}/task/${t}/children`, "utf8").trim();
        if (text) for (const c of text.split(/\s+/)) out.push(Number(c));
      }
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * Peak resident memory (VmHWM) of a running process and its descendants,
 * summed, in bytes; null where /proc is not available. Read while they run.
 * Why not rusage's maxRSS: Linux starts a child's maxRSS at its parent's peak
 * when the child is spawned with vfork (Bun.spawn does), so every child of a
 * 60 MB benchmark process reported at least 60 MB whatever it used itself
 * (`true` spawned by a 200 MB Bun process reports 200 MB). VmHWM is the
 * process's own peak.
 */
export function peakRssBytes(pid: number): number | null {
  if (ownPeak(pid) === null) return null;
  let sum = 0;
  for (const p of processTree(pid)) sum += ownPeak(p) ?? 0;
  return sum;
}

/**
 * peakRssBytes() for a process tree whose members may exit before the end (a
 * shell pipeline): samples every `everyMs` and keeps each member's last peak.
 */
export function peakRssSampler(pid: number, everyMs = 25): { sample(): void; stop(): number | null; codeBytes(): number } {
  const peaks = new Map<number, number>();
  /** Each member's largest file-backed resident share (RssFile): mostly the program's code pages. */
  const files = new Map<number, number>();
  let seen = false;
  const sample = () => {
    for (const p of processTree(pid)) {
      const m = memoryStatus(p);
      if (m === null) continue;
      seen = true;
      if (m.peak > (peaks.get(p) ?? 0)) peaks.set(p, m.peak);
      if (m.file > (files.get(p) ?? 0)) files.set(p, m.file);
    }
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    sample,
    stop() {
      clearInterval(timer);
      if (!seen) return null;
      let sum = 0;
      for (const v of peaks.values()) sum += v;
      return sum;
    },
    /** The file-backed part (summed over the members, each at its largest). */
    codeBytes() {
      let sum = 0;
      for (const v of files.values()) sum += v;
      return sum;
    },
  };
}
