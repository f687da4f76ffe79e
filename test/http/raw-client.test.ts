import { afterAll, describe, expect, test } from "bun:test";
import type { Socket, TCPSocketListener, TLSOptions } from "bun";
import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bodyDecoderFor, FramingError } from "../../src/http/body.ts";
import { HeadError, HeadParser, MAX_HEAD_BYTES } from "../../src/http/head.ts";
import {
  HttpBodyError,
  HttpConnectError,
  type RawResponse,
  type RequestOptions,
  request,
} from "../../src/http/raw-client.ts";
import { buildConnect, buildRequest } from "../../src/http/request-head.ts";
import { type ConnectProxy, startConnectProxy } from "../../test/fixtures/connect-proxy.ts";
import { bodyScript, linesScript, startFakeVigild, type Script } from "../../test/fixtures/fake-vigild.ts";
import { expectedLines } from "../../test/fixtures/lines.ts";
import { makePki } from "../../test/fixtures/tls.ts";

const pki = makePki();
const enc = new TextEncoder();
const dec = new TextDecoder();

let unhandled = 0;
process.on("unhandledRejection", () => {
  unhandled++;
});

/* ------------------------------------------------------------------ */
/* helpers                                                            */

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function readAll(r: RawResponse): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (;;) {
    const c = await r.read();
    if (c === null) break;
    parts.push(c);
  }
  return Buffer.concat(parts);
}

/** Reads until the body fails; returns what came first and the error. */
async function readUntilError(r: RawResponse): Promise<{ text: string; error: unknown }> {
  const parts: Uint8Array[] = [];
  for (;;) {
    try {
      const c = await r.read();
      if (c === null) return { text: Buffer.concat(parts).toString(), error: null };
      parts.push(c);
    } catch (error) {
      return { text: Buffer.concat(parts).toString(), error };
    }
  }
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected a rejection");
}

function expectConnectError(err: unknown, kind: HttpConnectError["kind"]): HttpConnectError {
  expect(err).toBeInstanceOf(HttpConnectError);
  const e = err as HttpConnectError;
  if (e.kind !== kind) throw new Error(`expected kind ${kind}, got ${e.kind}: ${e.message}`);
  return e;
}

function expectAbort(err: unknown): void {
  expect(err).toBeInstanceOf(Error);
  expect((err as Error).name).toBe("AbortError");
}

interface RawConn {
  socket: Socket<RawState>;
  /** the request head, "" until it is complete (a plain server given TLS bytes never completes one) */
  head: string;
  bytesIn: number;
  closed: boolean;
  whenClosed: Promise<void>;
  /** the client certificate's CN (TLS servers with requestCert) */
  peerCN?: string;
}

interface RawState {
  conn: RawConn;
  buf: string;
  closed: () => void;
}

interface RawServer {
  port: number;
  url: string;
  conns: RawConn[];
  /** connections open now */
  readonly open: number;
  /** the next connection whose request head is complete (queue cursor) */
  nextRequest(): Promise<RawConn>;
  waitForConnection(n?: number): Promise<void>;
  /** resolves once every accepted connection has closed */
  allClosed(): Promise<void>;
  stop(): void;
}

/**
 * A server with full control of the response bytes: onRequest gets the
 * connection once the request head is in. Without onRequest it never answers
 * (and a plain one handed TLS bytes never completes a head: a server that
 * never finishes the handshake).
 */
function startRawServer(opts: { tls?: TLSOptions; host?: string; onRequest?: (c: RawConn) => void } = {}): RawServer {
  const conns: RawConn[] = [];
  let cursor = 0;
  let waiters: Array<() => void> = [];
  const wake = (): void => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const listener: TCPSocketListener<RawState> = Bun.listen<RawState>({
    hostname: opts.host ?? "127.0.0.1",
    port: 0,
    tls: opts.tls,
    socket: {
      open(s) {
        let closed!: () => void;
        const whenClosed = new Promise<void>((resolve) => {
          closed = resolve;
        });
        const conn: RawConn = { socket: s, head: "", bytesIn: 0, closed: false, whenClosed };
        s.data = { conn, buf: "", closed };
        conns.push(conn);
        wake();
      },
      handshake(s) {
        const cert = s.getPeerCertificate() as { subject?: { CN?: string } } | null;
        s.data.conn.peerCN = cert?.subject?.CN;
      },
      data(s, d) {
        const st = s.data;
        st.conn.bytesIn += d.length;
        if (st.conn.head) return;
        st.buf += d.toString("latin1");
        const end = st.buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        st.conn.head = st.buf.slice(0, end + 4);
        wake();
        opts.onRequest?.(st.conn);
      },
      close(s) {
        s.data.conn.closed = true;
        s.data.closed();
        wake();
      },
      error() {},
    },
  });
  const port = listener.port;
  const host = opts.host ?? "127.0.0.1";
  const waitFor = (cond: () => boolean, what: string): Promise<void> =>
    withTimeout(
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (cond()) resolve();
          else waiters.push(check);
        };
        check();
      }),
      5000,
      what,
    );
  return {
    port,
    url: `${opts.tls ? "https" : "http"}://${host.includes(":") ? `[${host}]` : host}:${port}`,
    conns,
    get open() {
      return conns.filter((c) => !c.closed).length;
    },
    async nextRequest() {
      await waitFor(() => conns.slice(cursor).some((c) => c.head !== ""), "raw server: no request");
      const c = conns.slice(cursor).find((x) => x.head !== "") as RawConn;
      cursor = conns.indexOf(c) + 1;
      return c;
    },
    waitForConnection(n = 1) {
      return waitFor(() => conns.length >= n, `raw server: ${conns.length} connections, wanted ${n}`);
    },
    allClosed() {
      return waitFor(() => conns.every((c) => c.closed), "raw server: connections still open");
    },
    stop() {
      listener.stop(true);
    },
  };
}

/** A server answering every request with these exact bytes (then `after`). */
function rawResponder(bytes: string | Uint8Array, after: "end" | "keep" | "reset" = "end", tls?: TLSOptions): RawServer {
  return startRawServer({
    tls,
    onRequest(c) {
      const data = typeof bytes === "string" ? enc.encode(bytes) : bytes;
      if (after === "end") c.socket.end(data); // the last bytes and the FIN in one go
      else c.socket.write(data);
      if (after === "reset") c.socket.terminate();
    },
  });
}

/** writes one byte per event loop turn (socket reads as small as they get) */
async function dribble(s: Socket<RawState>, text: string): Promise<void> {
  const bytes = enc.encode(text);
  s.setNoDelay(true);
  for (let i = 0; i < bytes.length; i++) {
    s.write(bytes.subarray(i, i + 1));
    await turn();
  }
}

const serverTls: TLSOptions = { cert: pki.certPem, key: pki.keyPem };
const clientTls = { ca: pki.caPem };

/* ------------------------------------------------------------------ */
/* request head                                                       */

describe("request head", () => {
  const text = (b: Uint8Array): string => dec.decode(b);

  test("origin form, Host without the default port, Connection: close, identity, user headers", () => {
    expect(text(buildRequest(new URL("http://example.com/a/b?x=1&y=%20#frag"), { Authorization: "Bearer t", "X-A": "1" }))).toBe(
      "GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: example.com\r\nAccept-Encoding: identity\r\nAuthorization: Bearer t\r\nX-A: 1\r\nConnection: close\r\n\r\n",
    );
    expect(text(buildRequest(new URL("https://example.com:443"), undefined))).toStartWith("GET / HTTP/1.1\r\nHost: example.com\r\n");
    expect(text(buildRequest(new URL("https://example.com:8443/x"), undefined))).toContain("\r\nHost: example.com:8443\r\n");
    expect(text(buildRequest(new URL("http://[::1]:8080/x"), undefined))).toContain("\r\nHost: [::1]:8080\r\n");
    expect(text(buildRequest(new URL("http://[fe80::1]/"), undefined))).toContain("\r\nHost: [fe80::1]\r\n");
  });

  test("the caller's Host and Accept-Encoding win; Connection stays close", () => {
    const h = text(buildRequest(new URL("http://a/"), { host: "b:1", "Accept-Encoding": "gzip", Connection: "keep-alive" }));
    expect(h).not.toContain("Host: a");
    expect(h).toContain("host: b:1\r\n");
    expect(h).toContain("Accept-Encoding: gzip\r\n");
    expect(h).not.toContain("identity");
    expect(h).not.toContain("keep-alive");
    expect(h).toContain("Connection: close\r\n");
  });

  test("header injection is refused", () => {
    expect(() => buildRequest(new URL("http://a/"), { "X-A": "1\r\nX-B: 2" })).toThrow(TypeError);
    expect(() => buildRequest(new URL("http://a/"), { "X A": "1" })).toThrow(TypeError);
    expect(() => buildRequest(new URL("http://a/"), { "": "1" })).toThrow(TypeError);
  });

  test("absolute form to an http proxy, Basic auth from the proxy URL (percent-decoded)", () => {
    const h = text(buildRequest(new URL("http://t.example:8080/p?q"), undefined, { url: new URL("http://us%40er:p%3Ass@proxy:3128") }));
    expect(h).toStartWith("GET http://t.example:8080/p?q HTTP/1.1\r\nHost: t.example:8080\r\n");
    expect(h).toContain(`Proxy-Authorization: Basic ${Buffer.from("us@er:p:ss").toString("base64")}\r\n`);
    const h2 = text(
      buildRequest(new URL("http://t/"), undefined, { url: new URL("http://u:p@proxy"), headers: { "Proxy-Authorization": "Bearer x" } }),
    );
    expect(h2).toContain("Proxy-Authorization: Bearer x\r\n");
    expect(h2).not.toContain("Basic");
  });

  test("CONNECT authority: default port, IPv6 in brackets", () => {
    expect(text(buildConnect(new URL("https://k8s.example/api"), { url: new URL("http://p") }))).toBe(
      "CONNECT k8s.example:443 HTTP/1.1\r\nHost: k8s.example:443\r\n\r\n",
    );
    expect(text(buildConnect(new URL("https://[::1]:6443/"), { url: new URL("http://p") }))).toStartWith("CONNECT [::1]:6443 HTTP/1.1\r\n");
  });

  test("on the wire", async () => {
    const srv = rawResponder("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", "keep");
    try {
      const r = await request({ url: new URL(`${srv.url}/v1/logs?follow=true`), headers: { "X-Test": "yes" } });
      expect(r.status).toBe(200);
      expect(await r.read()).toBeNull();
      const c = await srv.nextRequest();
      expect(c.head).toBe(
        `GET /v1/logs?follow=true HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\nAccept-Encoding: identity\r\nX-Test: yes\r\nConnection: close\r\n\r\n`,
      );
      await srv.allClosed(); // a complete body closes the connection
    } finally {
      srv.stop();
    }
  });

  test("IPv6 target: bare address to connect, brackets in Host", async () => {
    const srv = startFakeVigild({ host: "::1", handler: () => bodyScript("six\n") });
    try {
      const r = await request({ url: new URL(`${srv.url}/x`) });
      expect(dec.decode(await readAll(r))).toBe("six\n");
      expect(srv.requests[0]?.headers.get("host")).toBe(`[::1]:${srv.port}`);
    } finally {
      await srv.stop();
    }
  });

  test("bad options reject without connecting", async () => {
    expect(await rejection(request({ url: new URL("ftp://x/") }))).toBeInstanceOf(TypeError);
    expect(await rejection(request({ url: new URL("http://x/"), proxy: { url: new URL("socks5://p:1") } }))).toBeInstanceOf(TypeError);
    expect(await rejection(request({ url: new URL("http://x/"), headers: { "a\n": "b" } }))).toBeInstanceOf(TypeError);
  });
});

/* ------------------------------------------------------------------ */
/* parsers                                                            */

describe("response head parser", () => {
  const HEAD =
    "HTTP/1.1 200 Very  OK \r\n" +
    "Content-Type:\ttext/plain \r\n" +
    "X-Folded: first\r\n" +
    "  second\r\n" +
    "\tthird\r\n" +
    "Set-Cookie: a=1\r\n" +
    "set-cookie: b=2\r\n" +
    "X-Bare-LF: yes\n" +
    "X-Empty:\r\n" +
    "X-Spaces :   v  \r\n" +
    "\r\n";
  const BODY = "body-bytes";

  function check(res: ReturnType<HeadParser["push"]>): void {
    if (!res) throw new Error("no head");
    expect(res.head.status).toBe(200);
    expect(res.head.statusText).toBe("Very  OK");
    expect(res.head.version).toEqual([1, 1]);
    const h = res.head.headers;
    expect(h.get("content-type")).toBe("text/plain");
    expect(h.get("x-folded")).toBe("first second third");
    expect(h.get("set-cookie")).toBe("a=1, b=2");
    expect(h.get("x-bare-lf")).toBe("yes");
    expect(h.get("x-empty")).toBe("");
    expect(h.get("x-spaces")).toBe("v");
  }

  test("the same head whatever the split: every position, and byte by byte", () => {
    const all = enc.encode(HEAD + BODY);
    for (let cut = 0; cut <= all.length; cut++) {
      const p = new HeadParser();
      let res = p.push(all.slice(0, cut));
      let rest: string;
      if (res) {
        // only possible once the whole head is in
        expect(cut).toBeGreaterThanOrEqual(HEAD.length);
        rest = dec.decode(res.rest) + dec.decode(all.slice(cut));
      } else {
        res = p.push(all.slice(cut));
        rest = dec.decode(res?.rest);
      }
      check(res);
      expect(rest).toBe(BODY);
    }
    const p = new HeadParser();
    let res: ReturnType<HeadParser["push"]> = null;
    for (let i = 0; i < HEAD.length && !res; i++) res = p.push(all.slice(i, i + 1));
    check(res);
  });

  test("HTTP/1.0, no reason phrase, bare LF line ends, blank lines before the status line", () => {
    const p = new HeadParser();
    const res = p.push(enc.encode("\r\n\nHTTP/1.0 404\nA: b\n\nrest"));
    expect(res?.head.status).toBe(404);
    expect(res?.head.statusText).toBe("");
    expect(res?.head.version).toEqual([1, 0]);
    expect(res?.head.headers.get("a")).toBe("b");
    expect(dec.decode(res?.rest)).toBe("rest");
  });

  test("malformed heads", () => {
    for (const bad of ["HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n", "SSH-2.0-OpenSSH\r\n\r\n", "HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "HTTP/1.1 200 OK\r\n: v\r\n\r\n"]) {
      expect(() => new HeadParser().push(enc.encode(bad))).toThrow(HeadError);
    }
  });

  test("a head over 64 KiB is an error, fed in pieces or at once", () => {
    const line = `X-Pad: ${"p".repeat(1000)}\r\n`;
    const p = new HeadParser();
    expect(p.push(enc.encode("HTTP/1.1 200 OK\r\n"))).toBeNull();
    let threw = false;
    for (let i = 0; i < 100 && !threw; i++) {
      try {
        p.push(enc.encode(line));
      } catch (err) {
        expect(err).toBeInstanceOf(HeadError);
        threw = true;
        expect(p.buffered).toBeGreaterThan(MAX_HEAD_BYTES);
      }
    }
    expect(threw).toBe(true);
    expect(() => new HeadParser().push(enc.encode(`HTTP/1.1 200 OK\r\n${line.repeat(70)}\r\n`))).toThrow(HeadError);
    // just under the limit is fine
    const ok = `HTTP/1.1 200 OK\r\n${line.repeat(60)}\r\n`;
    expect(new HeadParser().push(enc.encode(ok))?.head.headers.get("x-pad")?.length).toBeGreaterThan(1000);
  });
});

describe("body decoders", () => {
  const headers = (h: Record<string, string>): Map<string, string> => new Map(Object.entries(h));

  function decodeAll(framing: Record<string, string>, parts: Uint8Array[]): { body: string; complete: boolean; views: boolean } {
    const d = bodyDecoderFor(200, headers(framing));
    const out: Uint8Array[] = [];
    let views = true;
    for (const p of parts) {
      d.push(p, (x) => {
        if (x.buffer !== p.buffer) views = false;
        out.push(x);
      });
    }
    return { body: dec.decode(Buffer.concat(out)), complete: d.complete, views };
  }

  const CHUNKED =
    "5;name=value;q=\"a;b\"\r\nhello\r\n" +
    "1A\r\n" + "abcdefghijklmnopqrstuvwxyz\r\n" +
    "1a \t; ext\r\n" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n" +
    "00003\r\nxyz\r\n" +
    "0;last\r\n" +
    "Trailer-One: 1\r\n" +
    "Trailer-Two: 2\r\n" +
    "\r\n";
  const EXPECT = "helloabcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZxyz";

  test("chunked: extensions, trailers, hex in any case, split at every position; data as views", () => {
    const all = enc.encode(`${CHUNKED}IGNORED`);
    for (let cut = 0; cut <= all.length; cut++) {
      const r = decodeAll({ "transfer-encoding": "chunked" }, [all.slice(0, cut), all.slice(cut)]);
      expect(r.body).toBe(EXPECT);
      expect(r.complete).toBe(true);
      expect(r.views).toBe(true);
    }
    // and every pair of cuts (three reads)
    for (let a = 0; a <= all.length; a += 3) {
      for (let b = a; b <= all.length; b += 2) {
        const r = decodeAll({ "transfer-encoding": "chunked" }, [all.slice(0, a), all.slice(a, b), all.slice(b)]);
        expect(r.body).toBe(EXPECT);
      }
    }
    const bytes: Uint8Array[] = [];
    for (let i = 0; i < all.length; i++) bytes.push(all.slice(i, i + 1));
    expect(decodeAll({ "transfer-encoding": "chunked" }, bytes).body).toBe(EXPECT);
  });

  test("chunked: bare LF, incomplete bodies, bad framing", () => {
    expect(decodeAll({ "transfer-encoding": "chunked" }, [enc.encode("3\nabc\n0\n\n")])).toMatchObject({ body: "abc", complete: true });
    for (const [cut, why] of [
      ["3\r\nab", /inside a chunk \(1 bytes missing\)/],
      ["3\r\nabc\r\n", /before the last chunk/],
      ["3\r\nabc\r\n0\r\nTrailer: x", /before the last chunk/],
    ] as const) {
      const d = bodyDecoderFor(200, headers({ "transfer-encoding": "chunked" }));
      d.push(enc.encode(cut), () => {});
      expect(d.complete).toBe(false);
      expect(d.endError()).toMatch(why);
    }
    for (const bad of ["x\r\n", "\r\n", "3\r\nabcd\r\n", "3\r\nabc\rX", "3\rX", "ffffffffffffff\r\n", "0\r\n\rX"]) {
      const d = bodyDecoderFor(200, headers({ "transfer-encoding": "chunked" }));
      expect(() => d.push(enc.encode(bad), () => {})).toThrow(FramingError);
    }
  });

  test("content-length, until-close, no body", () => {
    expect(decodeAll({ "content-length": "5" }, [enc.encode("he"), enc.encode("lloEXTRA")])).toMatchObject({ body: "hello", complete: true, views: true });
    const short = bodyDecoderFor(200, headers({ "content-length": "10" }));
    short.push(enc.encode("abc"), () => {});
    expect(short.endError()).toMatch(/after 3 of 10 body bytes/);
    expect(bodyDecoderFor(200, headers({ "content-length": "5, 5" })).framing).toBe("length");
    expect(() => bodyDecoderFor(200, headers({ "content-length": "5, 6" }))).toThrow(HeadError);
    expect(() => bodyDecoderFor(200, headers({ "content-length": "-1" }))).toThrow(HeadError);
    expect(() => bodyDecoderFor(200, headers({ "content-length": "abc" }))).toThrow(HeadError);
    expect(bodyDecoderFor(200, headers({ "content-length": "0" })).complete).toBe(true);
    // transfer-encoding wins over content-length; a non-chunked last coding ends at the close
    expect(bodyDecoderFor(200, headers({ "transfer-encoding": "gzip, Chunked", "content-length": "3" })).framing).toBe("chunked");
    expect(bodyDecoderFor(200, headers({ "transfer-encoding": "gzip" })).framing).toBe("close");
    const close = bodyDecoderFor(200, headers({}));
    expect(close.framing).toBe("close");
    expect(close.endError()).toBeNull();
    for (const status of [100, 204, 304]) {
      const d = bodyDecoderFor(status, headers({ "content-length": "10", "transfer-encoding": "chunked" }));
      expect(d.complete).toBe(true);
    }
  });
});

/* ------------------------------------------------------------------ */
/* framing over real sockets                                          */

describe("responses over sockets", () => {
  test("1xx responses are skipped", async () => {
    const srv = rawResponder(
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Final: 1\r\n\r\nok",
    );
    try {
      const r = await request({ url: new URL(srv.url) });
      expect(r.status).toBe(200);
      expect(r.headers.get("x-final")).toBe("1");
      expect(r.headers.has("link")).toBe(false);
      expect(await r.text()).toBe("ok");
    } finally {
      srv.stop();
    }
  });

  test("a head and body dribbled one byte per read: HTTP/1.0, folding, odd whitespace, read-until-close", async () => {
    const srv = startRawServer({
      onRequest(c) {
        void dribble(c.socket, "HTTP/1.0 200 OK\r\nContent-Type :  text/plain\t\r\nX-Long: a\r\n b\r\n\r\nline-1\nline-2\n").then(() => c.socket.end());
      },
    });
    try {
      const r = await request({ url: new URL(srv.url) });
      expect(r.status).toBe(200);
      expect(r.statusText).toBe("OK");
      expect(r.headers.get("content-type")).toBe("text/plain");
      expect(r.headers.get("x-long")).toBe("a b");
      expect(await r.text()).toBe("line-1\nline-2\n");
    } finally {
      srv.stop();
    }
  });

  test("chunked body dribbled one byte per read", async () => {
    const srv = startRawServer({
      onRequest(c) {
        void dribble(c.socket, `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${"5;x=y\r\nhello\r\nA\r\n0123456789\r\n0\r\nT: 1\r\n\r\n"}`);
      },
    });
    try {
      const r = await request({ url: new URL(srv.url) });
      expect(await r.text()).toBe("hello0123456789");
      await srv.allClosed(); // we closed after the last chunk, the server did not
    } finally {
      srv.stop();
    }
  });

  test("a head over 64 KiB fails the request and closes the connection", async () => {
    const srv = rawResponder(`HTTP/1.1 200 OK\r\n${`X-Pad: ${"p".repeat(1000)}\r\n`.repeat(80)}\r\n`, "keep");
    try {
      expectConnectError(await rejection(request({ url: new URL(srv.url) })), "protocol");
      await srv.allClosed();
    } finally {
      srv.stop();
    }
  });

  test("204 and 304 have no body even when the server keeps the connection", async () => {
    for (const status of ["204 No Content", "304 Not Modified"]) {
      const srv = rawResponder(`HTTP/1.1 ${status}\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n`, "keep");
      try {
        const r = await request({ url: new URL(srv.url) });
        expect(await r.read()).toBeNull();
        await srv.allClosed();
      } finally {
        srv.stop();
      }
    }
  });

  test("content-length: complete without waiting for the close; short is an HttpBodyError after the bytes", async () => {
    const full = rawResponder("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "keep");
    const short = rawResponder("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhello", "end");
    try {
      expect(await (await request({ url: new URL(full.url) })).text()).toBe("hello");
      const { text, error } = await readUntilError(await request({ url: new URL(short.url) }));
      expect(text).toBe("hello");
      expect(error).toBeInstanceOf(HttpBodyError);
      expect((error as HttpBodyError).kind).toBe("truncated");
      expect((error as Error).message).toMatch(/after 5 of 50/);
    } finally {
      full.stop();
      short.stop();
    }
  });

  test("the last lines arriving together with the close are delivered (read-until-close, plain and TLS)", async () => {
    const lines = `${expectedLines(2000).join("\n")}\n`;
    for (const tls of [undefined, serverTls]) {
      const srv = rawResponder(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n${lines}`, "end", tls);
      try {
        for (let i = 0; i < 20; i++) {
          const r = await request({ url: new URL(srv.url), tls: clientTls });
          expect(dec.decode(await readAll(r))).toBe(lines);
        }
      } finally {
        srv.stop();
      }
    }
  });

  test("the chunked 0-terminator in the same packet as the data (with and without the close)", async () => {
    const resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nlast-1\n\r\n7\r\nlast-2\n\r\n0\r\n\r\n";
    for (const after of ["end", "keep"] as const) {
      const srv = rawResponder(resp, after);
      try {
        for (let i = 0; i < 10; i++) {
          const r = await request({ url: new URL(srv.url) });
          expect(await r.text()).toBe("last-1\nlast-2\n");
        }
        await srv.allClosed();
      } finally {
        srv.stop();
      }
    }
  });

  test("chunked without the last chunk: the lines, then HttpBodyError", async () => {
    const srv = startFakeVigild({ handler: () => ({ steps: [{ lines: 1000 }, { write: "half a li" }, { close: "abort" }] }) });
    try {
      const { text, error } = await readUntilError(await request({ url: new URL(srv.url) }));
      expect(text).toBe(`${expectedLines(1000).join("\n")}\nhalf a li`);
      expect(error).toBeInstanceOf(HttpBodyError);
      expect((error as HttpBodyError).kind).toBe("truncated");
    } finally {
      await srv.stop();
    }
  });

  test("a reset mid-body is an HttpBodyError after the bytes before it (also read-until-close, also TLS)", async () => {
    for (const [framing, tls] of [["chunked", undefined], ["close", undefined], ["close", pki]] as const) {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const srv = startFakeVigild({ tls, handler: () => ({ framing, steps: [{ write: "first\n" }, { waitFor: gate }, { close: "reset" }] }) });
      try {
        const r = await request({ url: new URL(srv.url), tls: clientTls });
        expect(dec.decode((await r.read()) ?? undefined)).toBe("first\n");
        release();
        const err = await rejection(r.read());
        expect(err).toBeInstanceOf(HttpBodyError);
        expect((err as HttpBodyError).kind).toBe("truncated");
        expect(await rejection(r.read())).toBe(err); // stays failed
      } finally {
        await srv.stop();
      }
    }
  });

  test("bad chunked framing is an HttpBodyError (protocol)", async () => {
    const srv = rawResponder("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n", "keep");
    try {
      const { text, error } = await readUntilError(await request({ url: new URL(srv.url) }));
      expect(text).toBe("abc");
      expect((error as HttpBodyError).kind).toBe("protocol");
      await srv.allClosed();
    } finally {
      srv.stop();
    }
  });

  test("closed before the head; malformed head; bad content-length", async () => {
    for (const [resp, kind] of [
      ["", "closed"],
      ["HTTP/1.1 200 OK\r\nX: 1\r\n", "closed"],
      ["garbage\r\n\r\n", "protocol"],
      ["HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n", "protocol"],
      ["HTTP/1.1 101 Switching Protocols\r\n\r\n", "protocol"],
    ] as const) {
      const srv = rawResponder(resp, "end");
      try {
        expectConnectError(await rejection(request({ url: new URL(srv.url) })), kind);
        await srv.allClosed();
      } finally {
        srv.stop();
      }
    }
  });

  test("text(): error bodies, and the limit", async () => {
    const srv = startFakeVigild({ handler: (req) => (req.path === "/big" ? bodyScript("x".repeat(5000)) : { status: 404, steps: [{ write: '{"message":"no"}' }] }) });
    try {
      const r = await request({ url: new URL(srv.url) });
      expect(r.status).toBe(404);
      expect(r.statusText).toBe("Not Found");
      expect(JSON.parse(await r.text())).toEqual({ message: "no" });
      const big = await request({ url: new URL(`${srv.url}/big`) });
      const err = await rejection(big.text(1000));
      expect((err as HttpBodyError).kind).toBe("too-large");
    } finally {
      await srv.stop();
    }
  });

  test("many generated lines, chunked and read-until-close, arrive exactly", async () => {
    for (const framing of ["chunked", "close"] as const) {
      const srv = startFakeVigild({ handler: () => ({ framing, steps: [{ lines: 200_000, chunkLines: 7 }] }) });
      try {
        const r = await request({ url: new URL(srv.url) });
        const body = dec.decode(await readAll(r));
        expect(body).toBe(`${expectedLines(200_000).join("\n")}\n`);
        expect(r.bodyBytes).toBe(body.length);
      } finally {
        await srv.stop();
      }
    }
  });

  test("Unix socket: Host from the URL", async () => {
    const path = join(tmpdir(), `raw-client-${process.pid}.sock`);
    const srv = startFakeVigild({ unix: path, handler: () => linesScript(10) });
    try {
      const r = await request({ url: new URL("http://localhost/v1/logs/follow"), unix: path });
      expect(dec.decode(await readAll(r))).toBe(`${expectedLines(10).join("\n")}\n`);
      expect(srv.requests[0]?.headers.get("host")).toBe("localhost");
      expect(srv.requests[0]?.path).toBe("/v1/logs/follow");
    } finally {
      await srv.stop();
      rmSync(path, { force: true });
    }
  });

  test("Unix socket with TLS: the certificate is checked against the URL's host", async () => {
    const path = join(tmpdir(), `raw-client-tls-${process.pid}.sock`);
    const srv = startFakeVigild({ unix: path, tls: pki, handler: () => bodyScript("over unix\n") });
    try {
      const r = await request({ url: new URL("https://localhost/x"), unix: path, tls: clientTls });
      expect(await r.text()).toBe("over unix\n");
      const e = expectConnectError(await rejection(request({ url: new URL("https://elsewhere.example/x"), unix: path, tls: clientTls })), "tls");
      expect(e.code).toBe("ERR_TLS_CERT_ALTNAME_INVALID");
    } finally {
      await srv.stop();
      rmSync(path, { force: true });
    }
  });
});

/* ------------------------------------------------------------------ */
/* backpressure                                                       */

describe("backpressure", () => {
  const CHUNK = "y".repeat(64 * 1024 - 1) + "\n";
  const TIMES = 1024; // 64 MiB: far more than the kernel and proxy buffers hold
  const TOTAL = CHUNK.length * TIMES;
  const HWM = 64 * 1024;
  /** a socket read can add up to this much above the high-water mark before the pause takes */
  const READ_SLACK = 1024 * 1024;

  async function slowReader(label: string, opts: (srvUrl: string) => Omit<RequestOptions, "url">, viaProxy: "none" | "http" | "https"): Promise<void> {
    const useTls = label !== "plain";
    const srv = startFakeVigild({ tls: useTls ? pki : undefined, handler: () => ({ steps: [{ repeat: CHUNK, times: TIMES }] }) });
    let proxy: ConnectProxy | undefined;
    if (viaProxy !== "none") proxy = await startConnectProxy(viaProxy === "https" ? { tls: pki } : {});
    try {
      const extra = opts(proxy?.url ?? "");
      const r = await request({ url: new URL(srv.url), highWaterMark: HWM, ...extra });
      const first = await r.read();
      expect(first).not.toBeNull();
      // the server's writes come back short and it waits for drain …
      if (srv.stats.backpressureWaits === 0) await srv.waitForBackpressure(10_000);
      // … and stays held back while we read nothing (time only to let it try)
      await Bun.sleep(150);
      const sent = srv.stats.bodyBytes;
      expect(sent).toBeLessThan(TOTAL / 2);
      expect(r.bufferedBytes).toBeLessThanOrEqual(HWM + READ_SLACK);
      if (label === "plain") {
        // reading on releases the server; memory stays bounded all the way
        let total = first?.length ?? 0;
        let maxBuffered = 0;
        for (;;) {
          maxBuffered = Math.max(maxBuffered, r.bufferedBytes);
          const c = await r.read();
          if (c === null) break;
          total += c.length;
        }
        expect(total).toBe(TOTAL);
        expect(maxBuffered).toBeLessThanOrEqual(HWM + READ_SLACK);
      } else {
        // read a few MiB through the (TLS / tunnel) pause-resume cycle, then stop
        let total = first?.length ?? 0;
        while (total < 8 * 1024 * 1024) {
          const c = await r.read();
          if (c === null) throw new Error("body ended early");
          total += c.length;
          expect(r.bufferedBytes).toBeLessThanOrEqual(HWM + READ_SLACK);
        }
        r.close();
      }
    } finally {
      await srv.stop();
      await proxy?.stop();
    }
  }

  test("plain: a slow reader holds the server back, memory stays bounded", async () => {
    await slowReader("plain", () => ({}), "none");
  });

  test("TLS", async () => {
    await slowReader("tls", () => ({ tls: clientTls }), "none");
  });

  test("TLS through an http proxy (upgradeTLS)", async () => {
    await slowReader("tunnel", (p) => ({ tls: clientTls, proxy: { url: new URL(p) } }), "http");
  });

  test("TLS through an https proxy (TLS in TLS)", async () => {
    await slowReader("tls-in-tls", (p) => ({ tls: clientTls, proxy: { url: new URL(p), tls: clientTls } }), "https");
  });
});

/* ------------------------------------------------------------------ */
/* TLS                                                                */

describe("TLS", () => {
  test("CA as a string, a chain file with several blocks, an array; serverName", async () => {
    const srv = startFakeVigild({ tls: pki, handler: () => bodyScript("ok\n") });
    try {
      for (const tls of [
        { ca: pki.caPem },
        { ca: readFileSync(pki.chainPath, "utf8") },
        { ca: [pki.otherCaPem, Buffer.from(pki.caPem)] },
        { ca: pki.caPem, serverName: "localhost" },
      ]) {
        const r = await request({ url: new URL(srv.url), tls });
        expect(await r.text()).toBe("ok\n");
      }
      const viaName = await request({ url: new URL(`https://localhost:${srv.port}/`), tls: clientTls });
      expect(await viaName.text()).toBe("ok\n");
    } finally {
      await srv.stop();
    }
  });

  test("a CA that does not match fails with the verification reason; rejectUnauthorized: false accepts", async () => {
    const srv = startFakeVigild({ tls: pki, handler: () => bodyScript("ok\n") });
    try {
      const e = expectConnectError(await rejection(request({ url: new URL(srv.url), tls: { ca: pki.otherCaPem } })), "tls");
      expect(e.message).toMatch(/unable to verify/);
      expect(e.code).toBe("UNABLE_TO_VERIFY_LEAF_SIGNATURE");
      const r = await request({ url: new URL(srv.url), tls: { ca: pki.otherCaPem, rejectUnauthorized: false } });
      expect(await r.text()).toBe("ok\n");
      const named = expectConnectError(await rejection(request({ url: new URL(srv.url), tls: { ca: pki.caPem, serverName: "wrong.example" } })), "tls");
      expect(named.message).toMatch(/wrong\.example/);
      expect(named.code).toBe("ERR_TLS_CERT_ALTNAME_INVALID");
    } finally {
      await srv.stop();
    }
  });

  test("TLS to a server that answers in plain text", async () => {
    // answers at once, before reading anything: our ClientHello gets plain HTTP back
    const plain = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(s) {
          s.end("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
        },
        data() {},
      },
    });
    try {
      const e = expectConnectError(await rejection(request({ url: new URL(`https://127.0.0.1:${plain.port}/`), tls: clientTls, connectTimeoutMs: 5000 })), "tls");
      expect(e.message).toMatch(/TLS/);
    } finally {
      plain.stop(true);
    }
  });

  test("client certificates (mTLS) against a server that requests and verifies them", async () => {
    const srv = rawResponder("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nmtls", "keep", {
      ...serverTls,
      ca: pki.caPem,
      requestCert: true,
      rejectUnauthorized: true,
    });
    try {
      const r = await request({ url: new URL(srv.url), tls: { ca: pki.caPem, cert: pki.clientCertPem, key: pki.clientKeyPem } });
      expect(await r.text()).toBe("mtls");
      expect(srv.conns[0]?.peerCN).toBe("vigil-test-client");
      // without one the server refuses (TLS 1.3: an alert after our side finished the handshake)
      const e = expectConnectError(await rejection(request({ url: new URL(srv.url), tls: clientTls })), "tls");
      expect(e.message).toMatch(/CERTIFICATE_REQUIRED|certificate/i);
    } finally {
      srv.stop();
    }
  });
});

/* ------------------------------------------------------------------ */
/* proxies                                                            */

describe("proxy", () => {
  test("https target through an http proxy (CONNECT + upgradeTLS) and an https proxy (TLS in TLS)", async () => {
    const srv = startFakeVigild({ tls: pki, handler: () => linesScript(1000) });
    const proxies = [await startConnectProxy(), await startConnectProxy({ tls: pki })];
    try {
      for (const proxy of proxies) {
        const r = await request({ url: new URL(`${srv.url}/logs?x=1`), tls: clientTls, proxy: { url: new URL(proxy.url), tls: clientTls } });
        expect(dec.decode(await readAll(r))).toBe(`${expectedLines(1000).join("\n")}\n`);
        expect(proxy.requests[0]).toMatchObject({ method: "CONNECT", target: `127.0.0.1:${srv.port}` });
      }
      expect(srv.requests.map((q) => q.path)).toEqual(["/logs?x=1", "/logs?x=1"]);
    } finally {
      await srv.stop();
      for (const p of proxies) await p.stop();
    }
  });

  test("through both tunnels: a read-until-close body ends with the tunnel's FIN; a finished body closes the tunnel", async () => {
    const lines = `${expectedLines(5000).join("\n")}\n`;
    const closing = rawResponder(`HTTP/1.1 200 OK\r\n\r\n${lines}`, "end", serverTls);
    // answers with a complete body, then keeps its side open: only our close ends the tunnel
    const keeping = rawResponder("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", "keep", serverTls);
    const proxies = [await startConnectProxy(), await startConnectProxy({ tls: pki })];
    try {
      for (const proxy of proxies) {
        const opts = { tls: clientTls, proxy: { url: new URL(proxy.url), tls: clientTls } };
        for (let i = 0; i < 5; i++) {
          const r = await request({ url: new URL(closing.url), ...opts });
          expect(dec.decode(await readAll(r))).toBe(lines);
        }
        const r = await request({ url: new URL(keeping.url), ...opts });
        expect(await r.text()).toBe("abc");
        await keeping.allClosed();
      }
    } finally {
      closing.stop();
      keeping.stop();
      for (const p of proxies) await p.stop();
    }
  });

  test("http target through an http and an https proxy: absolute-URI request", async () => {
    const srv = startFakeVigild({ handler: () => bodyScript("plain\n") });
    const proxies = [await startConnectProxy(), await startConnectProxy({ tls: pki })];
    try {
      for (const proxy of proxies) {
        const r = await request({ url: new URL(`${srv.url}/p?q=1`), proxy: { url: new URL(proxy.url), tls: clientTls } });
        expect(await r.text()).toBe("plain\n");
        expect(proxy.requests[0]).toMatchObject({ method: "GET", target: `${srv.url}/p?q=1` });
        expect(proxy.requests[0]?.headers.host).toBe(`127.0.0.1:${srv.port}`);
      }
    } finally {
      await srv.stop();
      for (const p of proxies) await p.stop();
    }
  });

  test("proxy auth: from the URL, from headers; refused with the status", async () => {
    const tlsSrv = startFakeVigild({ tls: pki, handler: () => bodyScript("auth\n") });
    const plainSrv = startFakeVigild({ handler: () => bodyScript("auth\n") });
    const proxy = await startConnectProxy({ auth: { user: "us@er", pass: "p:w" } });
    try {
      const withAuth = new URL(proxy.url);
      withAuth.username = encodeURIComponent("us@er");
      withAuth.password = encodeURIComponent("p:w");
      for (const srv of [tlsSrv, plainSrv]) {
        const r = await request({ url: new URL(srv.url), tls: clientTls, proxy: { url: withAuth } });
        expect(await r.text()).toBe("auth\n");
      }
      const header = `Basic ${Buffer.from("us@er:p:w").toString("base64")}`;
      const r2 = await request({ url: new URL(tlsSrv.url), tls: clientTls, proxy: { url: new URL(proxy.url), headers: { "Proxy-Authorization": header } } });
      expect(await r2.text()).toBe("auth\n");

      const e = expectConnectError(await rejection(request({ url: new URL(tlsSrv.url), tls: clientTls, proxy: { url: new URL(proxy.url) } })), "proxy");
      expect(e.status).toBe(407);
      expect(e.message).toMatch(/407/);
      // an http target through the proxy gets the 407 as its response
      const r407 = await request({ url: new URL(plainSrv.url), proxy: { url: new URL(proxy.url) } });
      expect(r407.status).toBe(407);
      expect(r407.headers.get("proxy-authenticate")).toContain("Basic");
      await r407.text();
    } finally {
      await tlsSrv.stop();
      await plainSrv.stop();
      await proxy.stop();
    }
  });

  test("CONNECT to a dead target: the proxy's 502 as an HttpConnectError", async () => {
    const dead = startRawServer();
    const port = dead.port;
    dead.stop();
    const proxy = await startConnectProxy();
    try {
      const e = expectConnectError(await rejection(request({ url: new URL(`https://127.0.0.1:${port}/`), tls: clientTls, proxy: { url: new URL(proxy.url) } })), "proxy");
      expect(e.status).toBe(502);
    } finally {
      await proxy.stop();
    }
  });

  test("the proxy's own certificate is verified", async () => {
    const srv = startFakeVigild({ tls: pki, handler: () => bodyScript("x") });
    const proxy = await startConnectProxy({ tls: pki });
    try {
      const e = expectConnectError(
        await rejection(request({ url: new URL(srv.url), tls: clientTls, proxy: { url: new URL(proxy.url), tls: { ca: pki.otherCaPem } } })),
        "tls",
      );
      expect(e.message).toMatch(/proxy .*unable to verify/);
      // and the target's, inside both kinds of tunnel
      for (const p of [await startConnectProxy(), proxy]) {
        const inner = expectConnectError(
          await rejection(request({ url: new URL(srv.url), tls: { ca: pki.otherCaPem }, proxy: { url: new URL(p.url), tls: clientTls } })),
          "tls",
        );
        expect(inner.message).toMatch(/unable to verify/);
        expect(inner.code).toBe("UNABLE_TO_VERIFY_LEAF_SIGNATURE");
        if (p !== proxy) await p.stop();
      }
    } finally {
      await srv.stop();
      await proxy.stop();
    }
  });

  test("a tunnel cut mid-body is an HttpBodyError after the bytes before it (chunked, and read-until-close)", async () => {
    let framing: "chunked" | "close" = "chunked";
    const srv = startFakeVigild({ tls: pki, handler: () => ({ framing, steps: [{ write: "before\n" }, { hang: true }] }) });
    try {
      for (const [proxyTls, f] of [[false, "chunked"], [true, "chunked"], [false, "close"], [true, "close"]] as const) {
        framing = f;
        const proxy = await startConnectProxy(proxyTls ? { tls: pki } : {});
        try {
          const r = await request({ url: new URL(srv.url), tls: clientTls, proxy: { url: new URL(proxy.url), tls: clientTls } });
          expect(dec.decode((await r.read()) ?? undefined)).toBe("before\n");
          const pending = r.read();
          proxy.dropConnections();
          const err = await rejection(pending);
          expect(err).toBeInstanceOf(HttpBodyError);
        } finally {
          await proxy.stop();
        }
      }
    } finally {
      await srv.stop();
    }
  });
});

/* ------------------------------------------------------------------ */
/* aborts, timeouts, connect errors                                   */

describe("abort and timeouts", () => {
  test("aborted before the call: rejects at once, connects nowhere", async () => {
    const srv = startRawServer();
    try {
      const ac = new AbortController();
      ac.abort();
      expectAbort(await rejection(request({ url: new URL(srv.url), signal: ac.signal })));
      const custom = new AbortController();
      const reason = new Error("shutting down");
      custom.abort(reason);
      expect(await rejection(request({ url: new URL(srv.url), signal: custom.signal }))).toBe(reason);
      await turn();
      expect(srv.conns.length).toBe(0);
    } finally {
      srv.stop();
    }
  });

  test("abort during the TLS handshake and while waiting for the head: rejects, socket closed", async () => {
    for (const https of [true, false]) {
      const srv = startRawServer(); // never answers: neither a ServerHello nor a response head
      try {
        const ac = new AbortController();
        const url = new URL(https ? srv.url.replace("http:", "https:") : srv.url);
        const p = request({ url, tls: clientTls, signal: ac.signal });
        if (https) await srv.waitForConnection();
        else await srv.nextRequest();
        ac.abort();
        expectAbort(await rejection(p));
        await srv.allClosed();
      } finally {
        srv.stop();
      }
    }
  });

  test("abort while reading: the pending read and later reads throw, socket closed", async () => {
    const srv = startRawServer({
      onRequest(c) {
        c.socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nfirst\n\r\n");
      },
    });
    try {
      const ac = new AbortController();
      const r = await request({ url: new URL(srv.url), signal: ac.signal });
      expect(dec.decode((await r.read()) ?? undefined)).toBe("first\n");
      const pending = r.read();
      ac.abort();
      expectAbort(await rejection(pending));
      expectAbort(await rejection(r.read()));
      await srv.allClosed();
    } finally {
      srv.stop();
    }
  });

  test("abort with unread data queued: read() throws at once", async () => {
    const srv = rawResponder("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "keep");
    try {
      const ac = new AbortController();
      const r = await request({ url: new URL(srv.url), signal: ac.signal });
      await srv.allClosed(); // the whole body is queued and the socket is gone
      expect(r.bufferedBytes).toBe(5);
      ac.abort();
      expectAbort(await rejection(r.read()));
    } finally {
      srv.stop();
    }
  });

  test("close(): idempotent, pending read rejects, socket closed", async () => {
    const srv = startFakeVigild({ handler: () => ({ steps: [{ write: "one\n" }, { hang: true }] }) });
    const raw = rawResponder("HTTP/1.1 200 OK\r\n\r\nsome", "keep");
    try {
      const r = await request({ url: new URL(srv.url) });
      expect(dec.decode((await r.read()) ?? undefined)).toBe("one\n");
      const pending = r.read();
      r.close();
      r.close();
      expectAbort(await rejection(pending));
      const r2 = await request({ url: new URL(raw.url) });
      r2.close();
      expectAbort(await rejection(r2.read()));
      await raw.allClosed();
    } finally {
      await srv.stop();
      raw.stop();
    }
  });

  test("connectTimeoutMs: a server that never completes TLS, a proxy that never answers CONNECT", async () => {
    const silent = startRawServer();
    try {
      const t0 = performance.now();
      const e = expectConnectError(
        await rejection(request({ url: new URL(silent.url.replace("http:", "https:")), tls: clientTls, connectTimeoutMs: 150 })),
        "connect-timeout",
      );
      expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
      expect(e.message).toMatch(/TLS/);
      const e2 = expectConnectError(
        await rejection(request({ url: new URL("https://k8s.example/"), tls: clientTls, proxy: { url: new URL(silent.url) }, connectTimeoutMs: 150 })),
        "connect-timeout",
      );
      expect(e2.message).toMatch(/CONNECT to k8s\.example via proxy/);
      expect(silent.conns[1]?.head).toStartWith("CONNECT k8s.example:443 HTTP/1.1\r\n");
      await silent.allClosed();
    } finally {
      silent.stop();
    }
  });

  test("headersTimeoutMs: a server that accepts and never answers; 0 waits as long as it takes", async () => {
    const silent = startRawServer();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const late = startFakeVigild({ handler: () => gate.then((): Script => bodyScript("finally\n")) });
    try {
      const e = expectConnectError(await rejection(request({ url: new URL(silent.url), headersTimeoutMs: 150, connectTimeoutMs: 100 })), "headers-timeout");
      expect(e.message).toMatch(/150 ms/);
      await silent.allClosed();
      // the kube API sends a follow stream's head with its first log byte: no head timeout then,
      // and the connect timeout is over once the request is out
      const p = request({ url: new URL(late.url), headersTimeoutMs: 0, connectTimeoutMs: 50 });
      await late.nextRequest();
      await Bun.sleep(200); // longer than the connect timeout, to show it no longer applies
      release();
      expect(await (await p).text()).toBe("finally\n");
    } finally {
      silent.stop();
      await late.stop();
    }
  });

  test("connect errors: refused, DNS, missing Unix socket", async () => {
    const dead = startRawServer();
    const port = dead.port;
    dead.stop();
    const refused = expectConnectError(await rejection(request({ url: new URL(`http://127.0.0.1:${port}/`) })), "connect");
    expect(refused.code).toBe("ECONNREFUSED");
    expectConnectError(await rejection(request({ url: new URL("http://no-such-host.invalid/") })), "connect");
    expectConnectError(await rejection(request({ url: new URL("http://localhost/"), unix: join(tmpdir(), "no-such-raw-client.sock") })), "connect");
  });
});

/* ------------------------------------------------------------------ */
/* the reason this client exists                                      */

describe("many connections", () => {
  test("1,000 concurrent streaming requests to one server, one chunk read from each", async () => {
    const N = 1000;
    const srv = startFakeVigild({
      handler: (req) => ({ steps: [{ write: `hello-${req.path.slice(1)}\n` }, { hang: true }] }),
    });
    const rssBefore = process.memoryUsage().rss;
    const t0 = performance.now();
    try {
      const responses = await withTimeout(
        Promise.all(Array.from({ length: N }, (_, i) => request({ url: new URL(`${srv.url}/${i}`), connectTimeoutMs: 10_000 }))),
        15_000,
        "1000 requests",
      );
      const firsts = await Promise.all(responses.map((r) => r.read()));
      const elapsed = performance.now() - t0;
      firsts.forEach((c, i) => expect(dec.decode(c ?? undefined)).toBe(`hello-${i}\n`));
      expect(srv.connections).toBe(N);
      const rssGrowth = (process.memoryUsage().rss - rssBefore) / 1024 / 1024;
      console.log(`1000 streams: ${elapsed.toFixed(0)} ms, rss +${rssGrowth.toFixed(0)} MiB`);
      expect(elapsed).toBeLessThan(10_000);
      expect(rssGrowth).toBeLessThan(300);
      for (const r of responses) r.close();
    } finally {
      await srv.stop();
    }
  });
});

afterAll(() => {
  // every failure above was handled through a promise the test awaited
  expect(unhandled).toBe(0);
});
