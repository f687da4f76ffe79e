// --kubernetes: the pod watch feeds a set of container log streams.
import type { Config } from "../../config.ts";
import type { Logger } from "../../log.ts";
import type { Metrics } from "../../metrics.ts";
import type { ByteQueue } from "../../queue.ts";
import { EnvelopeWriter } from "../../pipeline/envelope.ts";
import { LineFilter } from "../../pipeline/filter.ts";
import type { Source } from "../source.ts";
import { StartupError } from "../../startup-error.ts";
import { tickPeriodMs } from "../../health.ts";
import { createKubeClient, type KubeClient } from "./client.ts";
import { ContainerLog, type StreamContext, type StreamKind } from "./container-log.ts";
import type { ContainerInfo, PodInfo } from "./pod-model.ts";
import { PodWatcher, type PodListener } from "./pods.ts";
import { SlotPool } from "./slots.ts";
import { StateStore } from "./state-file.ts";

interface PodEntry {
  pod: PodInfo;
  logs: Map<string, ContainerLog>;
}

/** Keeps one ContainerLog per (pod, container, stream kind) in step with the pods. */
class LogStreams implements PodListener {
  private readonly pods = new Map<string, PodEntry>();
  private firstResync = true;
  private split: boolean;
  private readonly ctx: StreamContext;

  constructor(
    client: KubeClient,
    private readonly cfg: Config,
    queue: ByteQueue,
    private readonly log: Logger,
    metrics: Metrics,
    state: StateStore | null,
  ) {
    this.split = cfg.kubernetes.splitStreams && !cfg.kubernetes.noStreamParam;
    const filter = new LineFilter(cfg.filter);
    this.ctx = {
      client,
      cfg,
      queue,
      log,
      metrics,
      read: { lines: metrics.linesRead.series({ source: "kubernetes" }), bytes: metrics.bytesRead.series({ source: "kubernetes" }) },
      slots: new SlotPool(cfg.kubernetes.maxLogRequests, cfg.kubernetes.fairShareS * 1000, (active, waiting) => {
        metrics.logStreamsActive.set(active);
        metrics.logStreamsWaiting.set(waiting);
      }),
      writer: new EnvelopeWriter(),
      filter: filter.empty ? null : filter,
      state,
      onStreamParamRejected: (message) => this.splitRejected(message),
    };
  }

  private kinds(): StreamKind[] {
    return this.split ? ["stdout", "stderr"] : ["output"];
  }

  resync(pods: PodInfo[]): void {
    const seen = new Set(pods.map((p) => p.uid));
    for (const [uid, entry] of this.pods) if (!seen.has(uid)) this.remove(entry.pod);
    for (const p of pods) this.upsert(p);
    this.firstResync = false;
  }

  upsert(pod: PodInfo): void {
    let entry = this.pods.get(pod.uid);
    if (!entry) {
      entry = { pod, logs: new Map() };
      this.pods.set(pod.uid, entry);
    }
    entry.pod = pod;
    const only = this.cfg.kubernetes.container;
    for (const c of pod.containers) {
      if (only !== undefined && c.name !== only) continue;
      for (const kind of this.kinds()) {
        const key = `${c.name}\u0000${kind}`;
        const existing = entry.logs.get(key);
        if (existing) existing.update(pod);
        else entry.logs.set(key, this.createLog(pod, c, kind));
      }
    }
  }

  private createLog(pod: PodInfo, c: ContainerInfo, kind: StreamKind): ContainerLog {
    const saved = this.ctx.state?.get(pod.uid, c.name, kind);
    // --state-file: the instance the relay wrote last is still the current one (resume
    // from its cursor) or the previous one (its unread tail first, then the new one from
    // its beginning); otherwise --tail-lines / --since-seconds as without a state file.
    if (saved !== undefined && (saved.containerID === c.containerID || saved.containerID === c.lastContainerID)) {
      this.log.debug("resuming from the state file", { pod: pod.name, container: c.name, stream: kind, since: saved.ts });
      return new ContainerLog(this.ctx, pod, c.name, kind, undefined, { containerID: saved.containerID, cursor: { ts: saved.ts, count: saved.count } });
    }
    if (!this.firstResync) return new ContainerLog(this.ctx, pod, c.name, kind, undefined);
    return new ContainerLog(this.ctx, pod, c.name, kind, c.containerID, undefined, c.state === "terminated");
  }

  /** Uids of the pods followed, or null before the first list (for pruning the state file). */
  livePods(): ReadonlySet<string> | null {
    return this.firstResync ? null : new Set(this.pods.keys());
  }

  remove(pod: PodInfo): void {
    const entry = this.pods.get(pod.uid);
    if (!entry) return;
    this.pods.delete(pod.uid);
    for (const l of entry.logs.values()) {
      l.update(pod);
      l.podGone();
    }
  }

  /** The server refuses stream=: fall back to one combined stream per container. */
  private splitRejected(message: string): void {
    if (!this.split) return;
    this.split = false;
    this.log.warn("the API server rejects the stream parameter (PodLogsQuerySplitStreams is off); using one combined stream per container (drop --split-streams)", {
      error: message,
    });
    for (const entry of this.pods.values()) {
      for (const [key, l] of entry.logs) {
        if (l.kind !== "output") {
          l.stop();
          entry.logs.delete(key);
        }
      }
      this.upsert(entry.pod);
    }
  }

  stopAll(): void {
    for (const entry of this.pods.values()) for (const l of entry.logs.values()) l.stop();
    this.ctx.slots.stop();
  }

  get podCount(): number {
    return this.pods.size;
  }
}

/** How long start-up waits for the first pod list (a 401/403 then ends the relay before it reports itself started). */
const FIRST_LIST_WAIT_MS = 15_000;

export class KubernetesSource implements Source {
  private readonly client: KubeClient;
  private readonly streams: LogStreams;
  private readonly watcher: PodWatcher;
  /** Aborts the start-up list when run() is stopped (or never runs). */
  private readonly internal = new AbortController();
  /** The start-up list's outcome: null when it succeeded, else its error (never rejects). */
  private initial: Promise<unknown> | null = null;
  /** --state-file */
  private readonly state: StateStore | null;

  constructor(
    private readonly cfg: Config,
    queue: ByteQueue,
    private readonly log: Logger,
    metrics: Metrics,
    /** The liveness tick: from the watch loop and the reconcile timer. */
    private readonly tick: () => void,
  ) {
    this.client = createKubeClient(cfg, log);
    const path = cfg.kubernetes.stateFile;
    this.state = path === undefined ? null : new StateStore(path, log, { metrics });
    this.state?.load();
    this.streams = new LogStreams(this.client, cfg, queue, log, metrics, this.state);
    this.state?.setLivePods(() => this.streams.livePods());
    this.watcher = new PodWatcher(this.client, cfg, log, metrics, this.streams, tick);
  }

  get connected(): boolean {
    return this.watcher.established;
  }

  /**
   * Start-up: the first list of pods. A 401/403 rejects with a StartupError (one
   * line, exit 2). Other failures, or a list slower than FIRST_LIST_WAIT_MS, do
   * not hold the start: run() goes on (and retries) from there.
   */
  async prepare(): Promise<void> {
    const initial = this.watcher.firstList(this.internal.signal).then(
      () => null,
      (e: unknown) => e,
    );
    this.initial = initial;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const slow = new Promise<"slow">((resolve) => {
      timer = setTimeout(() => resolve("slow"), FIRST_LIST_WAIT_MS);
    });
    const first = await Promise.race([initial, slow]).finally(() => clearTimeout(timer));
    if (first instanceof StartupError) throw first;
    if (first instanceof Error && !this.internal.signal.aborted) {
      this.log.warn("listing pods failed, retrying (check that the API server is reachable)", { namespace: this.client.namespace, error: first.message });
    }
  }

  async run(signal: AbortSignal): Promise<void> {
    const stopInternal = () => this.internal.abort();
    if (signal.aborted) stopInternal();
    signal.addEventListener("abort", stopInternal, { once: true });
    const watcher = this.watcher;
    // The reconcile tick keeps /healthz fresh while the watch loop is alive: quiet
    // between bookmarks, or retrying an API server that is away; a loop stuck for
    // longer than a watch lasts (290 s) plus the longest backoff goes stale.
    const staleAfterMs = 10 * 60_000;
    const reconcile = setInterval(
      () => {
        if (Date.now() - watcher.lastActivity < staleAfterMs) this.tick();
      },
      tickPeriodMs(Math.max(1, this.cfg.kubernetes.watchIntervalS) * 1000, this.cfg.health.maxAgeS),
    );
    this.state?.start();
    try {
      if (this.initial !== null) {
        const e = await this.initial;
        if (e instanceof StartupError) throw e;
      }
      await watcher.run(signal);
    } finally {
      clearInterval(reconcile);
      signal.removeEventListener("abort", stopInternal);
      this.internal.abort();
      this.streams.stopAll();
    }
  }

  /**
   * After the sink flushed on shutdown: saves the state file once more, so it
   * holds every line written (main.ts awaits this after sink.flush).
   */
  async close(): Promise<void> {
    await this.state?.close();
  }
}
