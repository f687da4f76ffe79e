// The TCP ndjson sink (Filebeat / Fluent Bit / Logstash tcp input) on Bun.connect.
// One connection, kept up eagerly with backoff. Bun's socket.write is unbuffered
// and may take only part of a buffer: the rest waits for `drain`. A batch whose
// write broke is resent first on the next connection, from the start of its
// first line not wholly accepted, so the collector never sees a spliced line.
import type { Socket } from "bun";
import type { TcpSinkConfig } from "../config.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { ByteQueue } from "../queue.ts";
import { Backoff, settlesWithin, sleep } from "../backoff.ts";
import { type Batch, BatchBuilder, completeBatch, requeueRest, resendOffset } from "./batch.ts";
import type { Sink } from "./sink.ts";

class Connection {
  socket: Socket<undefined> | null = null;
  closed = false;
  private drainWaiter: (() => void) | null = null;
  private closeWaiters: Array<() => void> = [];

  onDrain(): void {
    const w = this.drainWaiter;
    this.drainWaiter = null;
    w?.();
  }

  onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.onDrain();
    const ws = this.closeWaiters;
    this.closeWaiters = [];
    for (const w of ws) w();
  }

  waitDrain(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.drainWaiter = resolve;
    });
  }

  waitClose(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }
}

type Wake = "data" | "closed" | "idle" | "stop";

const CLOSED = { cause: "closed" } as const;
const IDLE = { cause: "idle" } as const;

/** Below this many queued bytes the sink waits LINGER_MS for more before writing. */
const LINGER_BYTES = 64 * 1024;
const LINGER_MS = 2;
/** "Under load": the previous batch completed less than this many ms ago. */
const LINGER_BUSY_MS = 20;

export class TcpSink implements Sink {
  private conn: Connection | null = null;
  private inflight: Batch | null = null;
  private readonly batches = new BatchBuilder();
  private readonly backoff: Backoff;
  private stopping = false;
  private abandoned = false;
  private stopWaker: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  private lastWrite = Date.now();
  /** performance.now() of the last completed batch (lingering applies only while batches follow closely). */
  private lastBatchAt = Number.NEGATIVE_INFINITY;
  private readonly address: string;

  constructor(
    private readonly cfg: TcpSinkConfig,
    private readonly queue: ByteQueue,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    this.backoff = new Backoff(cfg.reconnectDelayMs, cfg.reconnectMaxMs);
    this.address = cfg.host.includes(":") ? `[${cfg.host}]:${cfg.port}` : `${cfg.host}:${cfg.port}`;
  }

  get connected(): boolean {
    return this.conn !== null && !this.conn.closed;
  }

  start(): void {
    this.loop ??= this.run();
  }

  async flush(timeoutMs: number): Promise<boolean> {
    this.stopping = true;
    this.queue.wake();
    this.stopWaker?.();
    const ok = await settlesWithin(this.loop ?? Promise.resolve(), timeoutMs);
    this.closeConnection(!ok);
    return ok;
  }

  abandon(): Uint8Array | null {
    this.abandoned = true;
    this.stopping = true;
    this.stopWaker?.();
    const batch = this.inflight;
    this.inflight = null;
    this.closeConnection(true);
    if (batch === null) return null;
    // A copy: the batch may live in the builder's scratch buffer.
    return batch.buf.slice(resendOffset(batch));
  }

  private async run(): Promise<void> {
    while (true) {
      if (this.abandoned) return;
      if (this.stopping && this.inflight === null && this.queue.pending === 0) return;
      const conn = this.conn && !this.conn.closed ? this.conn : await this.reconnect();
      if (conn === null) return; // stopping while disconnected
      if (this.inflight === null) {
        // Many small entries (Kubernetes mode: a few lines per stream per read) would
        // each become a write and a TCP segment: let a short pause gather them first.
        // Only under load: after a quiet spell the first line goes out at once.
        const busy = performance.now() - this.lastBatchAt < LINGER_BUSY_MS;
        if (busy && this.queue.pending > 0 && this.queue.bytes < LINGER_BYTES && !this.stopping) await sleep(LINGER_MS);
        this.inflight = this.batches.next(this.queue);
        if (this.inflight === null) {
          const why = await this.waitForWork(conn);
          if (why === "closed") this.metrics.sinkReconnects.inc(1, CLOSED);
          if (why === "idle") {
            this.log.debug("sink idle, reconnecting", { address: this.address });
            this.metrics.sinkReconnects.inc(1, IDLE);
            this.closeConnection(false);
          }
          continue;
        }
      }
      const batch = this.inflight;
      const err = await this.writeBatch(conn, batch);
      if (this.abandoned) return;
      if (err === null) {
        completeBatch(batch, this.queue, this.metrics);
        this.lastBatchAt = performance.now();
        this.inflight = null;
        this.lastWrite = Date.now();
        this.backoff.reset();
      } else {
        batch.offset = resendOffset(batch);
        // With a spool the unwritten rest goes back to the queue (from where an outage moves it
        // to disk, so the cursors can advance past it); otherwise this sink keeps it for the resend.
        if (this.queue.requeue) {
          requeueRest(batch, this.queue, this.metrics);
          this.inflight = null;
        }
        this.log.warnLimited("sink-write", "sink write failed; the unwritten lines are resent on the next connection (check that the collector is up and reading)", {
          address: this.address,
          error: err,
          pending_bytes: batch.buf.length - batch.offset,
        });
        this.metrics.sinkReconnects.inc(1, { cause: err === "write timeout" ? "timeout" : "error" });
        this.closeConnection(true);
      }
    }
  }

  /** Waits for queued data, the connection closing, the idle timeout or stop. */
  private waitForWork(conn: Connection): Promise<Wake> {
    const waits: Promise<Wake>[] = [
      this.queue.waitForData().then(() => "data" as const),
      conn.waitClose().then(() => "closed" as const),
      new Promise<Wake>((resolve) => {
        this.stopWaker = () => resolve("stop");
      }),
    ];
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (this.cfg.idleTimeoutMs > 0) {
      const left = Math.max(0, this.lastWrite + this.cfg.idleTimeoutMs - Date.now());
      waits.push(
        new Promise<Wake>((resolve) => {
          timer = setTimeout(() => resolve("idle"), left);
        }),
      );
    }
    return Promise.race(waits).finally(() => {
      clearTimeout(timer);
      this.stopWaker = null;
    });
  }

  /** Writes the rest of the batch; returns null on success or why it failed. */
  private async writeBatch(conn: Connection, batch: Batch): Promise<string | null> {
    const buf = batch.buf;
    while (batch.offset < buf.length) {
      const socket = conn.socket;
      if (conn.closed || socket === null) return "connection closed";
      const n = socket.write(buf, batch.offset, buf.length - batch.offset);
      if (n < 0) return "connection closed";
      batch.offset += n;
      if (batch.offset < buf.length) {
        const ok = await this.awaitDrain(conn);
        if (!ok) return "write timeout";
      }
    }
    return null;
  }

  /** False when --dest-read-timeout (if set) passed before the socket drained. */
  private async awaitDrain(conn: Connection): Promise<boolean> {
    if (this.cfg.writeTimeoutMs <= 0) {
      await conn.waitDrain();
      return true;
    }
    return settlesWithin(conn.waitDrain(), this.cfg.writeTimeoutMs);
  }

  /** Connects, with backoff between failures; null when stopping. */
  private async reconnect(): Promise<Connection | null> {
    this.conn = null;
    this.metrics.sinkConnected.set(0);
    while (true) {
      if (this.abandoned || (this.stopping && this.inflight === null && this.queue.pending === 0)) return null;
      try {
        const conn = await this.connect();
        this.conn = conn;
        this.metrics.sinkConnected.set(1);
        this.lastWrite = Date.now();
        this.log.info("connected to sink", { address: this.address });
        return conn;
      } catch (e) {
        this.metrics.sinkConnectFailures.inc(1);
        const delay = this.backoff.next();
        this.log.warnLimited(
          "sink-connect",
          "cannot connect to the sink; lines wait in the queue (check that the collector listens there)",
          { address: this.address, error: e instanceof Error ? e.message : String(e), retry_in_ms: delay },
        );
        // While stopping, one failed attempt is enough: the flush deadline decides the rest.
        if (this.stopping) await this.sleepOrStop(Math.min(delay, 200));
        else await this.sleepOrStop(delay);
      }
    }
  }

  private sleepOrStop(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.stopWaker = () => {
        clearTimeout(timer);
        resolve();
      };
    }).finally(() => {
      this.stopWaker = null;
    });
  }

  private async connect(): Promise<Connection> {
    const conn = new Connection();
    const connecting = Bun.connect<undefined>({
      hostname: this.cfg.host,
      port: this.cfg.port,
      socket: {
        binaryType: "uint8array",
        data() {},
        drain: () => conn.onDrain(),
        close: () => conn.onClose(),
        end: (s) => {
          conn.onClose();
          s.end();
        },
        error: () => conn.onClose(),
        connectError: () => {},
      },
    });
    const socket = await withTimeout(connecting, this.cfg.connectTimeoutMs, "connect timeout", (late) => late.terminate());
    conn.socket = socket;
    socket.setNoDelay(true);
    if (this.cfg.keepaliveIntervalS > 0) socket.setKeepAlive(true, this.cfg.keepaliveIntervalS * 1000);
    return conn;
  }

  private closeConnection(abrupt: boolean): void {
    const conn = this.conn;
    this.conn = null;
    this.metrics.sinkConnected.set(0);
    if (!conn || conn.closed) return;
    const s = conn.socket;
    conn.onClose();
    if (s) {
      if (abrupt) s.terminate();
      else s.end();
    }
  }
}

/** Resolves like `p` unless `ms` (> 0) pass first; a late result goes to `onLate`. */
export async function withTimeout<T>(p: Promise<T>, ms: number, message: string, onLate?: (v: T) => void): Promise<T> {
  if (ms <= 0) return p;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          timedOut = true;
          reject(new Error(message));
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (timedOut && onLate) p.then(onLate, () => {});
  }
}
