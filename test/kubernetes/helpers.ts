/**
 * Helpers for the Kubernetes-mode integration tests: the relay as a real child
 * process against the fake API server (test/fixtures/fake-kube), its records
 * read back from a TCP receiver and checked sequence by sequence.
 *
 * Generator lines are "<prefix>-<seq>"; every check below is per prefix (one
 * prefix per container unless a test chooses otherwise): the seqs that arrived
 * must be exactly 1..N, in order, with no gap and no duplicate.
 */
import { expect } from "bun:test";
import type { Socket } from "bun";
import { join } from "node:path";
import { startFakeKube, type FakeKube, type FakeKubeOptions } from "../fixtures/fake-kube/index.ts";
import { startTcpReceiver, type TcpReceiver } from "../fixtures/tcp-receiver.ts";
import { startRelay, tempDir, track, waitUntil, type Relay, type RelayOptions } from "../integration/helpers.ts";
import type { KubeRecord } from "../../src/pipeline/envelope.ts";

export { cleanup, compiledRelay, expectOneErrorLine, metric, runRelay, startRelay, tempDir, track, waitUntil } from "../integration/helpers.ts";
export type { Relay } from "../integration/helpers.ts";

/** One record as the relay writes it in Kubernetes mode. */
export type { KubeRecord };

const FIELDS = ["timestamp", "namespace", "pod", "container", "stream", "message"] as const;

/** Parses one ndjson record, checking the exact field order and that every field is a string. */
export function parseRecord(line: string): KubeRecord {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new Error(`the receiver got a line that is not JSON: ${JSON.stringify(line.slice(0, 300))}`);
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error(`not a JSON object: ${line.slice(0, 300)}`);
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.join(",") !== FIELDS.join(",")) throw new Error(`unexpected fields ${keys.join(",")} in ${line.slice(0, 300)}`);
  for (const k of FIELDS) if (typeof o[k] !== "string") throw new Error(`field ${k} is not a string in ${line.slice(0, 300)}`);
  return o as unknown as KubeRecord;
}

/** Everything the receiver holds, parsed; reuses earlier parses (the receiver only appends). */
export class Records {
  readonly all: KubeRecord[] = [];

  constructor(readonly rx: TcpReceiver) {}

  /** Parses what arrived since the last call; returns every record so far. */
  update(): KubeRecord[] {
    if (this.rx.lineCount > this.all.length) {
      const lines = this.rx.lines();
      for (let i = this.all.length; i < lines.length; i++) this.all.push(parseRecord(lines[i] ?? ""));
    }
    return this.all;
  }

  /** The records whose message is "<prefix>-<seq>", grouped by prefix, seqs in arrival order. */
  seqs(): Map<string, number[]> {
    return seqsByPrefix(this.update());
  }

  /**
   * Waits until every prefix has its last seq (`expected`: prefix -> N), then
   * checks each is exactly 1..N in order (no gap, no duplicate).
   */
  async expectExactly(expected: Map<string, number>, timeoutMs = 30_000, what = "every line"): Promise<void> {
    await this.waitComplete(expected, timeoutMs, what);
    expectSeqs(this.seqs(), expected);
  }

  /** Waits until, for every prefix, the number of distinct seqs arrived is N (and N itself arrived). */
  async waitComplete(expected: Map<string, number>, timeoutMs = 30_000, what = "every line"): Promise<void> {
    let missing = "";
    await waitUntil(
      () => {
        const got = this.seqs();
        const short: string[] = [];
        for (const [prefix, n] of expected) {
          const s = got.get(prefix) ?? [];
          if (n > 0 && (s.length < n || !s.includes(n))) short.push(`${prefix}: ${new Set(s).size}/${n}`);
        }
        missing = short.slice(0, 10).join(", ") + (short.length > 10 ? ` (+${short.length - 10} more)` : "");
        return short.length === 0;
      },
      timeoutMs,
      () => `${what} (missing: ${missing})`,
      50,
    );
  }

  /** Waits until, for every prefix, the seq `last` has arrived (for reads that do not start at 1). */
  async waitLast(expected: Map<string, number>, timeoutMs = 30_000, what = "the last lines"): Promise<void> {
    let missing = "";
    await waitUntil(
      () => {
        const got = this.seqs();
        const short = [...expected].filter(([prefix, n]) => !(got.get(prefix) ?? []).includes(n)).map(([prefix, n]) => `${prefix}-${n}`);
        missing = short.slice(0, 10).join(", ");
        return short.length === 0;
      },
      timeoutMs,
      () => `${what} (missing: ${missing})`,
      50,
    );
  }

  /** Records of one pod (and container). */
  of(pod: string, container?: string): KubeRecord[] {
    return this.update().filter((r) => r.pod === pod && (container === undefined || r.container === container));
  }
}

/** "<prefix>-<seq>" -> [prefix, seq]; null for other messages. */
export function splitSeq(message: string): [string, number] | null {
  const m = /^(.*)-(\d+)$/.exec(message);
  if (!m) return null;
  return [m[1] ?? "", Number(m[2])];
}

export function seqsByPrefix(records: readonly KubeRecord[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const r of records) {
    const s = splitSeq(r.message);
    if (!s) continue;
    let list = out.get(s[0]);
    if (!list) out.set(s[0], (list = []));
    list.push(s[1]);
  }
  return out;
}

/** Describes how a seq list differs from 1..n: gaps, duplicates, disorder. */
export function seqProblems(seqs: readonly number[], n: number): string | null {
  const seen = new Set<number>();
  const dups: number[] = [];
  const disorder: number[] = [];
  let prev = 0;
  for (const s of seqs) {
    if (seen.has(s)) dups.push(s);
    seen.add(s);
    if (s < prev) disorder.push(s);
    prev = s;
  }
  const missing: number[] = [];
  for (let i = 1; i <= n; i++) if (!seen.has(i)) missing.push(i);
  const extra = [...seen].filter((s) => s < 1 || s > n);
  if (dups.length + disorder.length + missing.length + extra.length === 0 && seqs.length === n) return null;
  const show = (xs: number[]): string => `${xs.length} [${xs.slice(0, 12).join(",")}${xs.length > 12 ? ",…" : ""}]`;
  return `got ${seqs.length} of ${n}: missing ${show(missing)}, duplicated ${show(dups)}, out of order ${show(disorder)}, unexpected ${show(extra)}`;
}

/** Asserts that every prefix of `expected` arrived as exactly 1..N, in order; and no other prefix arrived. */
export function expectSeqs(got: Map<string, number[]>, expected: Map<string, number>, allowOtherPrefixes = false): void {
  const problems: string[] = [];
  for (const [prefix, n] of expected) {
    const p = seqProblems(got.get(prefix) ?? [], n);
    if (p) problems.push(`${prefix}: ${p}`);
  }
  if (!allowOtherPrefixes) {
    for (const prefix of got.keys()) if (!expected.has(prefix)) problems.push(`${prefix}: not expected at all`);
  }
  expect(problems.slice(0, 20).join("\n")).toBe("");
}

/**
 * One prefix whose lines came from several container instances: `ends` are the
 * last seqs of each instance (the last one is N). Asserts 1..N exactly once,
 * and in order within each instance (the instances' lines may interleave when
 * the relay learns of a restart late: the old instance's tail then follows).
 */
export function expectInstances(seqs: readonly number[], ends: readonly number[]): void {
  const n = ends[ends.length - 1] ?? 0;
  const problems: string[] = [];
  const whole = seqProblems([...seqs].sort((a, b) => a - b), n);
  if (whole) problems.push(`all instances: ${whole}`);
  let start = 1;
  for (const end of ends) {
    const part = seqs.filter((s) => s >= start && s <= end);
    for (let i = 1; i < part.length; i++) {
      if ((part[i] ?? 0) <= (part[i - 1] ?? 0)) {
        problems.push(`instance ${start}..${end}: ${part[i]} after ${part[i - 1]}`);
        break;
      }
    }
    start = end + 1;
  }
  expect(problems.join("\n")).toBe("");
}

export interface KubeEnv {
  kube: FakeKube;
  rx: TcpReceiver;
  records: Records;
  dir: string;
  kubeconfig: string;
  ns: string;
}

let nsCounter = 0;

/** A fake API server (stopped in cleanup), a receiver, a temp dir and a kubeconfig for the namespace. */
export async function kubeEnv(opts: FakeKubeOptions & { ns?: string } = {}): Promise<KubeEnv> {
  const ns = opts.ns ?? `ns${process.pid % 1000}-${++nsCounter}`;
  const kube = await startFakeKube({ generatorTickMs: 20, ...opts, namespaces: [ns, ...(opts.namespaces ?? [])] });
  track({ stop: () => kube.stop() });
  const rx = track(await startTcpReceiver());
  const dir = tempDir("vigil-k8s-");
  const kubeconfig = kube.writeKubeconfig(join(dir, "kubeconfig"), { namespace: ns });
  return { kube, rx, records: new Records(rx), dir, kubeconfig, ns };
}

/** Starts the relay in Kubernetes mode on env's namespace, sending to env's receiver. */
export function startKubeRelay(env: KubeEnv, flags: string[] = [], opts: RelayOptions = {}): Relay {
  const debug = process.env.VIGIL_K8S_IT_DEBUG === "1";
  // A --tcp-sink-port of the test's own (a collector that is down) replaces env's receiver.
  const sink = flags.includes("--tcp-sink-port") ? [] : ["--tcp-sink-port", String(env.rx.port)];
  const relay = startRelay(["--kubernetes", "--namespace", env.ns, ...sink, ...(debug ? ["--debug"] : []), ...flags], {
    ...opts,
    env: { KUBECONFIG: env.kubeconfig, HOME: env.dir, ...(opts.env ?? {}) },
  });
  // VIGIL_K8S_IT_DEBUG=1: the relay's debug log is printed when the test ends.
  if (debug) track({ stop: async () => console.error(relay.stderr.lines.join("\n")) });
  return relay;
}

/** Adds `n` running single-container pods named `${base}-${i}` (i from 1). */
export function addPods(kube: FakeKube, ns: string, base: string, n: number, containers: string[] = ["app"]): string[] {
  const names: string[] = [];
  for (let i = 1; i <= n; i++) {
    const name = `${base}-${i}`;
    kube.addPod({ namespace: ns, name, labels: { app: base }, containers: containers.map((c) => ({ name: c })) });
    names.push(name);
  }
  return names;
}

/** Waits until the relay holds `n` open log streams at the fake (it has found and opened them). */
export async function waitForStreams(kube: FakeKube, n: number, timeoutMs = 20_000, filter?: { pod?: string; container?: string }): Promise<void> {
  await kube.waitFor(() => kube.activeLogStreams(filter) >= n, { timeoutMs, message: `${n} open log streams (have ${kube.activeLogStreams(filter)})` });
}

export interface RewriteProxy {
  port: number;
  stop(): Promise<void>;
}

/**
 * A plain TCP proxy to 127.0.0.1:targetPort that replaces every `from` with
 * `to` (same length, so HTTP chunk sizes stay right) in what the server sends:
 * the way to put bytes the fake cannot write (it writes strings) on the wire.
 */
export async function startRewriteProxy(targetPort: number, from: Buffer, to: Buffer): Promise<RewriteProxy> {
  if (from.length !== to.length || from.length === 0) throw new Error("from and to must have the same, non-zero length");
  interface Pair {
    upstream: Socket<Pair> | null;
    pending: Buffer[];
    held: Buffer;
  }
  const sockets = new Set<Socket<Pair>>();
  const rewrite = (p: Pair, chunk: Buffer): Buffer => {
    const data = Buffer.concat([p.held, chunk]);
    let i = data.indexOf(from);
    while (i >= 0) {
      to.copy(data, i);
      i = data.indexOf(from, i + from.length);
    }
    // Keep a trailing partial match for the next chunk.
    let keep = 0;
    for (let k = Math.min(from.length - 1, data.length); k > 0; k--) {
      if (data.subarray(data.length - k).equals(from.subarray(0, k))) {
        keep = k;
        break;
      }
    }
    p.held = Buffer.from(data.subarray(data.length - keep));
    return data.subarray(0, data.length - keep);
  };
  const listener = Bun.listen<Pair>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      binaryType: "buffer",
      open(client) {
        sockets.add(client);
        const pair: Pair = { upstream: null, pending: [], held: Buffer.alloc(0) };
        client.data = pair;
        void Bun.connect<Pair>({
          hostname: "127.0.0.1",
          port: targetPort,
          data: pair,
          socket: {
            binaryType: "buffer",
            open(up) {
              sockets.add(up);
              pair.upstream = up;
              for (const b of pair.pending) up.write(b);
              pair.pending = [];
            },
            data(_up, chunk: Buffer) {
              client.write(rewrite(pair, chunk));
            },
            close() {
              if (pair.held.length > 0) client.write(pair.held);
              client.end();
            },
            error() {
              client.terminate();
            },
          },
        }).catch(() => client.terminate());
      },
      data(client, chunk: Buffer) {
        const up = client.data.upstream;
        if (up) up.write(chunk);
        else client.data.pending.push(Buffer.from(chunk));
      },
      close(client) {
        client.data.upstream?.end();
      },
      error() {},
    },
  });
  return {
    port: listener.port,
    async stop() {
      listener.stop(true);
      for (const s of sockets) s.terminate();
    },
  };
}

/** The relay's WARN/ERROR lines. */
export function warnings(relay: Relay): string[] {
  return relay.stderr.lines.filter((l) => /^\s*(WARN|ERROR)\b/.test(l) || /^\S+Z\s+(WARN|ERROR)\b/.test(l));
}
