// One follow-stream of one container (one stream kind), across its instances.
// It reopens at once after a clean end while the container runs (backoff only
// on errors), reads a terminated instance to its end, reads the unread tail of
// a restarted instance with previous=true, and stops when the pod is gone.
import { InOrderAcks } from "../../in-order-acks.ts";
import type { Config } from "../../config.ts";
import type { Logger } from "../../log.ts";
import type { CounterSeries, Metrics } from "../../metrics.ts";
import type { ByteQueue, QueueEntry } from "../../queue.ts";
import { Backoff } from "../../backoff.ts";
import { envelopeMiddle, type EnvelopeWriter } from "../../pipeline/envelope.ts";
import type { LineFilter } from "../../pipeline/filter.ts";
import { HttpBodyError } from "../../http/raw-client.ts";
import { readStatus, type KubeClient } from "./client.ts";
import { CREDENTIALS_RETRY_WARNING, CredentialsError } from "./credentials-error.ts";
import { Cursor, sinceTimeFor, type CursorState } from "./cursor.ts";
import type { ContainerInfo, PodInfo } from "./pod-model.ts";
import { RecordReader } from "./records.ts";
import type { SlotHolder, SlotPool } from "./slots.ts";
import type { StateStore } from "./state-file.ts";

export type StreamKind = "output" | "stdout" | "stderr";

export interface StreamContext {
  client: KubeClient;
  cfg: Config;
  queue: ByteQueue;
  log: Logger;
  metrics: Metrics;
  /** lines_read_total and bytes_read_total{source="kubernetes"}, bound once: counted on every read of every stream. */
  read: { lines: CounterSeries; bytes: CounterSeries };
  slots: SlotPool;
  writer: EnvelopeWriter;
  filter: LineFilter | null;
  /** --state-file: where the written cursors go; null without it. */
  state: StateStore | null;
  /** Called when the server rejects stream= (the split falls back to one combined stream). */
  onStreamParamRejected(message: string): void;
}

type Outcome = "eof" | "rotated" | "restarted" | "stopped" | "retry" | "reauth" | "gone" | "waiting" | "rejected-stream";

// Constant label objects: the metrics cache their keys by identity (hot path).
const INCLUDE = { filter: "include" } as const;
const EXCLUDE = { filter: "exclude" } as const;
const TOO_LONG = { reason: "too_long" } as const;

/** How a deleted pod's open streams may take to drain before they are closed. */
const DRAIN_GRACE_MS = 30_000;
/** A stream that ended this soon without a line is not reopened at once. */
const QUICK_EOF_MS = 2_000;
/** Cursor states kept from the start of the current instance's last connections (see finishPrevious). */
const MAX_MARKS = 16;

function sameState(a: CursorState | null, b: CursorState | null): boolean {
  return a === b || (a !== null && b !== null && a.ts === b.ts && a.count === b.count);
}

export class ContainerLog implements SlotHolder {
  private pod: PodInfo;
  private gone = false;
  private stopped = false;
  private instance: string | undefined;
  private cursor = new Cursor();
  /** The current instance has been read to its end. */
  private done = false;
  /** Connected once for this instance (so a reconnect never re-applies tail/since). */
  private connectedAt = 0;
  private current: AbortController | null = null;
  private rotating = false;
  /** A follow request for the current instance is open (or waiting for its slot). */
  private following = false;
  /** The pod showed a new instance while such a request was open: it was aborted. */
  private restartSeen = false;
  /** A 401 was answered by reloading the credentials and retrying at once. */
  private reauthenticated = false;
  /**
   * The cursor at the start of each of the current instance's last connections.
   * A request names the container, not the instance: one made around a restart
   * may be answered with the new instance's log. These let finishPrevious find
   * where the old instance's unread lines start if that happened.
   */
  private marks: Array<CursorState | null> = [];
  private wake: (() => void) | null = null;
  private readonly backoff: Backoff;
  private readonly middle: Buffer;
  private readonly label: string;
  private drainTimer: ReturnType<typeof setTimeout> | undefined;
  /**
   * Written cursors of this stream's queued entries (with --state-file), passed to
   * the state file in queue order even when a spool acknowledges newer entries first.
   */
  private readonly acks = new InOrderAcks<{ id: string; at: CursorState }>(
    ({ id, at }) => this.ctx.state?.written(this.stateRef(), id, at),
    (a, b) => a.id === b.id,
  );
  readonly finished: Promise<void>;

  constructor(
    private readonly ctx: StreamContext,
    pod: PodInfo,
    readonly container: string,
    readonly kind: StreamKind,
    /** The instance present at the relay's first list: read with --tail-lines / --since-seconds. */
    private readonly initialInstance: string | undefined,
    /** --state-file: the instance and cursor written before the relay restarted; resumed like a reconnect. */
    restored?: { containerID: string; cursor: CursorState },
    /**
     * The initial instance had already ended at the first list (a finished Job's pod):
     * only the --since-seconds window of it, never --tail-lines, which would send
     * its last lines again at every start of the relay.
     */
    private readonly initialEnded = false,
  ) {
    this.pod = pod;
    if (restored !== undefined) {
      this.instance = restored.containerID;
      this.cursor = new Cursor({ ts: restored.cursor.ts, count: restored.cursor.count });
    }
    this.backoff = new Backoff(500, 30_000);
    this.middle = envelopeMiddle({ namespace: pod.namespace, pod: pod.name, container, stream: kind });
    this.label = `${pod.name}/${container}${kind === "output" ? "" : `(${kind})`}`;
    this.finished = this.run().catch((e: unknown) => {
      ctx.log.error("log stream failed", { stream: this.label, error: e instanceof Error ? e.message : String(e) });
    });
  }

  update(pod: PodInfo): void {
    this.pod = pod;
    const id = this.containerInfo()?.containerID;
    if (this.following && this.instance !== undefined && id !== undefined && id !== this.instance) {
      // A new instance while a stream for the old one is open: that stream may already be
      // the new instance's log. Stop it; run() sorts the two instances out.
      this.restartSeen = true;
      this.current?.abort();
    }
    this.poke();
  }

  /** The pod was deleted: drain what is open, then stop without retrying. */
  podGone(): void {
    this.gone = true;
    this.drainTimer ??= setTimeout(() => this.current?.abort(), DRAIN_GRACE_MS);
    this.poke();
  }

  stop(): void {
    this.stopped = true;
    this.current?.abort();
    this.poke();
  }

  yieldSlot(): void {
    this.rotating = true;
    this.current?.abort();
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Waits for a pod update, stop, or `ms` (when given). */
  private waitChange(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = ms !== undefined ? setTimeout(() => this.poke(), ms) : undefined;
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private containerInfo(): ContainerInfo | undefined {
    return this.pod.containers.find((c) => c.name === this.container);
  }

  private async run(): Promise<void> {
    try {
      while (!this.stopped) {
        const c = this.containerInfo();
        if (!c || !c.containerID) {
          if (this.gone) return;
          await this.waitChange();
          continue;
        }
        if (this.instance === undefined) this.startInstance(c.containerID, null);
        if (c.containerID !== this.instance) {
          // The container restarted: finish the old instance, then start the new one from its beginning.
          const carried = await this.finishPrevious(c);
          if (this.stopped) return;
          this.startInstance(c.containerID, carried);
          continue;
        }
        if (this.done) {
          if (this.gone) return;
          await this.waitChange();
          continue;
        }
        const terminatedBefore = c.state === "terminated" || this.gone;
        const started = Date.now();
        const before = this.cursorKey();
        const outcome = await this.follow(false);
        const quiet = this.cursorKey() === before && Date.now() - started < QUICK_EOF_MS;
        switch (outcome) {
          case "eof":
            this.ctx.metrics.sourceReconnects.inc(1, { cause: "eof" });
            if (terminatedBefore) {
              // A request made after the container ended returns its log to the end.
              this.done = true;
            } else if (this.gone) {
              return;
            } else if (quiet) {
              // Ended at once without a line: the container may have just exited; wait for its status.
              await this.waitChange(this.backoff.next());
            }
            break;
          case "rotated":
            this.ctx.metrics.sourceReconnects.inc(1, { cause: "rotation" });
            break;
          case "restarted":
          case "reauth":
            break;
          case "stopped":
          case "gone":
          case "rejected-stream":
            return;
          case "waiting":
          case "retry":
            if (this.gone && outcome === "waiting") return;
            await this.waitChange(this.backoff.next());
            break;
        }
      }
    } finally {
      clearTimeout(this.drainTimer);
    }
  }

  /** The cursor as a value (its state object changes in place on ties). */
  private cursorKey(): string {
    const st = this.cursor.state;
    return st === null ? "" : `${st.ts}#${st.count}`;
  }

  private startInstance(id: string, cursor: CursorState | null): void {
    this.instance = id;
    this.cursor = new Cursor(cursor);
    this.done = false;
    this.connectedAt = 0;
    this.marks = [];
  }

  /**
   * The container restarted (c.containerID is a new instance): reads the old
   * instance's unread tail with previous=true and returns the cursor the new
   * instance starts from: null (its beginning), unless lines of the new
   * instance were already forwarded under the old one's cursor. That happens
   * when a request made around the restart was answered with the new
   * instance's log; its lines are all newer than the old instance's, so the
   * old log then ends before the cursor point (Cursor.resumed stays false), and
   * the old instance's unread lines start at the last connection mark that its
   * log does reach.
   */
  private async finishPrevious(c: ContainerInfo): Promise<CursorState | null> {
    const current = this.cursor.snapshot();
    if (c.lastContainerID !== this.instance) {
      if (!this.done && (current !== null || this.connectedAt > 0)) {
        this.ctx.log.warnLimited(
          "restart-lost",
          "container restarted more than once before its log was read to the end; the unread rest of that instance is gone (the relay fell behind: check the sink's speed and --max-log-requests)",
          { stream: this.label },
        );
      }
      return null;
    }
    const candidates: Array<CursorState | null> = [current];
    if (current !== null) {
      for (let i = this.marks.length - 1; i >= 0; i--) {
        const m = this.marks[i] ?? null;
        if (!candidates.some((x) => sameState(x, m))) candidates.push(m);
      }
    }
    for (const from of candidates) {
      const r = await this.readPrevious(from);
      if (r === "stopped") return null;
      if (r === "unreadable") return from === current ? null : current;
      if (r === "reached") {
        if (from !== current) {
          this.ctx.log.debug("lines of the new instance were read before the restart was seen; the old instance's tail followed", { stream: this.label });
        }
        return from === current ? null : current;
      }
    }
    this.ctx.log.warnLimited(
      "restart-tail",
      "could not find where the unread rest of the previous container instance starts; some of its last lines may be lost (the relay fell behind: check the sink's speed and --max-log-requests)",
      { stream: this.label },
    );
    return current;
  }

  /** The old instance's log (previous=true) after `from`; whether it reached that point. */
  private async readPrevious(from: CursorState | null): Promise<"reached" | "not-reached" | "unreadable" | "stopped"> {
    // One cursor for every attempt: a retry after a cut resumes where the last one stopped.
    this.cursor = new Cursor(from === null ? null : { ts: from.ts, count: from.count });
    for (let attempt = 0; attempt < 3 && !this.stopped; ) {
      const outcome = await this.follow(true);
      switch (outcome) {
        case "eof":
          return this.cursor.resumed ? "reached" : "not-reached";
        case "rotated":
        case "reauth":
        case "restarted":
          continue;
        case "stopped":
          return "stopped";
        case "gone":
        case "rejected-stream":
          return "unreadable";
        default:
          attempt++;
          await this.waitChange(this.backoff.next());
      }
    }
    return this.stopped ? "stopped" : "unreadable";
  }

  private query(previous: boolean): string {
    const k = this.ctx.cfg.kubernetes;
    const q = new URLSearchParams({ container: this.container, timestamps: "true" });
    if (previous) q.set("previous", "true");
    else q.set("follow", "true");
    const st = this.cursor.state;
    if (st !== null) {
      q.set("sinceTime", sinceTimeFor(st.ts));
    } else if (this.instance === this.initialInstance && !previous) {
      // Nothing forwarded yet: the first connect's --tail-lines / --since-seconds. On a
      // reconnect (the first one brought no line) the log then was empty or older than
      // the window: --since-seconds keeps the window of that first connect; with
      // --tail-lines the log was empty, so everything in it now is new (no sinceTime:
      // the relay's clock need not match the node's).
      if (this.connectedAt === 0) {
        if (k.tailLines > 0 && !this.initialEnded) q.set("tailLines", String(k.tailLines));
        else if (k.sinceSeconds > 0) q.set("sinceSeconds", String(k.sinceSeconds));
      } else if (k.tailLines === 0 && k.sinceSeconds > 0) {
        q.set("sinceTime", new Date(Math.floor((this.connectedAt - k.sinceSeconds * 1000) / 1000) * 1000).toISOString().slice(0, 19) + "Z");
      }
    }
    if (this.kind === "stdout") q.set("stream", "Stdout");
    if (this.kind === "stderr") q.set("stream", "Stderr");
    return `/api/v1/namespaces/${encodeURIComponent(this.pod.namespace)}/pods/${encodeURIComponent(this.pod.name)}/log?${q}`;
  }

  /** One request, holding a slot; reads records until the body ends. */
  private async follow(previous: boolean): Promise<Outcome> {
    const ac = new AbortController();
    this.current = ac;
    this.restartSeen = false;
    this.following = !previous;
    try {
      return await this.request(ac, previous);
    } finally {
      this.following = false;
      if (this.current === ac) this.current = null;
    }
  }

  private async request(ac: AbortController, previous: boolean): Promise<Outcome> {
    let release: (() => void) | null = null;
    try {
      release = await this.ctx.slots.acquire(this, ac.signal);
    } catch {
      return this.stopped ? "stopped" : this.restartSeen ? "restarted" : "retry";
    }
    this.rotating = false;
    const reader = new RecordReader(this.cursor, this.ctx.writer, this.middle, this.ctx.filter, this.ctx.cfg.maxLineBytes);
    try {
      const path = this.query(previous);
      if (!previous) {
        this.marks.push(this.cursor.snapshot());
        if (this.marks.length > MAX_MARKS) this.marks.shift();
      }
      const res = await this.ctx.client.get(path, { signal: ac.signal, headersTimeoutMs: 0 });
      if (res.status !== 200) return await this.failed(res.status, await readStatus(res), previous);
      this.reauthenticated = false;
      if (this.connectedAt === 0 && !previous) this.connectedAt = Date.now();
      this.cursor.beginResume();
      this.ctx.log.debug("log stream open", { stream: this.label, previous });
      while (true) {
        const chunk = await res.read();
        if (chunk === null) break;
        this.ctx.read.bytes.inc(chunk.length);
        reader.push(chunk);
        await this.deliver(reader);
      }
      // A clean end: a last line without a newline is still a record.
      reader.finish();
      await this.deliver(reader);
      this.backoff.reset();
      return "eof";
    } catch (e) {
      if (this.stopped) return "stopped";
      if (this.restartSeen) return "restarted";
      if (this.rotating) return "rotated";
      if (ac.signal.aborted && this.gone) return "gone";
      const cut = e instanceof HttpBodyError;
      this.ctx.metrics.sourceReconnects.inc(1, { cause: ac.signal.aborted ? "timeout" : "error" });
      if (e instanceof CredentialsError) {
        // The same key as the pod watcher's: one failing plugin, one warning for all.
        this.ctx.log.warnLimited("credentials", CREDENTIALS_RETRY_WARNING, { stream: this.label, error: e.message });
        return "retry";
      }
      // One key for all streams: when the API server or a node is away, every stream fails at once.
      this.ctx.log.warnLimited(
        cut ? "log-cut" : "log-failed",
        cut
          ? "log stream cut, resuming after the last line forwarded (if this repeats, check the network to the API server)"
          : "log stream failed, retrying (check that the API server is reachable)",
        { stream: this.label, error: e instanceof Error ? e.message : String(e) },
      );
      return "retry";
    } finally {
      const partial = reader.discardPartial();
      if (partial > 0) this.ctx.log.debug("partial line left for the resume", { stream: this.label, bytes: partial });
      this.flushCounts(reader);
      release?.();
    }
  }

  /** Hands the records of a chunk to the queue; waits while it is full (backpressure). */
  private async deliver(reader: RecordReader): Promise<void> {
    if (reader.errors.length > 0) {
      for (const text of reader.errors) {
        this.ctx.log.warnLimited(
          "kubelet-error",
          "the log stream carried an error instead of a log line (the kubelet could not read the container's log: check the node and its container runtime)",
          { stream: this.label, text },
        );
      }
      reader.errors = [];
    }
    this.flushCounts(reader);
    const taken: QueueEntry | null = this.ctx.writer.take();
    const state = this.ctx.state;
    if (state !== null) {
      // The state file keeps the cursor the sink has written, not the one read: the cursor
      // as of this take becomes the written one once the entry's bytes are out.
      const id = this.instance;
      const at = this.cursor.snapshot();
      if (taken === null) {
        // Nothing forwarded (filtered lines only): with nothing of this stream in the queue, it counts as written.
        if (this.acks.pending === 0 && id !== undefined && at !== null) state.written(this.stateRef(), id, at);
      } else if (id !== undefined && at !== null) {
        taken.onWritten = this.acks.add({ id, at });
      }
    }
    if (taken === null) return;
    const wait = this.ctx.queue.push(taken);
    if (wait) await wait;
  }

  private stateRef(): { uid: string; namespace: string; pod: string; container: string; kind: string } {
    return { uid: this.pod.uid, namespace: this.pod.namespace, pod: this.pod.name, container: this.container, kind: this.kind };
  }

  private flushCounts(reader: RecordReader): void {
    const n = reader.counts;
    const m = this.ctx.metrics;
    this.ctx.read.lines.inc(n.read);
    m.duplicatesSkipped.inc(n.duplicates);
    m.linesFiltered.inc(n.filtered - reader.excluded, INCLUDE);
    m.linesFiltered.inc(reader.excluded, EXCLUDE);
    reader.excluded = 0;
    m.invalidUtf8.inc(n.invalidUtf8);
    m.linesDropped.inc(n.tooLong, TOO_LONG);
    if (n.tooLong > 0) {
      this.ctx.log.warnLimited("too-long", "line longer than --max-line-bytes dropped (raise --max-line-bytes to keep such lines)", {
        stream: this.label,
        lines: n.tooLong,
        max: this.ctx.cfg.maxLineBytes,
      });
    }
    n.read = n.duplicates = n.filtered = n.invalidUtf8 = n.tooLong = n.forwarded = 0;
  }

  private async failed(status: number, st: { message?: string; reason?: string }, previous: boolean): Promise<Outcome> {
    const message = st.message ?? "";
    const fields = { stream: this.label, status, error: message };
    if (status === 204 || (status === 200 && message === "")) return "waiting";
    if (status === 400 && /is waiting to start|ContainerCreating|PodInitializing/.test(message)) {
      this.ctx.log.debug("container not started yet", fields);
      return "waiting";
    }
    if (status === 400 && previous && /previous terminated container/.test(message)) return "eof";
    if (status === 404) {
      this.gone = true;
      return "gone";
    }
    if ((status === 400 || status === 422) && /stream/.test(message) && /may not be specified|Forbidden|not supported/i.test(message)) {
      this.ctx.onStreamParamRejected(message);
      return "rejected-stream";
    }
    if (status === 401) {
      // A rotated token: reload the credentials and try once at once, then back off.
      this.ctx.client.refreshCredentials();
      if (!this.reauthenticated) {
        this.reauthenticated = true;
        this.ctx.log.debug("credentials refused, reloaded them", fields);
        return "reauth";
      }
    }
    if (status === 403) {
      this.ctx.log.warnLimited("log-forbidden", "not allowed to read this pod's log (the Role needs get on pods/log)", fields, 60_000);
    } else {
      this.ctx.log.warnLimited("log-refused", "log request refused, retrying (see error; if it persists, check the API server's log)", fields);
    }
    this.ctx.metrics.sourceReconnects.inc(1, { cause: "rejected" });
    return "retry";
  }
}
