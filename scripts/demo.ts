// make demo: the compiled relay in Kubernetes mode against the built-in fake
// API server (3 pods logging numbered lines, streams cut every few seconds,
// one container restarting), forwarding to a local TCP receiver that prints
// what arrives. Ends after --seconds (default 15) or on Ctrl-C, then prints a
// summary (lines, pods, resumes, gaps, duplicates) and leaves nothing running.
//   bun scripts/demo.ts [--seconds 15] [--binary dist/vigil-log-relay] [--quiet]
// DEMO_SECONDS sets the default of --seconds (the tests run `make demo` shorter).
//
// The fake cluster and the relay run in their own process groups: Ctrl-C in a
// terminal signals the whole foreground group, and a relay that got SIGINT from
// the terminal and then SIGTERM from here would take it as a second signal and
// exit at once (130) without flushing. So only this script sees Ctrl-C, and it
// stops the relay (one SIGTERM, after reading /metrics), then the cluster.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Subprocess } from "bun";
import { healthUrl, metricSum, readyLine } from "./lib/procs.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: process.env.DEMO_SECONDS || "15" },
    binary: { type: "string", default: "dist/vigil-log-relay" },
    quiet: { type: "boolean", default: false },
  },
});
const seconds = Number(values.seconds);
const dir = mkdtempSync(join(tmpdir(), "vigil-demo-"));
const kubeconfig = join(dir, "kubeconfig");
const dim = (s: string) => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s);

// Whatever ends this script (an error included), nothing it started keeps running.
const started: Subprocess[] = [];
process.on("exit", () => {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});
// Until the relay is up there is no summary to give: Ctrl-C, or a start that
// hangs, ends the demo at once (and the handler above stops the children).
const abortStart = (why: string): never => {
  console.error(`demo: ${why}`);
  process.exit(1);
};
const startTimer = setTimeout(() => abortStart("the fake cluster or the relay did not start within 30 s"), 30_000);
const onEarlySignal = () => abortStart("interrupted while starting");
process.on("SIGINT", onEarlySignal);
process.on("SIGTERM", onEarlySignal);

// 1. The receiver: a TCP "collector" that prints each ndjson record.
const received: string[] = [];
let partial = "";
const receiver = Bun.listen({
  hostname: "127.0.0.1",
  port: 0,
  socket: {
    data(_s, data: Buffer) {
      partial += data.toString("utf8");
      let nl: number;
      while ((nl = partial.indexOf("\n")) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        received.push(line);
        if (!values.quiet) process.stdout.write(`${line}\n`);
      }
    },
  },
});

// 2. The fake cluster.
const fake = Bun.spawn(
  [
    process.execPath,
    "test/fixtures/fake-kube/main.ts",
    "--pods", "3",
    "--lines-per-second", "4",
    "--containers", "2",
    "--kubeconfig", kubeconfig,
    "--close-streams-every-ms", "4000",
    "--restart-every-ms", "6000",
  ],
  { stdout: "pipe", stderr: "inherit", detached: true },
);
started.push(fake);
const cluster = await readyLine<{ url: string; namespace: string }>(fake, "the fake API server");
console.error(dim(`fake cluster at ${cluster.url}, namespace ${cluster.namespace}, kubeconfig ${kubeconfig}; receiver on 127.0.0.1:${receiver.port}`));

// 3. The relay, exactly as a user runs it.
const relay = Bun.spawn(
  [
    values.binary as string,
    "--kubernetes",
    "--namespace", cluster.namespace,
    "--tcp-sink-host", "127.0.0.1",
    "--tcp-sink-port", String(receiver.port),
    "--healthcheck", "127.0.0.1:0",
  ],
  { env: { ...process.env, KUBECONFIG: kubeconfig }, stdout: "inherit", stderr: "pipe", detached: true },
);
started.push(relay);
const health = await healthUrl(relay, (line) => console.error(dim(`relay: ${line}`)));
clearTimeout(startTimer);
process.off("SIGINT", onEarlySignal);
process.off("SIGTERM", onEarlySignal);

/** SIGTERM, and SIGKILL if that has not ended it in 10 s (the relay flushes for at most --shutdown-timeout, 5 s). */
async function stop(p: Subprocess): Promise<number> {
  p.kill("SIGTERM");
  const timer = setTimeout(() => p.kill("SIGKILL"), 10_000);
  const code = await p.exited;
  clearTimeout(timer);
  return code;
}

let stopping = false;
const finish = async () => {
  if (stopping) return;
  stopping = true;
  let page = "";
  try {
    page = await (await fetch(`${health}/metrics`)).text();
  } catch {
    // the relay is gone: no metrics
  }
  const code = await stop(relay);
  await stop(fake);
  receiver.stop(true);
  rmSync(dir, { recursive: true, force: true });

  // Sequences: every message is "<pod>-<container>-<seq>"; check each is gap- and duplicate-free.
  const seqs = new Map<string, number[]>();
  for (const line of received) {
    const rec = JSON.parse(line) as { pod: string; container: string; message: string };
    const m = /-(\d+)$/.exec(rec.message);
    if (!m) continue;
    const key = `${rec.pod}/${rec.container}`;
    const list = seqs.get(key) ?? [];
    list.push(Number(m[1]));
    seqs.set(key, list);
  }
  let gaps = 0;
  let dups = 0;
  for (const list of seqs.values()) {
    const seen = new Set<number>();
    for (const n of list) {
      if (seen.has(n)) dups++;
      seen.add(n);
    }
    const sorted = [...seen].sort((a, b) => a - b);
    for (let i = 1; i < sorted.length; i++) gaps += (sorted[i] as number) - (sorted[i - 1] as number) - 1;
  }
  const pods = new Set([...seqs.keys()].map((k) => k.split("/")[0]));
  console.log("");
  console.log("demo summary");
  console.log(`  lines received      ${received.length}`);
  console.log(`  pods / containers   ${pods.size} / ${seqs.size}`);
  console.log(`  stream resumes      ${metricSum(page, "vigil_log_relay_source_reconnects_total")}`);
  console.log(`  duplicates skipped  ${metricSum(page, "vigil_log_relay_duplicates_skipped_total")} (already forwarded, not sent again)`);
  console.log(`  gaps / duplicates   ${gaps} / ${dups} at the receiver`);
  console.log(`  relay exit code     ${code}`);
  process.exit(code === 0 && gaps === 0 && dups === 0 && received.length > 0 ? 0 : 1);
};
process.on("SIGINT", () => void finish());
process.on("SIGTERM", () => void finish());
setTimeout(() => void finish(), seconds * 1000);
