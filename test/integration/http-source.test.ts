/**
 * The HTTP sources end to end: the relay as a real process reading a fake
 * vigild over http, https and a Unix socket, writing to a TCP receiver.
 * Every test ends with a sentinel line from a second request, so "exactly
 * these lines" is asserted without waiting for silence.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { startFakeVigild, type FakeVigild, type FakeVigildOptions, type Script } from "../fixtures/fake-vigild.ts";
import { expectedLines, lagNotice, ndjson, sse } from "../fixtures/lines.ts";
import { startTcpReceiver, type TcpReceiver } from "../fixtures/tcp-receiver.ts";
import { makePki } from "../fixtures/tls.ts";
import { chunks, cleanup, metric, sequence, startRelay, tempDir, track, waitUntil, type Relay } from "./helpers.ts";

afterEach(cleanup);

const SENTINEL = "END-OF-TEST";
const sentinel = chunks([`${SENTINEL}\n`], "hang");

function vigild(opts: FakeVigildOptions): FakeVigild {
  return track(startFakeVigild(opts));
}

async function receiver(): Promise<TcpReceiver> {
  return track(await startTcpReceiver());
}

function relayTo(rx: TcpReceiver, flags: string[], env?: Record<string, string>): Relay {
  return startRelay([...flags, "--tcp-sink-port", String(rx.port)], env ? { env } : {});
}

/** Waits for `expected` + the sentinel and asserts that is exactly what arrived. */
async function expectExactly(rx: TcpReceiver, expected: string[], timeoutMs = 15_000): Promise<void> {
  const got = await rx.waitForLines(expected.length + 1, timeoutMs).catch((e: unknown) => {
    throw new Error(`${e instanceof Error ? e.message : String(e)}; got ${JSON.stringify(rx.lines().slice(0, 20))}`);
  });
  expect(got).toEqual([...expected, SENTINEL]);
}

const LOGS = "/v1/logs/follow?format=ndjson";

describe("ndjson and SSE over http", () => {
  test("ndjson: every line, in order, and the request path", async () => {
    const fv = vigild({ handler: sequence({ steps: [{ lines: 5000 }, { close: "end" }] }, sentinel) });
    const rx = await receiver();
    relayTo(rx, ["--source-url", `${fv.url}${LOGS}`]);
    await expectExactly(rx, expectedLines(5000));
    expect(fv.requests[0]?.path).toBe(LOGS);
    expect(fv.requests[0]?.method).toBe("GET");
  });

  test("user:password in the URL is sent as Basic auth (as curl does) and never shown in the relay's log", async () => {
    const fv = vigild({ handler: sequence({ steps: [{ lines: 3 }, { close: "end" }] }, sentinel) });
    const rx = await receiver();
    const url = new URL(`${fv.url}${LOGS}`);
    url.username = "relay";
    url.password = "s3cret:p@ss";
    const relay = relayTo(rx, ["--source-url", url.href, "--debug"]);
    await expectExactly(rx, expectedLines(3));
    expect(fv.requests[0]?.headers.get("authorization")).toBe(`Basic ${Buffer.from("relay:s3cret:p@ss").toString("base64")}`);
    expect(fv.requests[0]?.path).toBe(LOGS);
    const log = relay.stderr.text;
    expect(log).toContain("source connected");
    expect(log).toContain("***@127.0.0.1");
    expect(log).not.toContain("s3cret");
    expect(log).not.toContain("relay:");
  });

  test("SSE: data lines forwarded, event/id/retry/comments/blank lines skipped", async () => {
    const data = ["first", '{"msg":"json in sse"}', "data: inner", "x:y", "", "last one"].filter((l) => l !== "");
    const body = sse(data, { comments: true }) + "data:compact\n\n";
    const fv = vigild({ handler: sequence(chunks([body], "end", "text/event-stream"), sentinel) });
    const rx = await receiver();
    relayTo(rx, ["--source-url", `${fv.url}/v1/logs/follow?format=sse`]);
    await expectExactly(rx, [...data, "compact"]);
  });

  test("SSE with CRLF line ends and compact data:", async () => {
    const data = ["a", "b b", "c\tc", "d"];
    const fv = vigild({ handler: sequence(chunks([sse(data, { crlf: true, compact: true, comments: true })], "end", "text/event-stream"), sentinel) });
    const rx = await receiver();
    relayTo(rx, ["--source-url", `${fv.url}/sse`]);
    await expectExactly(rx, data);
  });

  test("SSE: an event with several data: lines gives one output line each", async () => {
    const body = "event: log\nid: 7\ndata: first\ndata:second\ndata: third\n\n: keepalive\n\n";
    const fv = vigild({ handler: sequence(chunks([body], "end", "text/event-stream"), sentinel) });
    const rx = await receiver();
    relayTo(rx, ["--source-url", `${fv.url}/sse`]);
    await expectExactly(rx, ["first", "second", "third"]);
  });

  test("a close-delimited body (no chunked encoding) is read to its end, then the relay reconnects", async () => {
    const fv = vigild({ handler: sequence({ framing: "close", steps: [{ lines: 3000 }, { write: "tail-without-newline" }] }, sentinel) });
    const rx = await receiver();
    relayTo(rx, ["--source-url", `${fv.url}${LOGS}`]);
    await expectExactly(rx, [...expectedLines(3000), "tail-without-newline"]);
  });

  test("CRLF, keepalive comments, lines split across chunks, empty lines", async () => {
    const parts = [
      "one\r\n",
      ": keepalive\r\n",
      "\r\n",
      "tw",
      "o\r",
      "\nthr",
      "e",
      "e\n",
      ":\n",
      "four\r\nfive\n\nsix",
      "\r\n",
    ];
    const fv = vigild({ handler: sequence(chunks(parts), sentinel) });
    const rx = await receiver();
    relayTo(rx, ["--source-url", `${fv.url}${LOGS}`]);
    await expectExactly(rx, ["one", "two", "three", "four", "five", "six"]);
  });

  test("a last line without newline at a clean EOF is forwarded", async () => {
    const fv = vigild({ handler: sequence(chunks(["a\nb\nno-newline-at-eof"]), sentinel) });
    const rx = await receiver();
    relayTo(rx, ["--source-url", `${fv.url}${LOGS}`]);
    await expectExactly(rx, ["a", "b", "no-newline-at-eof"]);
  });

  test("a line over --max-line-bytes is dropped with a warning; the following lines arrive; the relay keeps running", async () => {
    const huge = "x".repeat(300_000); // several HTTP chunks, longer than the limit and the read size
    const parts = ["before\n", huge.slice(0, 100_000), huge.slice(100_000, 200_000), huge.slice(200_000) + "\nafter\n", "short\n"];
    const fv = vigild({ handler: sequence(chunks(parts), sentinel) });
    const rx = await receiver();
    const relay = relayTo(rx, ["--source-url", `${fv.url}${LOGS}`, "--max-line-bytes", "65536"]);
    await expectExactly(rx, ["before", "after", "short"]);
    const warn = await relay.stderr.waitFor("longer than --max-line-bytes");
    expect(warn).toContain("WARN");
    expect(warn).toContain("bytes=300000");
    expect(relay.proc.exitCode).toBeNull();
  });

  test("a huge line in one chunk under the default limit passes whole", async () => {
    const big = "y".repeat(500_000);
    const fv = vigild({ handler: sequence(chunks([`s\n${big}\ne\n`]), sentinel) });
    const rx = await receiver();
    relayTo(rx, ["--source-url", `${fv.url}${LOGS}`]);
    await expectExactly(rx, ["s", big, "e"]);
  });

  test("`: lagged: skipped N entries` is logged as a warning", async () => {
    const body = `a\n${lagNotice(1234)}b\n`;
    const fv = vigild({ handler: sequence(chunks([body], "end", "text/event-stream"), sentinel) });
    const rx = await receiver();
    const relay = relayTo(rx, ["--source-url", `${fv.url}${LOGS}`]);
    await expectExactly(rx, ["a", "b"]);
    const warn = await relay.stderr.waitFor("skipped=1234");
    expect(warn).toContain("WARN");
  });

  test("a clean EOF reconnects at once and the stream continues", async () => {
    const fv = vigild({
      handler: sequence(
        { steps: [{ lines: 100, start: 0 }, { close: "end" }] },
        { steps: [{ lines: 100, start: 100 }, { close: "end" }] },
        sentinel,
      ),
    });
    const rx = await receiver();
    relayTo(rx, ["--source-url", `${fv.url}${LOGS}`]);
    await expectExactly(rx, expectedLines(200));
  });
});

describe("redirects (followed, up to 10, as the reference's HTTP client does)", () => {
  const moved = (location: string, status = 302): Script => ({ status, headers: { location }, steps: [{ close: "end" }] });

  test("302 to a relative path, then 307 to another server: the lines arrive; credentials stay with the source's origin", async () => {
    const target = vigild({ handler: sequence({ steps: [{ lines: 300 }, { close: "end" }] }, sentinel) });
    const fv = vigild({ handler: (req) => (req.path.startsWith("/moved") ? moved(`${target.url}/final?format=ndjson`, 307) : moved("/moved?format=ndjson")) });
    const rx = await receiver();
    const url = new URL(`${fv.url}${LOGS}`);
    url.username = "relay";
    url.password = "secret";
    relayTo(rx, ["--source-url", url.href]);
    await expectExactly(rx, expectedLines(300));
    expect(fv.requests.map((r) => r.path).slice(0, 2)).toEqual([LOGS, "/moved?format=ndjson"]);
    expect(fv.requests[1]?.headers.get("authorization")).toBe(`Basic ${Buffer.from("relay:secret").toString("base64")}`);
    expect(target.requests[0]?.path).toBe("/final?format=ndjson");
    expect(target.requests[0]?.headers.get("authorization")).toBeNull();
  });

  test("a redirect loop is a failed attempt (backoff, --source-reconnect-retries), not a hang", async () => {
    const fv = vigild({ handler: () => moved("/again") });
    const rx = await receiver();
    const relay = relayTo(rx, ["--source-url", `${fv.url}${LOGS}`, "--source-reconnect-retries", "1"]);
    expect(await relay.waitExit(15_000)).toBe(1);
    // The request and 10 redirects.
    expect(fv.requests.length).toBe(11);
    await relay.stderr.end();
    expect(relay.stderr.lines.filter((l) => l.includes("giving up"))[0]).toContain("more than 10 redirects");
  });

  test("a socket source follows a redirect to another path on the socket", async () => {
    const path = join(tempDir(), "vigild.sock");
    const body = sequence({ steps: [{ lines: 50 }, { close: "end" }] }, sentinel);
    let served = 0;
    const fv = vigild({ unix: path, handler: (req) => (req.path === "/v2/logs" ? body({ ...req, index: served++ }) : moved("/v2/logs", 308)) });
    const rx = await receiver();
    relayTo(rx, ["--source-socket", path]);
    await expectExactly(rx, expectedLines(50));
    expect(fv.requests.map((r) => r.path).slice(0, 2)).toEqual([LOGS, "/v2/logs"]);
  });
});

describe("--include / --exclude", () => {
  test("include (OR), then exclude (OR)", async () => {
    const lines = [
      '{"level":"info","msg":"a"}',
      '{"level":"error","msg":"b"}',
      '{"level":"debug","msg":"c"}',
      '{"level":"warn","msg":"d healthz"}',
      '{"level":"warn","msg":"e"}',
      "plain error text",
      '{"level":"error","msg":"f noise"}',
    ];
    const fv = vigild({ handler: sequence(chunks([ndjson(lines)]), { steps: [{ write: `${SENTINEL} error\n` }, { hang: true }] }) });
    const rx = await receiver();
    relayTo(rx, [
      "--source-url", `${fv.url}${LOGS}`,
      "--include", "error",
      "--include", '"level":"warn"',
      "--exclude", "healthz",
      "--exclude", "noise$|noise\"",
    ]);
    const got = await rx.waitForLines(4);
    expect(got).toEqual(['{"level":"error","msg":"b"}', '{"level":"warn","msg":"e"}', "plain error text", `${SENTINEL} error`]);
  });

  test("filters see the SSE payload (after data:), not the framing", async () => {
    const data = ["keep 1", "drop 2", "keep 3"];
    const fv = vigild({ handler: sequence(chunks([sse(data)], "end", "text/event-stream"), sentinel) });
    const rx = await receiver();
    relayTo(rx, ["--source-url", `${fv.url}/sse`, "--include", "^keep|^END", "--exclude", "^data"]);
    await expectExactly(rx, ["keep 1", "keep 3"]);
  });
});

describe("https", () => {
  const pki = makePki();

  /** A TLS source sending `line`, read with the flags and env `relay` gives: the line arrives. */
  async function expectVerified(line: string, relay: (fv: FakeVigild) => { flags: string[]; env?: Record<string, string> }): Promise<void> {
    const fv = vigild({ tls: pki, handler: sequence(chunks([`${line}\n`]), sentinel) });
    const rx = await receiver();
    const { flags, env } = relay(fv);
    relayTo(rx, flags, env);
    await expectExactly(rx, [line]);
  }

  test("--source-cacert with the CA", async () => {
    const fv = vigild({ tls: pki, handler: sequence({ steps: [{ lines: 1000 }, { close: "end" }] }, sentinel) });
    const rx = await receiver();
    relayTo(rx, ["--source-url", `${fv.url}${LOGS}`, "--source-cacert", pki.caPath]);
    await expectExactly(rx, expectedLines(1000));
  });

  test("--source-cacert with a chain file of several PEM blocks (the CA is the second)", async () => {
    await expectVerified("via chain", (fv) => ({ flags: ["--source-url", `https://localhost:${fv.port}${LOGS}`, "--source-cacert", pki.chainPath] }));
  });

  test("SOURCE_CACERT from the environment", async () => {
    await expectVerified("via env", (fv) => ({ flags: ["--source-url", `${fv.url}${LOGS}`], env: { SOURCE_CACERT: pki.caPath } }));
  });

  test("a wrong CA fails and retries; nothing arrives", async () => {
    const fv = vigild({ tls: pki, handler: sequence(chunks(["must not arrive\n"])) });
    const rx = await receiver();
    const relay = relayTo(rx, ["--source-url", `${fv.url}${LOGS}`, "--source-cacert", pki.otherCaPath]);
    const warn = await relay.stderr.waitFor("source stream failed");
    expect(warn).toContain("WARN");
    await waitUntil(async () => (await metric(relay, "source_reconnects_total", 'cause="error"')) >= 3, 10_000, "three failed TLS attempts");
    expect(fv.requests.length).toBe(0);
    expect(rx.lineCount).toBe(0);
    expect(relay.proc.exitCode).toBeNull();
  });

  test("no CA at all fails (the test CA is not a system CA)", async () => {
    const fv = vigild({ tls: pki, handler: sequence(chunks(["must not arrive\n"])) });
    const rx = await receiver();
    const relay = relayTo(rx, ["--source-url", `${fv.url}${LOGS}`]);
    expect(await relay.stderr.waitFor("source stream failed")).toContain("certificate");
    await waitUntil(async () => (await metric(relay, "source_reconnects_total", 'cause="error"')) >= 2, 10_000, "two failed TLS attempts");
    expect(fv.requests.length).toBe(0);
  });

  test("without --source-cacert the system CA store is trusted (SSL_CERT_FILE names it here), as the reference's client does", async () => {
    await expectVerified("system store ok", (fv) => ({ flags: ["--source-url", `${fv.url}${LOGS}`], env: { SSL_CERT_FILE: pki.caPath } }));
  });

  test("--source-cacert adds to the system store, as the reference's client adds a root: a server the store trusts still verifies", async () => {
    await expectVerified("added, not replaced", (fv) => ({
      flags: ["--source-url", `${fv.url}${LOGS}`, "--source-cacert", pki.otherCaPath],
      env: { SSL_CERT_FILE: pki.caPath },
    }));
  });

  test("--source-insecure skips verification", async () => {
    await expectVerified("insecure ok", (fv) => ({ flags: ["--source-url", `${fv.url}${LOGS}`, "--source-insecure"] }));
  });
});

describe("Unix socket (--source-socket / --source-path)", () => {
  test("default path, chunked body decoded, same framing", async () => {
    const path = join(tempDir(), "vigild.sock");
    const parts = ["alpha\r\nbe", "ta\n: keepalive\n", "data: gamma\n\n", "x".repeat(70_000) + "\n", "last"];
    const fv = vigild({ unix: path, handler: sequence(chunks(parts), sentinel) });
    const rx = await receiver();
    relayTo(rx, ["--source-socket", path]);
    await expectExactly(rx, ["alpha", "beta", "gamma", "x".repeat(70_000), "last"]);
    expect(fv.requests[0]?.path).toBe(LOGS);
  });

  test("--source-path is the request target; many lines", async () => {
    const path = join(tempDir(), "vigild.sock");
    const fv = vigild({ unix: path, handler: sequence({ steps: [{ lines: 20_000 }, { close: "end" }] }, sentinel) });
    const rx = await receiver();
    relayTo(rx, ["--source-socket", path, "--source-path", "/v1/logs/follow?format=sse&services=relay"]);
    await expectExactly(rx, expectedLines(20_000));
    expect(fv.requests[0]?.path).toBe("/v1/logs/follow?format=sse&services=relay");
  });

  test("a socket that goes away and comes back: reconnects", async () => {
    const dir = tempDir();
    const path = join(dir, "vigild.sock");
    const first = vigild({ unix: path, handler: sequence(chunks(["one\n"], "hang")) });
    const rx = await receiver();
    const relay = relayTo(rx, ["--source-socket", path]);
    expect(await rx.waitForLines(1)).toEqual(["one"]);
    await first.stop();
    await relay.stderr.waitFor("source stream failed");
    const second = vigild({ unix: path, handler: sequence(chunks(["two\n"]), sentinel) });
    await expectExactly(rx, ["one", "two"]);
    expect(second.requests.length).toBeGreaterThanOrEqual(1);
  });
});
