// Counters and gauges, rendered in the Prometheus text format 0.0.4.
// Label values are bounded by the callers (kinds, reasons, causes): never per line.

type Labels = Record<string, string>;

export const PREFIX = "vigil_log_relay_";

/** Keys of label objects seen before: hot paths pass the same constant object. */
const keyCache = new WeakMap<Labels, string>();

function labelKey(labels: Labels | undefined): string {
  if (!labels) return "";
  const cached = keyCache.get(labels);
  if (cached !== undefined) return cached;
  const key = computeLabelKey(labels);
  keyCache.set(labels, key);
  return key;
}

function computeLabelKey(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return "";
  return (
    "{" +
    keys.map((k) => `${k}="${String(labels[k]).replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')}"`).join(",") +
    "}"
  );
}

/** A sample value as the text format spells it (+Inf, -Inf, NaN). */
function formatValue(v: number): string {
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** HELP text escapes only backslash and newline. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** One series' value, held by reference so hot paths can keep it (Counter.series). */
interface Cell {
  v: number;
}

abstract class Metric {
  /** Series by label key, in the order they appeared (the render order). */
  protected readonly cells = new Map<string, Cell>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "gauge",
  ) {}
  get(labels?: Labels): number {
    this.collect();
    return this.cells.get(labelKey(labels))?.v ?? 0;
  }
  /** The series of these labels, created at 0 on first use. */
  protected cell(labels?: Labels): Cell {
    const k = labelKey(labels);
    let c = this.cells.get(k);
    if (c === undefined) {
      c = { v: 0 };
      this.cells.set(k, c);
    }
    return c;
  }
  /** Hook for gauges whose value is read when scraped. */
  protected collect(): void {}
  render(): string {
    this.collect();
    let out = `# HELP ${PREFIX}${this.name} ${escapeHelp(this.help)}\n# TYPE ${PREFIX}${this.name} ${this.type}\n`;
    if (this.cells.size === 0 && this.type === "gauge") out += `${PREFIX}${this.name} 0\n`;
    for (const [key, c] of this.cells) out += `${PREFIX}${this.name}${key} ${formatValue(c.v)}\n`;
    return out;
  }
  /** The one label this metric is split by, and its values (bounded); null when it has none. */
  labels: { name: string; values: readonly string[] } | null = null;
  /**
   * Declares the metric's label and every value it can take; each series is shown
   * at 0 until it moves, so dashboards see it before the first event. Without a
   * label: the one unlabelled series is shown at 0.
   */
  known(label?: string, values: readonly string[] = []): void {
    if (label === undefined) {
      this.cell();
      return;
    }
    this.labels = { name: label, values };
    for (const v of values) this.cell({ [label]: v });
  }
}

/** A counter's one series, bound once: what per-chunk code increments (no label lookup per call). */
export interface CounterSeries {
  inc(n: number): void;
}

export class Counter extends Metric {
  constructor(name: string, help: string) {
    super(name, help, "counter");
  }
  /** Counters never go backwards: negative increments are ignored. */
  inc(n = 1, labels?: Labels): void {
    if (!(n > 0)) return;
    this.cell(labels).v += n;
  }
  /** The series of `labels`, for code that counts on every read or write. */
  series(labels?: Labels): CounterSeries {
    const c = this.cell(labels);
    return {
      inc(n: number): void {
        if (n > 0) c.v += n;
      },
    };
  }
}

export class Gauge extends Metric {
  constructor(name: string, help: string) {
    super(name, help, "gauge");
  }
  set(v: number, labels?: Labels): void {
    this.cell(labels).v = v;
  }
  add(n: number, labels?: Labels): void {
    this.cell(labels).v += n;
  }
  private sampler: (() => number) | null = null;
  /** Reads the value from `fn` at each scrape: for levels that change on every push and take. */
  sample(fn: () => number): void {
    this.sampler = fn;
  }
  protected override collect(): void {
    if (this.sampler) this.cell().v = this.sampler();
  }
}

/** Every metric the relay exports; one instance per process (tests make their own). */
export class Metrics {
  readonly linesRead = new Counter("lines_read_total", "Lines read from sources (forwarded or not), by source kind.");
  readonly bytesRead = new Counter("bytes_read_total", "Bytes read from sources, by source kind.");
  readonly linesForwarded = new Counter("lines_forwarded_total", "Lines written to the sink.");
  readonly bytesForwarded = new Counter("bytes_forwarded_total", "Bytes written to the sink.");
  readonly linesFiltered = new Counter("lines_filtered_total", "Lines dropped by --include/--exclude, by filter.");
  readonly linesSkipped = new Counter("lines_skipped_total", "Framing lines not forwarded (empty, SSE comments and fields).");
  readonly linesDropped = new Counter("lines_dropped_total", "Lines dropped, by reason: too_long (over --max-line-bytes), lagged (the source reported it skipped them), partial (a half line when an HTTP source's connection broke), when_full (queue or spool full under --when-full drop-newest).");
  readonly invalidUtf8 = new Counter("lines_invalid_utf8_total", "Lines whose invalid UTF-8 was replaced with U+FFFD.");
  readonly sourceReconnects = new Counter("source_reconnects_total", "Source stream reconnects (the HTTP stream, or a Kubernetes log stream), by cause: eof (the server ended it), error, timeout, rotation (--max-log-requests fair share), rejected (an error status).");
  readonly sinkReconnects = new Counter("sink_reconnects_total", "Sink reconnects, by cause: error (a write failed), timeout (--dest-read-timeout), idle (--dest-idle-timeout), closed (the collector closed the connection).");
  readonly sinkConnectFailures = new Counter("sink_connect_failures_total", "Sink connection attempts that failed (refused, unreachable, --dest-connect-timeout).");
  readonly sinkConnected = new Gauge("sink_connected", "1 while the sink connection is up.");
  readonly sourceConnected = new Gauge("source_connected", "1 while the source is connected: the HTTP stream open, or the Kubernetes pod watch established.");
  readonly queueBytes = new Gauge("queue_bytes", "Bytes waiting in the memory queue (including the write in flight).");
  readonly spoolBytes = new Gauge("spool_bytes", "Bytes in the disk spool (--buffer-dir) not yet written to the sink.");
  readonly spoolSegments = new Gauge("spool_segments", "Segment files in the disk spool.");
  readonly linesSpooled = new Counter("lines_spooled_total", "Lines written to the disk spool because the memory queue was full.");
  readonly watchRestarts = new Counter("watch_restarts_total", "Pod watch restarts, by cause: timeout (the server ended the watch), error, silent (no event or bookmark past the watch timeout).");
  readonly watchRelists = new Counter("watch_relists_total", "Pod relists after the watch history expired (410).");
  readonly logStreamsActive = new Gauge("log_streams_active", "Kubernetes log requests open now.");
  readonly logStreamsWaiting = new Gauge("log_streams_waiting", "Kubernetes log streams waiting for a --max-log-requests slot.");
  readonly duplicatesSkipped = new Counter("duplicates_skipped_total", "Lines skipped on resume because they were already forwarded.");
  readonly lastWriteSeconds = new Gauge("last_write_timestamp_seconds", "Unix time of the last successful sink write.");
  // --state-file (src/sources/kubernetes/state-file.ts).
  readonly cursorSaves = new Counter("cursor_saves_total", "State file (--state-file) saves that succeeded.");
  readonly cursorSaveFailures = new Counter("cursor_save_failures_total", "State file saves that failed (warned, retried at the next interval).");

  all(): Metric[] {
    return Object.values(this).filter((v): v is Metric => v instanceof Metric);
  }

  render(): string {
    return this.all()
      .map((m) => m.render())
      .join("");
  }

  /** Known label values: every series is exported at 0 before its first event. */
  constructor() {
    const kinds = ["url", "socket", "kubernetes"];
    this.linesRead.known("source", kinds);
    this.bytesRead.known("source", kinds);
    this.linesFiltered.known("filter", ["include", "exclude"]);
    this.linesDropped.known("reason", ["too_long", "lagged", "partial", "when_full"]);
    this.sourceReconnects.known("cause", ["eof", "error", "timeout", "rotation", "rejected"]);
    this.sinkReconnects.known("cause", ["error", "timeout", "idle", "closed"]);
    this.watchRestarts.known("cause", ["timeout", "error", "silent"]);
    // Unlabelled counters: one series at 0.
    for (const m of this.all()) if (m.type === "counter" && m.labels === null) m.known();
  }
}
