/**
 * Tests of the test fixtures themselves: the fake vigild, the TCP receiver,
 * the HTTP proxy and the PKI, driven by plain fetch and Bun.connect.
 */
import { afterAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startConnectProxy } from "./fixtures/connect-proxy.ts";
import {
  bodyScript,
  errorScript,
  linesScript,
  startFakeVigild,
  startSilentServer,
  SocketOutbox,
  type FakeVigild,
} from "./fixtures/fake-vigild.ts";
import { countNewlines, expectedLines, lagNotice, LineGenerator, lineIndex, ndjson, sse } from "./fixtures/lines.ts";
import { startTcpReceiver, unusedPort } from "./fixtures/tcp-receiver.ts";
import { makePki } from "./fixtures/tls.ts";

const tmp = mkdtempSync(join(tmpdir(), "vigil-fixtures-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let sockSeq = 0;
const sockPath = (): string => join(tmp, `v${sockSeq++}.sock`);

const stoppers: Array<() => Promise<void>> = [];
afterAll(async () => {
  await Promise.all(stoppers.map((s) => s()));
});
function vigild(opts: Parameters<typeof startFakeVigild>[0]): FakeVigild {
  const fv = startFakeVigild(opts);
  stoppers.push(() => fv.stop());
  return fv;
}

/** a deferred promise: resolve() from the test to release a waitFor step */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Reads from a body reader until `n` bytes arrived; returns exactly what arrived. */
interface ByteReader {
  read(): Promise<{ done: true; value?: undefined } | { done: false; value: Uint8Array }>;
}
async function readAtLeast(reader: ByteReader, n: number): Promise<string> {
  const parts: Uint8Array[] = [];
  let got = 0;
  while (got < n) {
    const r = await reader.read();
    if (r.done) break;
    parts.push(r.value);
    got += r.value.length;
  }
  return Buffer.concat(parts).toString();
}

interface RawConn {
  socket: Socket<undefined>;
  /** writes all of `data`, also across a full socket or a TLS handshake in progress */
  send(data: string | Uint8Array): void;
  /** everything received so far */
  text(): string;
  bytes(): number;
  /** resolves when the received text satisfies `pred` */
  until(pred: (text: string) => boolean, what?: string): Promise<string>;
  closed: Promise<void>;
}

/** A raw client (TCP, TLS or Unix) that records what comes back. Resolves once open (TLS: handshake done). */
async function rawConnect(target: { port: number; tls?: boolean } | { unix: string }): Promise<RawConn> {
  const chunks: Buffer[] = [];
  let total = 0;
  let waiters: Array<() => void> = [];
  let isClosed = false;
  let closeResolve = (): void => {};
  const closed = new Promise<void>((resolve) => {
    closeResolve = resolve;
  });
  let openResolve = (): void => {};
  const opened = new Promise<void>((resolve) => {
    openResolve = resolve;
  });
  const wake = (): void => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  let outbox: SocketOutbox | undefined;
  const handlers = {
    open(): void {
      openResolve();
    },
    data(_s: Socket<undefined>, d: Buffer): void {
      total += d.length;
      chunks.push(d);
      wake();
    },
    drain(): void {
      outbox?.flush();
    },
    close(): void {
      isClosed = true;
      closeResolve();
      openResolve();
      wake();
    },
    error(): void {},
  };
  let socket: Socket<undefined>;
  if ("unix" in target) {
    socket = await Bun.connect({ unix: target.unix, socket: handlers });
  } else {
    const pki = makePki();
    socket = await Bun.connect({
      hostname: "127.0.0.1",
      port: target.port,
      tls: target.tls ? { ca: pki.caPem, serverName: "localhost" } : undefined,
      socket: handlers,
    });
  }
  await opened;
  const box = new SocketOutbox(socket);
  outbox = box;
  const text = (): string => Buffer.concat(chunks).toString("latin1");
  return {
    socket,
    send: (data) => {
      box.write(typeof data === "string" ? Buffer.from(data) : data, true);
    },
    text,
    bytes: () => total,
    closed,
    until(pred, what = "raw data") {
      const p = new Promise<string>((resolve, reject) => {
        const check = (): void => {
          const t = text();
          if (pred(t)) resolve(t);
          else if (isClosed) reject(new Error(`closed before ${what}; got ${JSON.stringify(t.slice(-300))}`));
          else waiters.push(check);
        };
        check();
      });
      return withTimeout(p, 5000, what);
    },
  };
}

/* ------------------------------------------------------------------ */

describe("tls", () => {
  test("makePki: memoised CA, server cert with SANs, chain file, client cert", () => {
    const pki = makePki();
    expect(makePki()).toBe(pki);
    for (const p of [pki.caPath, pki.certPath, pki.keyPath, pki.chainPath, pki.clientCertPath, pki.clientKeyPath]) {
      expect(existsSync(p)).toBe(true);
    }
    const chain = readFileSync(pki.chainPath, "utf8");
    expect(chain.match(/-----BEGIN CERTIFICATE-----/g)?.length).toBe(2);
    expect(chain.endsWith(pki.caPem)).toBe(true);
    const text = Bun.spawnSync(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", pki.certPath]).stdout.toString();
    expect(text).toContain("DNS:localhost");
    expect(text).toContain("IP Address:127.0.0.1");
    expect(text).toContain("IP Address:0:0:0:0:0:0:0:1");
    for (const cert of [pki.certPath, pki.clientCertPath]) {
      const v = Bun.spawnSync(["openssl", "verify", "-CAfile", pki.caPath, cert]);
      expect(v.exitCode).toBe(0);
    }
    const other = Bun.spawnSync(["openssl", "verify", "-CAfile", pki.otherCaPath, pki.certPath]);
    expect(other.exitCode).not.toBe(0);
  });
});

describe("lines helpers", () => {
  test("LineGenerator writes line-<i>\\n across digit carries, never splitting a line", () => {
    const gen = new LineGenerator(95, 20);
    const buf = new Uint8Array(64);
    let text = "";
    while (!gen.done) {
      const end = gen.fill(buf, 0, buf.length);
      expect(end).toBeGreaterThan(0);
      const part = Buffer.from(buf.subarray(0, end)).toString();
      expect(part.endsWith("\n")).toBe(true);
      text += part;
    }
    expect(text).toBe(ndjson(expectedLines(20, 95)));
    expect(lineIndex("line-1000")).toBe(1000);
    expect(lineIndex("nope")).toBe(-1);
    expect(countNewlines(Buffer.from("a\nb\n\nc"))).toBe(3);
  });

  test("sse() bodies reduce to their data lines under the reference framing", () => {
    const frame = (body: string): string[] =>
      body
        .split("\n")
        .map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l))
        .filter((l) => l !== "" && !l.startsWith(":") && !/^(event|id|retry):/.test(l))
        .map((l) => (l.startsWith("data: ") ? l.slice(6) : l.startsWith("data:") ? l.slice(5) : l));
    const data = ["one", '{"a":1}', "three", "four", "five"];
    for (const opts of [{}, { crlf: true }, { comments: true }, { comments: true, crlf: true, compact: true }]) {
      expect(frame(sse(data, opts))).toEqual(data);
    }
    const withComments = sse(data, { comments: true });
    expect(withComments).toContain(": keepalive\n");
    expect(withComments).toContain(lagNotice());
    expect(withComments).toContain("retry: ");
    expect(withComments).toContain("id: 1\n");
    expect(withComments).toContain("event: log\n");
    expect(sse(data, { crlf: true })).toContain("data: one\r\n\r\n");
    expect(sse(data, { compact: true })).toContain("data:one\n");
  });
});

describe("fake vigild", () => {
  test("plain TCP: scripted chunks arrive one by one, chunked framing on the wire", async () => {
    const g1 = gate();
    const fv = vigild({
      handler: () => ({ steps: [{ write: "first\nhal" }, { waitFor: g1.promise }, { write: "f\r\nlast\n" }, { close: "end" }] }),
    });
    const res = await fetch(`${fv.url}/v1/logs/follow?format=ndjson`);
    expect(res.status).toBe(200);
    expect(res.headers.get("transfer-encoding")).toBe("chunked");
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    const req = await fv.nextRequest();
    expect(req.path).toBe("/v1/logs/follow?format=ndjson");
    expect(req.method).toBe("GET");
    expect(req.index).toBe(0);
    const reader = res.body!.getReader();
    // the server is held at the gate: exactly the first chunk is here
    expect(await readAtLeast(reader, 9)).toBe("first\nhal");
    g1.open();
    let rest = "";
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      rest += Buffer.from(r.value).toString();
    }
    expect(rest).toBe("f\r\nlast\n");

    // the same script seen raw: one HTTP chunk per write step
    const g2 = gate();
    const fv2 = vigild({ handler: () => ({ steps: [{ write: "ab\n" }, { waitFor: g2.promise }, { write: "c" }] }) });
    const raw = await rawConnect({ port: fv2.port });
    raw.send("GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const head = await raw.until((t) => t.includes("3\r\nab\n\r\n"), "first chunk");
    expect(head).toStartWith("HTTP/1.1 200 OK\r\n");
    expect(head.toLowerCase()).toContain("transfer-encoding: chunked\r\n");
    g2.open();
    await raw.closed;
    expect(raw.text()).toEndWith("\r\n\r\n3\r\nab\n\r\n1\r\nc\r\n0\r\n\r\n");
  });

  test("Unix socket: fetch({ unix }) gets a chunked stream", async () => {
    const path = sockPath();
    const fv = vigild({ unix: path, handler: () => bodyScript(ndjson(["a", "b"])) });
    expect(fv.socketPath).toBe(path);
    const res = await fetch(`${fv.url}/v1/logs/follow?format=ndjson`, { unix: path });
    expect(res.headers.get("transfer-encoding")).toBe("chunked");
    expect(await res.text()).toBe("a\nb\n");
    expect(fv.requests[0]?.path).toBe("/v1/logs/follow?format=ndjson");

    const raw = await rawConnect({ unix: path });
    raw.send("GET /v1/logs/follow HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    await raw.closed;
    expect(raw.text()).toEndWith("\r\n\r\n4\r\na\nb\n\r\n0\r\n\r\n");
  });

  test("TLS: verifies with the CA, with the chain file, not without", async () => {
    const pki = makePki();
    const fv = vigild({ tls: pki, handler: () => bodyScript("secure\n") });
    expect(fv.url).toStartWith("https://127.0.0.1:");
    expect(await (await fetch(fv.url, { tls: { ca: pki.caPem } })).text()).toBe("secure\n");
    const chain = readFileSync(pki.chainPath, "utf8");
    expect(await (await fetch(fv.url, { tls: { ca: chain } })).text()).toBe("secure\n");
    expect(
      await (await fetch(fv.url.replace("127.0.0.1", "localhost"), { tls: { ca: pki.caPem } })).text(),
    ).toBe("secure\n");
    expect(fetch(fv.url, { tls: { ca: pki.otherCaPem } })).rejects.toThrow();
    expect(fetch(fv.url)).rejects.toThrow();
  });

  test("abort cuts the body mid-line (no last chunk); reset sends a TCP RST", async () => {
    // Bun's fetch drops bytes that arrive together with the close, so the test
    // reads the first chunk before it lets the script cut the connection
    const g1 = gate();
    const fv = vigild({
      handler: (req) =>
        req.index === 0
          ? { steps: [{ write: "whole\nhalf-a-li" }, { waitFor: g1.promise }, { close: "abort" }] }
          : { steps: [{ write: "whole\nhalf-a-li" }, { close: "abort" }] },
    });
    const res = await fetch(fv.url);
    const reader = res.body!.getReader();
    expect(await readAtLeast(reader, 15)).toBe("whole\nhalf-a-li");
    g1.open();
    expect(reader.read()).rejects.toThrow();
    // a raw client gets every byte up to the cut, and no last chunk
    const raw = await rawConnect({ port: fv.port });
    raw.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await raw.closed;
    expect(raw.text()).toEndWith("\r\n\r\nf\r\nwhole\nhalf-a-li\r\n"); // and no "0\r\n\r\n"

    const g = gate();
    const fv2 = vigild({ handler: () => ({ steps: [{ write: "x\nhalf" }, { waitFor: g.promise }, { close: "reset" }] }) });
    const res2 = await fetch(fv2.url);
    const reader2 = res2.body!.getReader();
    expect(await readAtLeast(reader2, 6)).toBe("x\nhalf");
    g.open();
    expect(reader2.read()).rejects.toThrow(/ECONNRESET|closed/);

    // over a Unix socket both are a close without the last chunk
    const path = sockPath();
    const g3 = gate();
    const fv3 = vigild({ unix: path, handler: () => ({ steps: [{ write: "x\ny" }, { waitFor: g3.promise }, { close: "reset" }] }) });
    const res3 = await fetch(fv3.url, { unix: path });
    const reader3 = res3.body!.getReader();
    expect(await readAtLeast(reader3, 3)).toBe("x\ny");
    g3.open();
    expect(reader3.read()).rejects.toThrow();
  });

  test("keep-alive: two requests on one connection, request index and connection id", async () => {
    const fv = vigild({ handler: (req) => bodyScript(`r${req.index}\n`) });
    const raw = await rawConnect({ port: fv.port });
    raw.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    await raw.closed;
    const text = raw.text();
    expect(text).toContain("3\r\nr0\n\r\n0\r\n\r\nHTTP/1.1 200 OK");
    expect(text).toEndWith("3\r\nr1\n\r\n0\r\n\r\n");
    const [a, b] = [await fv.nextRequest(), await fv.nextRequest()];
    expect([a.path, b.path]).toEqual(["/a", "/b"]);
    expect(a.connectionId).toBe(b.connectionId);
    expect(fv.connections).toBe(1);
  });

  test("status, headers and framing 'close' (body delimited by EOF)", async () => {
    const fv = vigild({
      handler: (req) =>
        req.path === "/err"
          ? errorScript(503, "busy")
          : { framing: "close", headers: { "content-type": "text/event-stream", "x-k": "v" }, steps: [{ write: sse(["d"]) }] },
    });
    const err = await fetch(`${fv.url}/err`);
    expect(err.status).toBe(503);
    expect(await err.text()).toBe("busy");
    const ok = await fetch(`${fv.url}/sse`);
    expect(ok.headers.get("transfer-encoding")).toBeNull();
    expect(ok.headers.get("content-type")).toBe("text/event-stream");
    expect(ok.headers.get("x-k")).toBe("v");
    expect(await ok.text()).toBe(sse(["d"]));
  });

  test("generated lines: 200,000 lines in order, chunkLines respected", async () => {
    const fv = vigild({
      handler: (req) =>
        req.path === "/small"
          ? { steps: [{ lines: 10, start: 7, chunkLines: 3 }] }
          : req.path === "/custom"
            ? { steps: [{ lines: 5, make: (i) => `{"n":${i}}`, chunkLines: 2 }] }
            : linesScript(200_000),
    });
    const text = await (await fetch(`${fv.url}/big`)).text();
    const lines = text.split("\n");
    expect(lines.pop()).toBe("");
    expect(lines.length).toBe(200_000);
    expect(lines[0]).toBe("line-0");
    expect(lines[199_999]).toBe("line-199999");
    expect(lines.every((l, k) => lineIndex(l) === k)).toBe(true);

    const raw = await rawConnect({ port: fv.port });
    raw.send("GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    await raw.closed;
    const body = raw.text().split("\r\n\r\n").slice(1).join("\r\n\r\n");
    expect(body).toBe(
      "15\r\nline-7\nline-8\nline-9\n\r\n18\r\nline-10\nline-11\nline-12\n\r\n18\r\nline-13\nline-14\nline-15\n\r\n8\r\nline-16\n\r\n0\r\n\r\n",
    );
    expect(await (await fetch(`${fv.url}/custom`)).text()).toBe('{"n":0}\n{"n":1}\n{"n":2}\n{"n":3}\n{"n":4}\n');
    expect(fv.stats.linesProduced).toBe(200_015);
  });

  test("pull-based: a reader that stops reading stops the generation; all lines arrive after", async () => {
    const N = 3_000_000; // ~44 MB
    const fv = vigild({ handler: () => ({ framing: "close", steps: [{ lines: N }] }) });
    const raw = await rawConnect({ port: fv.port });
    raw.socket.pause();
    raw.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await fv.waitForBackpressure();
    // what was produced is what the kernel buffers hold plus one chunk: far from all of it
    const produced = fv.stats.bodyBytes;
    expect(produced).toBeLessThan(24 * 1024 * 1024);
    expect(fv.stats.linesProduced).toBeLessThan(N / 2);
    expect(raw.bytes()).toBe(0);
    raw.socket.resume();
    await raw.closed;
    const text = raw.text();
    const headEnd = text.indexOf("\r\n\r\n") + 4;
    const body = Buffer.from(text.slice(headEnd), "latin1");
    expect(countNewlines(body)).toBe(N);
    expect(body.subarray(body.length - 14).toString()).toBe(`\nline-${N - 1}\n`);
    expect(fv.stats.backpressureWaits).toBeGreaterThan(0);
  });

  test("repeat step sends the same chunk many times", async () => {
    const fv = vigild({ handler: () => ({ steps: [{ repeat: "a\nbb\n", times: 1000 }] }) });
    const text = await (await fetch(fv.url)).text();
    expect(text.length).toBe(5000);
    expect(countNewlines(Buffer.from(text))).toBe(2000);
    expect(fv.stats.linesProduced).toBe(2000);
  });

  test("hang keeps the body open; stop() cuts it; nextRequest queues", async () => {
    const fv = startFakeVigild({ handler: () => ({ steps: [{ write: "x\n" }, { hang: true }] }) });
    const res = await fetch(fv.url);
    const reader = res.body!.getReader();
    expect(await readAtLeast(reader, 2)).toBe("x\n");
    let settled = false;
    const next = reader.read().finally(() => {
      settled = true;
    });
    await fv.nextRequest();
    expect(settled).toBe(false);
    await fv.stop();
    expect(next).rejects.toThrow();
    expect(fv.nextRequest(50)).rejects.toThrow(/no request #1/);
  });

  test("a handler that never returns: the response head never comes", async () => {
    const fv = vigild({ handler: () => new Promise<never>(() => {}) });
    const ac = new AbortController();
    let settled = false;
    const p = fetch(fv.url, { signal: ac.signal }).finally(() => {
      settled = true;
    });
    await fv.nextRequest();
    expect(settled).toBe(false);
    ac.abort();
    expect(p).rejects.toThrow();
  });

  test("silent server: accepts, reads the request, never answers", async () => {
    const s = startSilentServer();
    stoppers.push(() => s.stop());
    const ac = new AbortController();
    let settled = false;
    const p = fetch(`${s.url}/v1/logs/follow`, { signal: ac.signal }).finally(() => {
      settled = true;
    });
    await s.waitForConnection();
    const raw = await rawConnect({ port: s.port });
    raw.send("GET / HTTP/1.1\r\n\r\n");
    await s.waitForConnection(2);
    expect(settled).toBe(false);
    ac.abort();
    expect(p).rejects.toThrow();
    expect(raw.bytes()).toBe(0);

    const path = sockPath();
    const u = startSilentServer({ unix: path });
    stoppers.push(() => u.stop());
    const rawU = await rawConnect({ unix: path });
    await u.waitForConnection();
    expect(rawU.bytes()).toBe(0);
  });

  test("dropConnections cuts live responses", async () => {
    const fv = vigild({ handler: () => ({ steps: [{ write: "a\n" }, { hang: true }] }) });
    const res = await fetch(fv.url);
    const reader = res.body!.getReader();
    expect(await readAtLeast(reader, 2)).toBe("a\n");
    fv.dropConnections();
    expect(reader.read()).rejects.toThrow();
  });
});

describe("tcp receiver", () => {
  test("lines across writes and connections, partial tails kept per connection", async () => {
    const rx = await startTcpReceiver();
    stoppers.push(() => rx.stop());
    const a = await rawConnect({ port: rx.port });
    const b = await rawConnect({ port: rx.port });
    await rx.waitForConnection(2);
    a.send("a1\na2-");
    await rx.waitForLines(1);
    b.send("b1\n");
    await rx.waitForLines(2);
    a.send(Buffer.from([0x74, 0x61, 0x69, 0x6c, 0x0a, 0xe2, 0x82])); // "tail\n" + 2 of the 3 bytes of "€"
    await rx.waitForLines(3);
    a.send(Buffer.from([0xac, 0x0a])); // "€\n" split inside the character
    b.socket.end("b-unterminated");
    expect(await rx.waitForLines(4)).toEqual(["a1", "b1", "a2-tail", "€"]);
    await rx.waitForDisconnect(1);
    expect(rx.lines()).toEqual(["a1", "b1", "a2-tail", "€"]);
    expect(rx.lineCount).toBe(4);
    expect(rx.bytes).toBe(6 + 3 + 7 + 2 + 14);
    expect(rx.connections).toBe(2);
    expect(rx.waitForLines(5, 30)).rejects.toThrow(/has 4 lines, wanted 5/);
  });

  test("countOnly counts lines and bytes without keeping them", async () => {
    const rx = await startTcpReceiver({ countOnly: true });
    stoppers.push(() => rx.stop());
    const c = await rawConnect({ port: rx.port });
    const payload = ndjson(expectedLines(50_000));
    c.send(payload);
    expect(await rx.waitForLines(50_000)).toEqual([]);
    await rx.waitForBytes(payload.length);
    expect(rx.lines()).toEqual([]);
    expect(rx.lineCount).toBe(50_000);
  });

  test("pause() is real TCP backpressure: writes come back short, drain waits for resume()", async () => {
    const rx = await startTcpReceiver();
    stoppers.push(() => rx.stop());
    let drained = (): void => {};
    let drains = 0;
    const client = await Bun.connect({
      hostname: rx.host,
      port: rx.port,
      socket: {
        data() {},
        drain() {
          drains++;
          drained();
        },
      },
    });
    await rx.waitForConnection();
    rx.pause();
    expect(rx.paused).toBe(true);
    const line = Buffer.from(`${"x".repeat(1023)}\n`);
    const block = Buffer.concat(Array.from({ length: 1024 }, () => line)); // 1 MiB, 1024 lines
    let accepted = 0;
    let short = -1;
    const pending: Buffer[] = [];
    // write block after block, letting the event loop run (so the receiver could read) in between
    for (let k = 0; k < 256 && short === -1; k++) {
      const n = client.write(block);
      accepted += n;
      if (n < block.length) {
        short = n;
        pending.push(block.subarray(n));
      }
      await new Promise((r) => setImmediate(r));
    }
    expect(short).toBeGreaterThanOrEqual(0);
    expect(accepted).toBeLessThan(64 * 1024 * 1024);
    expect(rx.bytes).toBeLessThan(accepted);
    // drain does not come while paused (give it a generous window)
    const drainP = new Promise<void>((r) => {
      drained = r;
    });
    const winner = await Promise.race([drainP.then(() => "drain"), Bun.sleep(150).then(() => "still paused")]);
    expect(winner).toBe("still paused");
    expect(drains).toBe(0);
    const bytesWhilePaused = rx.bytes;
    rx.resume();
    await drainP;
    // write the rest, respecting drain
    let rest = pending.shift();
    while (rest && rest.length > 0) {
      const n = client.write(rest);
      rest = rest.subarray(n);
      if (rest.length > 0) {
        await new Promise<void>((r) => {
          drained = r;
        });
      }
    }
    const total = accepted + (block.length - short);
    await rx.waitForBytes(total);
    expect(rx.bytes).toBeGreaterThan(bytesWhilePaused);
    expect(rx.bytes).toBe(total);
    expect(rx.lineCount).toBe(total / 1024);
    client.end();
  });

  test("dropConnections, stop, restart on the same port", async () => {
    const rx = await startTcpReceiver();
    const port = rx.port;
    const c = await rawConnect({ port });
    await rx.waitForConnection();
    rx.dropConnections();
    await c.closed;
    await rx.waitForDisconnect(1);
    expect(rx.openConnections).toBe(0);
    c.socket.end();
    await rx.stop();
    expect(Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } })).rejects.toThrow();
    const rx2 = await startTcpReceiver({ port });
    stoppers.push(() => rx2.stop());
    expect(rx2.port).toBe(port);
    const c2 = await rawConnect({ port });
    c2.send("again\n");
    expect(await rx2.waitForLines(1)).toEqual(["again"]);
    expect(unusedPort()).toBeGreaterThan(0);
  });
});

const hasIpv6 = ((): boolean => {
  try {
    Bun.listen({ hostname: "::1", port: 0, socket: { data() {} } }).stop(true);
    return true;
  } catch {
    return false;
  }
})();

test.skipIf(!hasIpv6)("IPv6 loopback: fake vigild over TLS on [::1], receiver on ::1", async () => {
  const pki = makePki();
  const fv = vigild({ host: "::1", tls: pki, handler: () => bodyScript("v6\n") });
  expect(fv.url).toBe(`https://[::1]:${fv.port}`);
  expect(await (await fetch(fv.url, { tls: { ca: pki.caPem } })).text()).toBe("v6\n");
  const rx = await startTcpReceiver({ host: "::1" });
  stoppers.push(() => rx.stop());
  const c = await Bun.connect({ hostname: "::1", port: rx.port, socket: { data() {} } });
  c.write("six\n");
  expect(await rx.waitForLines(1)).toEqual(["six"]);
  c.end();
});

describe("connect proxy", () => {
  test("CONNECT tunnels https; absolute-URI requests forward http, streaming", async () => {
    const pki = makePki();
    const proxy = await startConnectProxy();
    stoppers.push(() => proxy.stop());
    const secure = vigild({ tls: pki, handler: () => linesScript(100_000) });
    const plain = vigild({ handler: () => linesScript(100_000, { start: 5 }) });

    const t1 = await (await fetch(`${secure.url}/v1/logs/follow`, { proxy: proxy.url, tls: { ca: pki.caPem } })).text();
    expect(t1).toBe(ndjson(expectedLines(100_000)));
    expect(proxy.requests[0]).toMatchObject({ method: "CONNECT", target: `127.0.0.1:${secure.port}` });

    const res = await fetch(`${plain.url}/v1/logs/follow?format=ndjson`, { proxy: proxy.url });
    expect(res.headers.get("connection")).toBe("close");
    expect(await res.text()).toBe(ndjson(expectedLines(100_000, 5)));
    expect(proxy.requests[1]).toMatchObject({ method: "GET", target: `${plain.url}/v1/logs/follow?format=ndjson` });
    expect(proxy.requests[1]?.headers.host).toBe(`127.0.0.1:${plain.port}`);
    expect((await plain.nextRequest()).path).toBe("/v1/logs/follow?format=ndjson");
  });

  test("forwarded responses stream (first chunk before the body ends)", async () => {
    const proxy = await startConnectProxy();
    stoppers.push(() => proxy.stop());
    const g = gate();
    const fv = vigild({ handler: () => ({ steps: [{ write: "early\n" }, { waitFor: g.promise }, { write: "late\n" }] }) });
    const res = await fetch(fv.url, { proxy: proxy.url });
    const reader = res.body!.getReader();
    expect(await readAtLeast(reader, 6)).toBe("early\n");
    g.open();
    expect(await readAtLeast(reader, 5)).toBe("late\n");
  });

  test("https proxy listener (TLS to the proxy, then TLS to the target inside)", async () => {
    const pki = makePki();
    const proxy = await startConnectProxy({ tls: pki });
    stoppers.push(() => proxy.stop());
    expect(proxy.url).toStartWith("https://127.0.0.1:");
    const secure = vigild({ tls: pki, handler: () => bodyScript("via https proxy\n") });
    const plain = vigild({ handler: () => bodyScript("plain via https proxy\n") });
    // Bun's fetch checks the proxy's certificate with the same tls.ca as the target's
    expect(await (await fetch(secure.url, { proxy: proxy.url, tls: { ca: pki.caPem } })).text()).toBe("via https proxy\n");
    expect(await (await fetch(plain.url, { proxy: proxy.url, tls: { ca: pki.caPem } })).text()).toBe(
      "plain via https proxy\n",
    );
    expect(fetch(plain.url, { proxy: proxy.url })).rejects.toThrow();
    expect(proxy.requests.map((r) => r.method)).toEqual(["CONNECT", "GET"]);

    // and by hand: TLS to the proxy, CONNECT, plain HTTP inside the tunnel
    const raw = await rawConnect({ port: proxy.port, tls: true });
    raw.send(`CONNECT 127.0.0.1:${plain.port} HTTP/1.1\r\nHost: 127.0.0.1:${plain.port}\r\n\r\n`);
    await raw.until((t) => t.includes("\r\n\r\n"), "CONNECT reply");
    expect(raw.text()).toStartWith("HTTP/1.1 200 ");
    raw.send("GET /in-tunnel HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    await raw.closed;
    expect(raw.text()).toEndWith("\r\n\r\n16\r\nplain via https proxy\n\r\n0\r\n\r\n");
  });

  test("proxy auth, bad gateway", async () => {
    const proxy = await startConnectProxy({ auth: { user: "u", pass: "p w" } });
    stoppers.push(() => proxy.stop());
    const fv = vigild({ handler: () => bodyScript("authed\n") });
    const denied = await fetch(fv.url, { proxy: proxy.url });
    expect(denied.status).toBe(407);
    const authed = proxy.url.replace("http://", "http://u:p%20w@");
    expect(await (await fetch(fv.url, { proxy: authed })).text()).toBe("authed\n");
    expect(proxy.requests[1]?.headers["proxy-authorization"]).toBe(`Basic ${btoa("u:p w")}`);

    const open = await startConnectProxy();
    stoppers.push(() => open.stop());
    const res = await fetch(`http://127.0.0.1:${unusedPort()}/`, { proxy: open.url });
    expect(res.status).toBe(502);
  });
});
