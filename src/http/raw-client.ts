// A small HTTP/1.1 GET client on Bun.connect, one request per connection.
//
// Why not fetch: Bun's fetch runs at most 256 requests at once per process
// (BUN_CONFIG_MAX_HTTP_REQUESTS is read at start-up only), and it can drop
// bytes that arrive together with the connection close. The Kubernetes mode
// holds 1,000+ long-lived log follow streams and must not lose their last
// lines. Here every connection is one Bun socket with shared handlers, the body
// is handed out as views into the socket reads, and the socket is paused while
// the reader is behind (real TCP backpressure on the server).
import type { Socket, SocketHandler, TLSOptions } from "bun";
import type * as nodeTls from "node:tls";
import { type BodyDecoder, FramingError, bodyDecoderFor } from "./body.ts";
import { HttpBodyError, HttpConnectError, abortError, errorCode, errorMessage } from "./errors.ts";
import { HeadError, HeadParser, type ResponseHead } from "./head.ts";
import { bareHost, buildConnect, buildRequest, portOf } from "./request-head.ts";
import { ipVersion } from "./ip.ts";
import type { NodeTlsTunnel, Wire } from "./tunnel.ts";
import { dropConsumed } from "../fifo.ts";

export { HttpBodyError, HttpConnectError } from "./errors.ts";
export type { BodyErrorKind, ConnectErrorKind } from "./errors.ts";

export interface TlsSettings {
  ca?: string | Buffer | Array<string | Buffer>;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** default true: a certificate that does not verify fails the request */
  rejectUnauthorized?: boolean;
  /** SNI and the name the certificate must match (default: the URL's host) */
  serverName?: string;
}

export interface ProxySettings {
  /** http: or https: proxy; user:pass in the URL becomes Basic Proxy-Authorization */
  url: URL;
  /** for an https proxy */
  tls?: TlsSettings;
  /** sent to the proxy (CONNECT, or the absolute-URI request); a Proxy-Authorization here wins over the URL's */
  headers?: Record<string, string>;
}

export interface RequestOptions {
  /** http: or https: target */
  url: URL;
  /** connect to this Unix socket instead (Host header from url; TLS over it for https:) */
  unix?: string;
  /** extra request headers; Host and Accept-Encoding here replace the defaults, Connection is always "close" */
  headers?: Record<string, string>;
  /** for an https target */
  tls?: TlsSettings;
  /** CONNECT tunnel for https targets, absolute-URI request for http targets; ignored with `unix` */
  proxy?: ProxySettings;
  /** abort at any time: request() rejects / read() throws the signal's reason (an AbortError), socket terminated */
  signal?: AbortSignal;
  /** until the connection (TCP, TLS handshakes, proxy CONNECT) is up and the request written; 0 = none */
  connectTimeoutMs?: number;
  /** from the request written to the response head; 0 = none (log follow streams: the kube API sends the head with the first byte) */
  headersTimeoutMs?: number;
  /** body bytes buffered before the socket is paused (default 256 KiB); reading resumes below half */
  highWaterMark?: number;
  /** TCP keepalive: idle time in ms before probes start (0 / absent = off). Bun fixes the probe interval and count. */
  keepAliveMs?: number;
}

export interface RawResponse {
  status: number;
  statusText: string;
  /** lower-case names; repeated headers joined with ", " */
  headers: Map<string, string>;
  /**
   * Next body chunk; null at the clean end of the body. Throws HttpBodyError
   * if the connection ended before the body was complete (chunked without the
   * final 0-chunk, fewer bytes than content-length, a reset) once the bytes
   * received before that were read; throws the abort reason (AbortError) on
   * abort and after close() of an unfinished body.
   */
  read(): Promise<Uint8Array | null>;
  /** The whole body as text (small JSON responses / error bodies); over `limit` bytes (default 4 MiB) is an HttpBodyError. */
  text(limit?: number): Promise<string>;
  /** Closes the connection (idempotent). Call it when not reading to the end. */
  close(): void;
  /** Bytes of body read so far. */
  readonly bodyBytes: number;
  /** Body bytes received and not read yet. */
  readonly bufferedBytes: number;
}

const DEFAULT_HIGH_WATER_MARK = 256 * 1024;
const DEFAULT_TEXT_LIMIT = 4 * 1024 * 1024;
/** read() joins queued chunks smaller than this (many tiny HTTP chunks, one line each) … */
const COALESCE_BELOW = 16 * 1024;
/** … into one of at most this size */
const COALESCE_MAX = 64 * 1024;

function bunTls(t: TlsSettings | undefined, serverName?: string): TLSOptions {
  const out: TLSOptions = { rejectUnauthorized: t?.rejectUnauthorized !== false };
  if (t?.ca !== undefined) out.ca = t.ca;
  if (t?.cert !== undefined) out.cert = t.cert;
  if (t?.key !== undefined) out.key = t.key;
  const name = t?.serverName ?? serverName;
  if (name !== undefined) out.serverName = name;
  return out;
}

/* ------------------------------------------------------------------ */
/* sockets                                                            */

interface SockData {
  ex: Exchange;
}

type Sock = Socket<SockData>;

/**
 * Handlers for the socket from Bun.connect (to the target or the proxy),
 * shared by all connections (Bun's recommended pattern: no closures per socket).
 */
const mainHandlers: SocketHandler<SockData> = {
  open(s) {
    s.data.ex.mainOpen(s);
  },
  handshake(s, ok, err) {
    s.data.ex.mainHandshake(s, ok, err);
  },
  data(s, d) {
    s.data.ex.mainData(d);
  },
  drain(s) {
    s.data.ex.drain();
  },
  end(s) {
    s.data.ex.mainEof(null);
  },
  close(s, err) {
    s.data.ex.mainEof(err ?? null);
  },
  error(s, err) {
    s.data.ex.mainEof(err);
  },
  connectError(s, err) {
    s.data.ex.connectFailed(err);
  },
};

/** Handlers for the TLS socket upgradeTLS() makes over a plain proxy tunnel. */
const tunnelHandlers: SocketHandler<SockData> = {
  handshake(s, ok, err) {
    s.data.ex.tunnelHandshake(s, ok, err);
  },
  data(s, d) {
    s.data.ex.wireData(d);
  },
  drain(s) {
    s.data.ex.drain();
  },
  end(s) {
    s.data.ex.wireEof(null);
  },
  close(s, err) {
    s.data.ex.wireEof(err ?? null);
  },
  error(s, err) {
    s.data.ex.wireEof(err);
  },
};

/** A TLS alert or OpenSSL error (e.g. the server refused our client certificate after the handshake). */
const TLS_FAILURE = /SSL routines|TLSV1_ALERT|certificate/i;

type Phase =
  /** TCP connect (and TLS handshake) to the target or the proxy */
  | "connecting"
  /** CONNECT sent, waiting for the proxy's answer */
  | "proxy-connect"
  /** TLS handshake with the target through the tunnel */
  | "tunnel-tls"
  /** request sent, waiting for the response head */
  | "head"
  | "body"
  /** body complete, failed, aborted or closed: no more socket work */
  | "finished";

interface Reader {
  resolve(chunk: Uint8Array | null): void;
  reject(err: Error): void;
}

/** One request on one connection, from connect to the last body byte. */
class Exchange {
  private phase: Phase = "connecting";
  private settled = false;
  private resolveRequest!: (r: RawResponse) => void;
  private rejectRequest!: (e: Error) => void;
  readonly promise: Promise<RawResponse>;

  private readonly target: string;
  private readonly proxy: ProxySettings | undefined;
  /** TLS on the Bun.connect socket (to the target, or to an https proxy) */
  private readonly mainTls: TlsSettings | null;
  private readonly targetHttps: boolean;
  private readonly hwm: number;
  private readonly keepAliveMs: number;

  private main: Sock | null = null;
  private tunnelSock: Sock | null = null;
  private nodeTunnel: NodeTlsTunnel | null = null;
  /** where the request goes and the response comes from */
  private wire: Wire | null = null;
  /** request bytes the socket has not taken yet, and that socket */
  private pendingOut: Uint8Array | null = null;
  private outTarget: Wire | null = null;

  private headParser = new HeadParser();
  private decoder: BodyDecoder | null = null;
  private readonly emit = (d: Uint8Array): void => this.enqueue(d);

  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private headersTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly onAbort = (): void => this.abort(abortError(this.opts.signal));
  private signalAttached = false;

  // body queue
  private chunks: Uint8Array[] = [];
  private chunkHead = 0;
  buffered = 0;
  bodyBytes = 0;
  private bodyDone = false;
  private bodyError: Error | null = null;
  private readers: Reader[] = [];
  private paused = false;

  constructor(private readonly opts: RequestOptions) {
    this.promise = new Promise<RawResponse>((resolve, reject) => {
      this.resolveRequest = resolve;
      this.rejectRequest = reject;
    });
    const url = opts.url;
    this.targetHttps = url.protocol === "https:";
    this.proxy = opts.unix ? undefined : opts.proxy;
    this.target = opts.unix ? `unix:${opts.unix} (${url.host})` : url.host;
    this.mainTls = this.proxy
      ? this.proxy.url.protocol === "https:"
        ? (this.proxy.tls ?? {})
        : null
      : this.targetHttps
        ? (opts.tls ?? {})
        : null;
    this.hwm = opts.highWaterMark && opts.highWaterMark > 0 ? opts.highWaterMark : DEFAULT_HIGH_WATER_MARK;
    this.keepAliveMs = opts.keepAliveMs ?? 0;
  }

  start(): void {
    const { opts } = this;
    const signal = opts.signal;
    if (signal) {
      signal.addEventListener("abort", this.onAbort, { once: true });
      this.signalAttached = true;
    }
    if (opts.connectTimeoutMs && opts.connectTimeoutMs > 0) {
      const ms = opts.connectTimeoutMs;
      this.connectTimer = setTimeout(() => {
        this.fail(new HttpConnectError(`${this.describePhase()} timed out after ${ms} ms`, { kind: "connect-timeout" }));
      }, ms);
    }
    const data: SockData = { ex: this };
    // over a Unix socket Bun has no host name to verify the certificate against
    const tls = this.mainTls ? bunTls(this.mainTls, opts.unix ? bareHost(opts.url) : undefined) : undefined;
    let pending: Promise<Sock>;
    try {
      if (opts.unix) {
        pending = Bun.connect<SockData>({ unix: opts.unix, tls, data, socket: mainHandlers });
      } else {
        const at = this.proxy ? this.proxy.url : opts.url;
        pending = Bun.connect<SockData>({ hostname: bareHost(at), port: portOf(at), tls, data, socket: mainHandlers });
      }
    } catch (err) {
      this.connectFailed(err);
      return;
    }
    // connectError reports failures; this only ends a socket that opened after we gave up
    pending.then(
      (s) => {
        if (this.phase === "finished") safeTerminate(s);
      },
      () => {},
    );
  }

  private describePhase(): string {
    const to = this.proxy ? `proxy ${this.proxy.url.host}` : this.target;
    switch (this.phase) {
      case "connecting":
        return this.mainTls ? `connect (TCP + TLS) to ${to}` : `connect to ${to}`;
      case "proxy-connect":
        return `CONNECT to ${this.target} via ${to}`;
      case "tunnel-tls":
        return `TLS handshake with ${this.target} via ${to}`;
      default:
        return `request to ${this.target}`;
    }
  }

  /* ---------------- connection set-up ---------------- */

  connectFailed(err: unknown): void {
    const to = this.proxy ? `proxy ${this.proxy.url.host}` : this.target;
    const code = errorCode(err);
    this.fail(new HttpConnectError(`connect to ${to} failed: ${errorMessage(err)}${withCode(code)}`, { kind: "connect", code, cause: err }));
  }

  mainOpen(s: Sock): void {
    if (this.phase === "finished") {
      safeTerminate(s);
      return;
    }
    this.main = s;
    if (this.keepAliveMs > 0 && !this.opts.unix) s.setKeepAlive(true, this.keepAliveMs);
    // a TLS socket is not writable before its handshake (write() returns 0): wait for it
    if (!this.mainTls) this.mainReady(s);
  }

  mainHandshake(s: Sock, ok: boolean, err: Error | null): void {
    if (this.phase !== "connecting") return;
    this.main = s;
    const name = this.proxy ? `proxy ${this.proxy.url.host}` : this.target;
    if (this.verifyFailed(ok, err, this.mainTls, name)) return;
    this.mainReady(s);
  }

  /** true (and the request failed) when the peer's certificate must be refused */
  private verifyFailed(ok: boolean, err: Error | null, settings: TlsSettings | null, name: string): boolean {
    if (ok && (err === null || settings?.rejectUnauthorized === false)) return false;
    const reason = err ? errorMessage(err) : "handshake failed";
    const code = errorCode(err);
    this.fail(
      new HttpConnectError(`TLS handshake with ${name} failed: ${reason}${withCode(code)}`, {
        kind: "tls",
        code,
        cause: err ?? undefined,
      }),
    );
    return true;
  }

  private mainReady(s: Sock): void {
    if (this.proxy && this.targetHttps) {
      this.phase = "proxy-connect";
      this.headParser = new HeadParser();
      this.send(s, buildConnect(this.opts.url, this.proxy));
      return;
    }
    this.startRequest(s);
  }

  /** the proxy's answer to CONNECT */
  private connectResponse(d: Uint8Array): void {
    let res;
    try {
      res = this.headParser.push(d);
    } catch (err) {
      this.fail(new HttpConnectError(`bad CONNECT response from proxy ${this.proxy?.url.host}: ${errorMessage(err)}`, { kind: "proxy", cause: err }));
      return;
    }
    if (!res) return;
    const { status, statusText } = res.head;
    if (status < 200 || status > 299) {
      this.fail(
        new HttpConnectError(`proxy ${this.proxy?.url.host} refused CONNECT ${this.target}: ${status} ${statusText}`.trim(), {
          kind: "proxy",
          status,
        }),
      );
      return;
    }
    if (res.rest.length > 0) {
      // the target speaks only after our ClientHello: anything here is the proxy's
      this.fail(new HttpConnectError(`proxy ${this.proxy?.url.host} sent data after its CONNECT response`, { kind: "proxy" }));
      return;
    }
    this.phase = "tunnel-tls";
    const main = this.main;
    if (!main) return;
    const settings = this.opts.tls ?? {};
    const host = bareHost(this.opts.url);
    if (this.mainTls) {
      // TLS in TLS: upgradeTLS() cannot wrap a TLS socket, see tunnel.ts
      const options: nodeTls.ConnectionOptions = {
        host,
        rejectUnauthorized: settings.rejectUnauthorized !== false,
      };
      if (settings.ca !== undefined) options.ca = settings.ca;
      if (settings.cert !== undefined) options.cert = settings.cert;
      if (settings.key !== undefined) options.key = settings.key;
      // SNI must not be an IP address (RFC 6066); node then verifies against `host`
      const sni = settings.serverName ?? (ipVersion(host) !== 0 ? undefined : host);
      if (sni !== undefined) options.servername = sni;
      // Loaded on first use: node:tls and node:stream add several ms to every start.
      import("./tunnel.ts").then(
        ({ NodeTlsTunnel: Tunnel }) => {
          if (this.phase !== "tunnel-tls" || this.main !== main) return; // closed meanwhile
          let tunnel: NodeTlsTunnel;
          try {
            tunnel = new Tunnel(main, options, {
              secure: () => {
                if (this.phase === "tunnel-tls") this.startRequest(tunnel);
              },
              data: (chunk) => this.wireData(chunk),
              eof: (err) => this.wireEof(err),
            });
          } catch (err) {
            this.fail(new HttpConnectError(`TLS to ${this.target} via proxy failed: ${errorMessage(err)}`, { kind: "tls", cause: err }));
            return;
          }
          this.nodeTunnel = tunnel;
        },
        (err: unknown) => this.fail(new HttpConnectError(`TLS to ${this.target} via proxy failed: ${errorMessage(err)}`, { kind: "tls", cause: err })),
      );
      return;
    }
    try {
      // The raw socket keeps its handlers and still sees the ciphertext (ignored in mainData);
      // the returned TLS socket carries the plaintext. serverName must be set: the raw socket's host is the proxy's.
      const pair = main.upgradeTLS<SockData>({ data: { ex: this }, tls: bunTls(settings, host), socket: tunnelHandlers });
      this.tunnelSock = pair[1];
    } catch (err) {
      this.fail(new HttpConnectError(`TLS to ${this.target} via proxy failed: ${errorMessage(err)}`, { kind: "tls", cause: err }));
    }
  }

  tunnelHandshake(s: Sock, ok: boolean, err: Error | null): void {
    if (this.phase !== "tunnel-tls") return;
    this.tunnelSock = s;
    if (this.verifyFailed(ok, err, this.opts.tls ?? null, this.target)) return;
    this.startRequest(s);
  }

  /* ---------------- request ---------------- */

  private startRequest(wire: Wire): void {
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.wire = wire;
    this.phase = "head";
    this.headParser = new HeadParser();
    const ms = this.opts.headersTimeoutMs;
    if (ms && ms > 0) {
      this.headersTimer = setTimeout(() => {
        this.fail(new HttpConnectError(`no response head from ${this.target} within ${ms} ms`, { kind: "headers-timeout" }));
      }, ms);
    }
    const viaHttpProxy = this.proxy && !this.targetHttps ? this.proxy : undefined;
    this.send(wire, buildRequest(this.opts.url, this.opts.headers, viaHttpProxy));
  }

  /** writes, keeping what the socket did not take for its drain */
  private send(to: Wire, bytes: Uint8Array): void {
    this.outTarget = to;
    this.pendingOut = bytes;
    this.drain();
  }

  drain(): void {
    this.nodeTunnel?.outerDrained();
    const out = this.pendingOut;
    const to = this.outTarget;
    if (!out || !to || this.phase === "finished") return;
    const n = to.write(out);
    if (n < 0) {
      this.pendingOut = null;
      this.wireEof(new Error("connection closed while sending the request"));
    } else {
      this.pendingOut = n >= out.length ? null : out.subarray(n);
    }
  }

  /* ---------------- socket events ---------------- */

  mainData(d: Uint8Array): void {
    if (this.phase === "proxy-connect") this.connectResponse(d);
    else if (this.nodeTunnel) this.nodeTunnel.feed(d);
    else if (this.tunnelSock) return; // ciphertext copies of what the TLS socket decrypts
    else this.wireData(d);
  }

  mainEof(err: Error | null): void {
    if (this.nodeTunnel) this.nodeTunnel.outerEnded(err);
    else if (this.tunnelSock) return; // the TLS socket on top reports its own end
    else this.wireEof(err);
  }

  wireData(d: Uint8Array): void {
    if (this.phase === "body") {
      this.feedBody(d);
      return;
    }
    if (this.phase !== "head") return;
    let chunk = d;
    for (;;) {
      let res;
      try {
        res = this.headParser.push(chunk);
      } catch (err) {
        this.fail(new HttpConnectError(`bad response from ${this.target}: ${errorMessage(err)}`, { kind: "protocol", cause: err }));
        return;
      }
      if (!res) return;
      const { head } = res;
      chunk = res.rest;
      if (head.status === 101) {
        this.fail(new HttpConnectError(`unexpected 101 Switching Protocols from ${this.target}`, { kind: "protocol" }));
        return;
      }
      if (head.status < 200) {
        // 1xx informational: the real head follows
        this.headParser = new HeadParser();
        if (chunk.length === 0) return;
        continue;
      }
      this.startBody(head, chunk);
      return;
    }
  }

  private startBody(head: ResponseHead, rest: Uint8Array): void {
    try {
      this.decoder = bodyDecoderFor(head.status, head.headers);
    } catch (err) {
      const e = err instanceof HeadError ? err : new HeadError(errorMessage(err));
      this.fail(new HttpConnectError(`bad response from ${this.target}: ${e.message}`, { kind: "protocol", cause: err }));
      return;
    }
    clearTimeout(this.headersTimer);
    this.headersTimer = undefined;
    this.phase = "body";
    this.settled = true;
    this.resolveRequest(new Response(this, head));
    if (rest.length > 0) this.feedBody(rest);
    else if (this.decoder.complete) this.finishBody();
  }

  private feedBody(d: Uint8Array): void {
    const decoder = this.decoder;
    if (!decoder) return;
    let done: boolean;
    try {
      done = decoder.push(d, this.emit);
    } catch (err) {
      const msg = err instanceof FramingError ? err.message : errorMessage(err);
      this.fail(new HttpBodyError(`bad body from ${this.target}: ${msg}`, "protocol", err));
      return;
    }
    if (done) this.finishBody();
  }

  /** End of the wire (FIN, close, error): the clean end of a close-delimited body, else a failure. */
  wireEof(err: Error | null): void {
    switch (this.phase) {
      case "finished":
        return;
      case "body": {
        const why = err ? null : (this.decoder?.endError() ?? null);
        if (!err && why === null) {
          this.finishBody();
          return;
        }
        const msg = err ? `connection to ${this.target} failed mid-body: ${errorMessage(err)}` : `${why} (${this.target})`;
        this.fail(new HttpBodyError(msg, "truncated", err ?? undefined));
        return;
      }
      case "head": {
        const tlsAlert = err !== null && TLS_FAILURE.test(errorMessage(err));
        const msg = err
          ? `connection to ${this.target} failed before the response head: ${errorMessage(err)}${withCode(errorCode(err))}`
          : `connection to ${this.target} closed before the response head`;
        this.fail(new HttpConnectError(msg, { kind: tlsAlert ? "tls" : "closed", code: errorCode(err), cause: err ?? undefined }));
        return;
      }
      case "proxy-connect": {
        const msg = `proxy ${this.proxy?.url.host} closed the connection before answering CONNECT${err ? `: ${errorMessage(err)}` : ""}`;
        this.fail(new HttpConnectError(msg, { kind: "proxy", code: errorCode(err), cause: err ?? undefined }));
        return;
      }
      case "tunnel-tls":
      case "connecting": {
        const inTls = this.phase === "tunnel-tls" || this.mainTls !== null;
        const code = errorCode(err);
        const msg = `${this.describePhase()} failed: ${err ? errorMessage(err) : "connection closed"}${withCode(code)}`;
        this.fail(new HttpConnectError(msg, { kind: inTls ? "tls" : "connect", code, cause: err ?? undefined }));
        return;
      }
    }
  }

  /* ---------------- body queue ---------------- */

  private enqueue(d: Uint8Array): void {
    const reader = this.readers.shift();
    if (reader) {
      // someone is waiting, so nothing is queued: hand it over directly
      this.bodyBytes += d.length;
      reader.resolve(d);
      return;
    }
    this.chunks.push(d);
    this.buffered += d.length;
    if (!this.paused && this.buffered > this.hwm && this.phase === "body") {
      this.paused = true;
      this.wire?.pause();
    }
  }

  read(): Promise<Uint8Array | null> {
    if (this.chunkHead < this.chunks.length) return Promise.resolve(this.take());
    if (this.bodyError) {
      this.detachSignal();
      return Promise.reject(this.bodyError);
    }
    if (this.bodyDone) {
      this.detachSignal();
      return Promise.resolve(null);
    }
    return new Promise((resolve, reject) => this.readers.push({ resolve, reject }));
  }

  /** the next queued chunk, small neighbours joined into one */
  private take(): Uint8Array {
    const first = this.chunks[this.chunkHead] as Uint8Array;
    let end = this.chunkHead + 1;
    let size = first.length;
    if (first.length < COALESCE_BELOW) {
      while (end < this.chunks.length) {
        const next = (this.chunks[end] as Uint8Array).length;
        if (size + next > COALESCE_MAX) break;
        size += next;
        end++;
      }
    }
    let out: Uint8Array;
    if (end === this.chunkHead + 1) {
      out = first;
    } else {
      // Every byte is written below: no zero-fill (Buffer.allocUnsafe, a plain Uint8Array to callers).
      out = Buffer.allocUnsafe(size);
      let o = 0;
      for (let k = this.chunkHead; k < end; k++) {
        const c = this.chunks[k] as Uint8Array;
        out.set(c, o);
        o += c.length;
      }
    }
    for (let k = this.chunkHead; k < end; k++) this.chunks[k] = EMPTY; // let the socket reads go
    this.chunkHead = dropConsumed(this.chunks, end);
    this.buffered -= size;
    this.bodyBytes += size;
    if (this.paused && this.buffered <= this.hwm / 2) {
      this.paused = false;
      if (this.phase === "body") this.wire?.resume();
    }
    return out;
  }

  private clearQueue(): void {
    this.chunks = [];
    this.chunkHead = 0;
    this.buffered = 0;
  }

  /** wakes waiting readers at the end of the body (only when the queue is empty, which waiting implies) */
  private wakeReaders(): void {
    const readers = this.readers;
    this.readers = [];
    for (const r of readers) {
      if (this.bodyError) r.reject(this.bodyError);
      else r.resolve(null);
    }
    if (readers.length > 0) this.detachSignal();
  }

  /* ---------------- endings ---------------- */

  private finishBody(): void {
    if (this.phase === "finished") return;
    this.phase = "finished";
    this.bodyDone = true;
    this.clearTimers();
    this.wakeReaders();
    // The whole body is here: close gently. Bun closes a client socket at end() (its close handler runs inside it).
    const wire = this.wire;
    try {
      wire?.end();
      if (this.main && wire !== this.main) this.main.end();
    } catch {
      this.destroySockets();
    }
  }

  /** Request failure (reject) or body failure (read() throws after the queued bytes). */
  private fail(err: Error): void {
    if (this.phase === "finished") return;
    this.phase = "finished";
    this.clearTimers();
    if (!this.settled) {
      this.settled = true;
      this.detachSignal();
      this.rejectRequest(err);
    } else {
      this.bodyError = err;
      if (this.chunkHead >= this.chunks.length) this.wakeReaders();
    }
    this.destroySockets();
  }

  abort(err: Error): void {
    if (this.phase === "finished") {
      // the body is complete but maybe not read yet: an abort still ends it
      if (this.bodyDone && !this.bodyError && this.chunkHead < this.chunks.length) {
        this.clearQueue();
        this.bodyError = err;
      }
      this.detachSignal();
      return;
    }
    this.clearQueue();
    this.fail(err);
  }

  /** RawResponse.close() */
  close(): void {
    this.detachSignal();
    if (this.phase === "finished") {
      if (this.chunkHead < this.chunks.length && !this.bodyError) {
        this.clearQueue();
        this.bodyError = new DOMException("response closed", "AbortError");
      }
      return;
    }
    this.clearQueue();
    this.fail(new DOMException("response closed", "AbortError"));
  }

  private clearTimers(): void {
    clearTimeout(this.connectTimer);
    clearTimeout(this.headersTimer);
    this.connectTimer = undefined;
    this.headersTimer = undefined;
  }

  private detachSignal(): void {
    if (!this.signalAttached) return;
    this.signalAttached = false;
    this.opts.signal?.removeEventListener("abort", this.onAbort);
  }

  private destroySockets(): void {
    this.pendingOut = null;
    if (this.nodeTunnel) {
      try {
        this.nodeTunnel.terminate();
      } catch {
        // already gone
      }
    }
    if (this.tunnelSock) safeTerminate(this.tunnelSock);
    if (this.main) safeTerminate(this.main);
  }
}

const EMPTY = new Uint8Array(0);

function withCode(code: string | undefined): string {
  return code ? ` (${code})` : "";
}

function safeTerminate(s: Sock): void {
  try {
    s.terminate();
  } catch {
    // already closed
  }
}

class Response implements RawResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: Map<string, string>;

  constructor(
    private readonly ex: Exchange,
    head: ResponseHead,
  ) {
    this.status = head.status;
    this.statusText = head.statusText;
    this.headers = head.headers;
  }

  read(): Promise<Uint8Array | null> {
    return this.ex.read();
  }

  async text(limit = DEFAULT_TEXT_LIMIT): Promise<string> {
    const parts: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const chunk = await this.ex.read();
      if (chunk === null) break;
      total += chunk.length;
      if (total > limit) {
        this.close();
        throw new HttpBodyError(`response body larger than ${limit} bytes`, "too-large");
      }
      parts.push(chunk);
    }
    return Buffer.concat(parts, total).toString("utf8");
  }

  close(): void {
    this.ex.close();
  }

  get bodyBytes(): number {
    return this.ex.bodyBytes;
  }

  get bufferedBytes(): number {
    return this.ex.buffered;
  }
}

/**
 * GET `opts.url` on a new connection (`Connection: close`). Resolves once the
 * response head is parsed (any status; 1xx skipped); rejects with
 * HttpConnectError, a TypeError for bad options, or the abort reason.
 */
export function request(opts: RequestOptions): Promise<RawResponse> {
  if (opts.signal?.aborted) return Promise.reject(abortError(opts.signal));
  const { url } = opts;
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return Promise.reject(new TypeError(`unsupported protocol ${url.protocol} (http: or https: only)`));
  }
  const proxy = opts.unix ? undefined : opts.proxy;
  if (proxy && proxy.url.protocol !== "http:" && proxy.url.protocol !== "https:") {
    return Promise.reject(new TypeError(`unsupported proxy protocol ${proxy.url.protocol} (http: or https: only)`));
  }
  try {
    // validate headers now, so a bad one fails before anything connects
    buildRequest(url, opts.headers, proxy && url.protocol === "http:" ? proxy : undefined);
    if (proxy) buildConnect(url, proxy);
  } catch (err) {
    return Promise.reject(err);
  }
  const ex = new Exchange(opts);
  ex.start();
  return ex.promise;
}
