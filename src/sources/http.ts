// --source-url and --source-socket: one reader for both, on our HTTP/1.1
// client (src/http/raw-client.ts): it decodes chunked bodies, also over a Unix
// socket, pauses the socket while we do not read (so waiting on the queue here
// is real backpressure on the server), delivers the bytes that arrive together
// with a close (Bun's fetch may drop those), and verifies a proxy with its own
// CA and insecure settings.
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import type { CounterSeries, Metrics } from "../metrics.ts";
import type { ByteQueue } from "../queue.ts";
import { Backoff, sleep } from "../backoff.ts";
import { HttpFramer } from "../pipeline/framing.ts";
import { LineFilter } from "../pipeline/filter.ts";
import { HttpBodyError, HttpConnectError, request, type ProxySettings, type RawResponse, type TlsSettings } from "../http/raw-client.ts";
import { basicAuthorization, shownUrl } from "../http/userinfo.ts";
import { proxyTo, throughProxy } from "./proxy.ts";
import { pemBlocks, withDefaultRoots } from "./tls.ts";
import type { Source } from "./source.ts";
import { SourceFatalError } from "./source.ts";

export interface HttpSourceHooks {
  /** Called on each connect attempt (the health tick of HTTP modes). */
  onAttempt?(): void;
}

interface Target {
  url: URL;
  /** What the logs call the source. */
  label: string;
  unix?: string;
  kind: "url" | "socket";
}

const INCLUDE = { filter: "include" } as const;
/** A stream's first read longer than this is framed in two steps (see stream()). */
const FIRST_SLICE = 4096;
const EXCLUDE = { filter: "exclude" } as const;
const TOO_LONG = { reason: "too_long" } as const;
const LAGGED = { reason: "lagged" } as const;

/** What a repeated source failure's warning says, by cause: what failed and what to check. */
const FAILURE_ADVICE: Record<StreamFailure["kind"], string> = {
  error: "source stream failed, reconnecting (check that vigild runs and serves the source URL or socket)",
  timeout: "source stream failed, reconnecting (the source did not answer or went quiet: check that it is up, or raise the timeout named in error)",
  rejected: "source stream failed, reconnecting (the source answered with an error status: check the URL path and the source's own log)",
};

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;

/**
 * Where a redirect leads, or null when it is not followed: a URL source follows
 * it to any http(s) URL; a socket source (whose URL is only a placeholder
 * origin) to another path on the same socket.
 */
function redirectTarget(from: URL, location: string, kind: "url" | "socket"): URL | null {
  let to: URL;
  try {
    to = new URL(location, from);
  } catch {
    return null;
  }
  if (kind === "socket") return to.origin === from.origin ? to : null;
  return to.protocol === "http:" || to.protocol === "https:" ? to : null;
}

/** One connection attempt: the request under way and what aborts it. */
interface Attempt {
  controller: AbortController;
  response: Promise<RawResponse>;
}

class StreamFailure extends Error {
  constructor(
    message: string,
    readonly kind: "error" | "timeout" | "rejected",
  ) {
    super(message);
  }
}

export class HttpSource implements Source {
  private open = false;
  /** After a clean EOF the reconnect is routine: logged at debug level only. */
  private quietConnect = false;
  /** The current attempt got a 2xx response (the reference resets failures and backoff then). */
  private attemptConnected = false;
  private readonly target: Target;
  private readonly backoff: Backoff;
  private readonly filter: LineFilter | null;
  private readonly tls: TlsSettings | undefined;
  /** The same, for a target reached through the proxy (which may re-sign it). */
  private readonly tlsViaProxy: TlsSettings | undefined;
  private readonly proxy: ProxySettings | undefined;
  /** The request's headers; Authorization from the URL's user:password, as curl and reqwest send it. */
  private readonly headers: Record<string, string>;
  /** The connection prepare() started, until the first stream() takes it. */
  private early: Attempt | null = null;
  /** This source's series of lines_read_total and bytes_read_total, counted on every read. */
  private readonly linesRead: CounterSeries;
  private readonly bytesRead: CounterSeries;

  constructor(
    private readonly cfg: Config,
    private readonly queue: ByteQueue,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly hooks: HttpSourceHooks = {},
  ) {
    const c = cfg.connection;
    this.backoff = new Backoff(c.reconnectDelayMs, c.reconnectMaxMs);
    const filter = new LineFilter(cfg.filter);
    this.filter = filter.empty ? null : filter;
    if (cfg.source === "socket") {
      const path = cfg.sourcePath;
      this.target = { url: new URL(`http://localhost${path}`), unix: cfg.sourceSocket, label: `unix:${cfg.sourceSocket}${path}`, kind: "socket" };
      this.tls = undefined;
      this.tlsViaProxy = undefined;
      this.proxy = undefined;
    } else {
      const url = new URL(cfg.sourceUrl ?? "");
      this.target = { url, label: shownUrl(url), kind: "url" };
      const ca = withDefaultRoots(pemBlocks(c.caPem));
      this.tls = { ...(ca !== undefined ? { ca } : {}), rejectUnauthorized: !c.insecure };
      this.tlsViaProxy = throughProxy(this.tls, c.proxy);
      this.proxy = proxyTo(url, c.proxy);
    }
    const auth = basicAuthorization(this.target.url);
    this.headers = {
      Accept: "application/x-ndjson, text/event-stream;q=0.9, */*;q=0.1",
      "Cache-Control": "no-cache",
      "User-Agent": "vigil-log-relay",
      ...(auth !== undefined ? { Authorization: auth } : {}),
    };
    const kind = { source: this.target.kind };
    this.linesRead = metrics.linesRead.series(kind);
    this.bytesRead = metrics.bytesRead.series(kind);
  }

  get connected(): boolean {
    return this.open;
  }

  /**
   * Starts the first connection without waiting for it: it comes up while the
   * relay starts its health server and logs, and run() takes it over, so the
   * first lines reach the sink a few ms sooner. Nothing is read before run().
   */
  prepare(): Promise<void> {
    this.early ??= this.connect();
    return Promise.resolve();
  }

  async run(signal: AbortSignal): Promise<void> {
    try {
      await this.runLoop(signal);
    } finally {
      // Stopped before the connection prepare() started was used.
      this.early?.controller.abort();
      this.early = null;
    }
  }

  private async runLoop(signal: AbortSignal): Promise<void> {
    const retries = this.cfg.connection.reconnectRetries;
    let failures = 0;
    while (!signal.aborted) {
      this.hooks.onAttempt?.();
      this.attemptConnected = false;
      let received = 0;
      try {
        received = await this.stream(signal);
        if (signal.aborted) return;
        // A clean EOF: reconnect at once with a fresh backoff. Only an empty
        // response waits a little, so a server that closes at once is not hammered.
        failures = 0;
        this.backoff.reset();
        this.metrics.sourceReconnects.inc(1, { cause: "eof" });
        this.log.debug("source stream ended, reconnecting", { source: this.target.label, bytes: received });
        if (received === 0) await sleep(this.cfg.connection.reconnectDelayMs, signal);
      } catch (e) {
        if (signal.aborted) return;
        // A stream that connected and broke later is a first failure again, with the
        // first delay: only failures in a row count towards --source-reconnect-retries.
        if (this.attemptConnected) {
          failures = 0;
          this.backoff.reset();
        }
        failures++;
        this.quietConnect = false;
        const failure = e instanceof StreamFailure ? e : new StreamFailure(errorText(e), "error");
        this.metrics.sourceReconnects.inc(1, { cause: failure.kind });
        if (retries > 0 && failures >= retries) {
          throw new SourceFatalError(
            `source ${this.target.label}: giving up after ${failures} consecutive failures (--source-reconnect-retries ${retries}); last error: ${failure.message}`,
          );
        }
        const delay = this.backoff.next();
        // One key per cause, not per message: error texts vary (addresses, bodies), the fault does not.
        this.log.warnLimited(`source-${failure.kind}`, FAILURE_ADVICE[failure.kind], {
          source: this.target.label,
          error: failure.message,
          failures,
          retry_in_ms: delay,
        }, 10_000);
        await sleep(delay, signal);
      }
    }
  }

  /** Sends the request (to the source, or where it redirected to) on a new connection. */
  private connect(url: URL = this.target.url, controller = new AbortController()): Attempt {
    const c = this.cfg.connection;
    const proxy = url === this.target.url || this.target.unix ? this.proxy : proxyTo(url, c.proxy);
    // Credentials go to the source's origin only (reqwest drops them on a redirect elsewhere too).
    let headers = this.headers;
    if (url.origin !== this.target.url.origin && headers.Authorization !== undefined) {
      headers = { ...headers };
      delete headers.Authorization;
    }
    const response = request({
      url,
      signal: controller.signal,
      headers,
      ...(this.target.unix ? { unix: this.target.unix } : {}),
      ...(this.tls && url.protocol === "https:" ? { tls: proxy ? this.tlsViaProxy : this.tls } : {}),
      ...(proxy ? { proxy } : {}),
      // As the reference's client: the connect timeout covers the connection (TCP, TLS,
      // proxy tunnel); the wait for the response head is a read, under the read timeout.
      connectTimeoutMs: c.connectTimeoutMs,
      headersTimeoutMs: c.readTimeoutMs,
      keepAliveMs: c.keepaliveIntervalS * 1000,
    });
    // stream() handles the outcome; a prepared attempt that fails before run() must not count as unhandled.
    response.catch(() => {});
    return { controller, response };
  }

  /** One connection: returns the bytes read on a clean EOF, throws StreamFailure otherwise. */
  private async stream(stop: AbortSignal): Promise<number> {
    const c = this.cfg.connection;
    const attempt = this.early ?? this.connect();
    this.early = null;
    const controller = attempt.controller;
    let abortReason: StreamFailure | null = null;
    const abort = (reason: StreamFailure) => {
      abortReason ??= reason;
      controller.abort();
    };
    const onStop = () => controller.abort();
    stop.addEventListener("abort", onStop, { once: true });
    let watchdog: ReturnType<typeof setInterval> | undefined;
    const framer = new HttpFramer(this.filter, this.cfg.maxLineBytes, {
      tooLong: (n) => {
        // Read, then dropped: counted in both (the framer's line count never sees it).
        this.linesRead.inc(1);
        this.metrics.linesDropped.inc(1, TOO_LONG);
        this.log.warnLimited("too-long", "line longer than --max-line-bytes dropped (raise --max-line-bytes to keep such lines)", {
          source: this.target.label,
          bytes: n,
          max: this.cfg.maxLineBytes,
        });
      },
      lagged: (n) => {
        this.metrics.linesDropped.inc(n, LAGGED);
        this.log.warnLimited(
          "lagged",
          "the source skipped entries (its buffer overran before the relay read them: the sink is too slow or was down; give the source a larger buffer)",
          { source: this.target.label, skipped: n },
        );
      },
      // Per-line events are counted here and added to the metrics once per chunk.
      filtered: (by) => (by === "include" ? counts.include++ : counts.exclude++),
      skipped: () => counts.skipped++,
      invalidUtf8: () => counts.invalid++,
    });
    const counts = { include: 0, exclude: 0, skipped: 0, invalid: 0 };
    const flushCounts = () => {
      if (counts.include > 0) this.metrics.linesFiltered.inc(counts.include, INCLUDE);
      if (counts.exclude > 0) this.metrics.linesFiltered.inc(counts.exclude, EXCLUDE);
      if (counts.skipped > 0) this.metrics.linesSkipped.inc(counts.skipped);
      if (counts.invalid > 0) this.metrics.invalidUtf8.inc(counts.invalid);
      counts.include = counts.exclude = counts.skipped = counts.invalid = 0;
    };
    let received = 0;
    let res: RawResponse | undefined;
    const opened = (response: Promise<RawResponse>): Promise<RawResponse> =>
      response.catch((e: unknown) => {
        if (abortReason) throw abortReason;
        if (e instanceof HttpConnectError && e.kind === "connect-timeout") {
          throw new StreamFailure(`connect timeout after ${c.connectTimeoutMs} ms (${e.message})`, "timeout");
        }
        if (e instanceof HttpConnectError && e.kind === "headers-timeout") {
          throw new StreamFailure(`no response for ${c.readTimeoutMs} ms (--source-read-timeout; ${e.message})`, "timeout");
        }
        throw new StreamFailure(errorText(e), "error");
      });
    try {
      res = await opened(attempt.response);
      // Redirects are followed, up to 10, as the reference's HTTP client (reqwest) does.
      let url = this.target.url;
      for (let hops = 0; REDIRECT_STATUSES.has(res.status) && res.headers.has("location"); hops++) {
        const location = res.headers.get("location") ?? "";
        res.close();
        if (hops === MAX_REDIRECTS) throw new StreamFailure(`more than ${MAX_REDIRECTS} redirects (the last to ${location})`, "rejected");
        const next = redirectTarget(url, location, this.target.kind);
        if (next === null) {
          throw new StreamFailure(
            `HTTP ${res.status} redirect to ${location} not followed (${this.target.kind === "socket" ? "a Unix socket source follows redirects to another path only" : "not http or https"})`,
            "rejected",
          );
        }
        this.log.debug("source redirected", { source: this.target.label, status: res.status, to: shownUrl(next) });
        url = next;
        res = await opened(this.connect(url, controller).response);
      }
      if (res.status < 200 || res.status > 299) {
        const body = (await res.text(64 * 1024).catch(() => "")).trim().split("\n")[0]?.slice(0, 200) ?? "";
        throw new StreamFailure(`HTTP ${res.status}${body ? `: ${body}` : ""}`, "rejected");
      }
      this.attemptConnected = true;
      this.open = true;
      this.metrics.sourceConnected.set(1);
      if (this.quietConnect) this.log.debug("source connected", { source: this.target.label, status: res.status });
      else this.log.info("source connected", { source: this.target.label, status: res.status });
      this.quietConnect = true;
      let lastData = Date.now();
      let lastLine = lastData;
      if (c.readTimeoutMs > 0 || c.idleTimeoutMs > 0) {
        const tick = Math.max(10, Math.min(1000, Math.floor(Math.min(...[c.readTimeoutMs, c.idleTimeoutMs].filter((x) => x > 0)) / 4)));
        watchdog = setInterval(() => {
          const now = Date.now();
          if (c.readTimeoutMs > 0 && now - lastData > c.readTimeoutMs) abort(new StreamFailure(`no data for ${c.readTimeoutMs} ms (--source-read-timeout)`, "timeout"));
          else if (c.idleTimeoutMs > 0 && now - lastLine > c.idleTimeoutMs) abort(new StreamFailure(`no complete line for ${c.idleTimeoutMs} ms (--source-idle-timeout)`, "timeout"));
        }, tick);
      }
      const body: RawResponse = res;
      let first = true;
      while (true) {
        let value: Uint8Array | null;
        try {
          value = await body.read();
        } catch (e) {
          throw abortReason ?? new StreamFailure(`${e instanceof HttpBodyError ? "stream cut" : "read error"}: ${errorText(e)}`, "error");
        }
        if (value === null) break;
        received += value.length;
        lastData = Date.now();
        this.bytesRead.inc(value.length);
        let piece: Uint8Array | null = value;
        let next: Uint8Array | null = null;
        if (first && value.length > FIRST_SLICE) {
          // A stream's first read is often large (the server's backlog) and framed by
          // code not compiled yet (a few ms for 64 KiB): its first lines go out alone, first.
          const cut = value.lastIndexOf(10, FIRST_SLICE) + 1;
          if (cut > 0) {
            piece = value.subarray(0, cut);
            next = value.subarray(cut);
          }
        }
        first = false;
        while (piece !== null) {
          const seen = framer.linesSeen;
          const entry = framer.feed(piece);
          flushCounts();
          if (framer.linesSeen > seen) {
            lastLine = lastData;
            this.linesRead.inc(framer.linesSeen - seen);
          }
          if (entry) {
            const wait = this.queue.push(entry);
            if (wait) await wait;
            // Lets the sink take and write this entry before the rest is framed (a
            // macrotask: the sink's wake-up takes several promise steps).
            else if (next !== null) await new Promise<void>((resolve) => setImmediate(resolve));
          }
          piece = next;
          next = null;
        }
      }
      if (abortReason) throw abortReason;
      const seen = framer.linesSeen;
      const last = framer.finish();
      flushCounts();
      this.linesRead.inc(framer.linesSeen - seen);
      if (last) {
        const wait = this.queue.push(last);
        if (wait) await wait;
      }
      return received;
    } finally {
      res?.close();
      clearInterval(watchdog);
      stop.removeEventListener("abort", onStop);
      if (this.open) {
        this.open = false;
        this.metrics.sourceConnected.set(0);
      }
      const half = framer.reset();
      if (half > 0) this.metrics.linesDropped.inc(1, { reason: "partial" });
      if (half > 0 && !stop.aborted) {
        this.log.warnLimited("half-line", "connection ended inside a line; the partial line was discarded (if this repeats, check the source and the network between)", {
          source: this.target.label,
          bytes: half,
        });
      }
    }
  }
}

function errorText(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  return String(e);
}
