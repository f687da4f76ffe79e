/**
 * The proxy flags end to end, through the HTTP CONNECT / forward proxy fixture:
 * --source-proxy (http and https targets), HTTP_PROXY / HTTPS_PROXY,
 * NO_PROXY / --source-no-proxy bypasses, and an https proxy.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { startConnectProxy, type ConnectProxy, type ConnectProxyOptions } from "../fixtures/connect-proxy.ts";
import { startFakeVigild, type FakeVigild, type FakeVigildOptions } from "../fixtures/fake-vigild.ts";
import { startTcpReceiver, type TcpReceiver } from "../fixtures/tcp-receiver.ts";
import { makePki } from "../fixtures/tls.ts";
import { chunks, cleanup, startRelay, track } from "./helpers.ts";

afterEach(cleanup);

const pki = makePki();
const PATH = "/v1/logs/follow?format=ndjson";

function vigild(opts: Omit<FakeVigildOptions, "handler">): FakeVigild {
  return track(startFakeVigild({ ...opts, handler: (req) => (req.index === 0 ? chunks(["via-proxy-test\n"], "hang") : { steps: [{ hang: true }] }) }));
}

async function proxy(opts: ConnectProxyOptions = {}): Promise<ConnectProxy> {
  return track(await startConnectProxy(opts));
}

async function receiver(): Promise<TcpReceiver> {
  return track(await startTcpReceiver());
}

async function expectLine(rx: TcpReceiver): Promise<void> {
  expect(await rx.waitForLines(1, 10_000)).toEqual(["via-proxy-test"]);
}

describe("--source-proxy", () => {
  test("http target: an absolute-URI request through the proxy", async () => {
    const fv = vigild({});
    const px = await proxy();
    const rx = await receiver();
    startRelay(["--source-url", `${fv.url}${PATH}`, "--source-proxy", px.url, "--tcp-sink-port", String(rx.port)]);
    await expectLine(rx);
    expect(px.requests[0]?.method).toBe("GET");
    expect(px.requests[0]?.target).toBe(`${fv.url}${PATH}`);
    expect(fv.requests[0]?.path).toBe(PATH);
  });

  test("https target: a CONNECT tunnel, the target verified with --source-cacert", async () => {
    const fv = vigild({ tls: pki });
    const px = await proxy();
    const rx = await receiver();
    startRelay([
      "--source-url", `${fv.url}${PATH}`,
      "--source-proxy", px.url,
      "--source-cacert", pki.caPath,
      "--tcp-sink-port", String(rx.port),
    ]);
    await expectLine(rx);
    expect(px.requests[0]).toMatchObject({ method: "CONNECT", target: `127.0.0.1:${fv.port}` });
  });

  test("host:port without a scheme is taken as http:// (as reqwest does)", async () => {
    const fv = vigild({});
    const px = await proxy();
    const rx = await receiver();
    startRelay(["--source-url", `${fv.url}${PATH}`, "--source-proxy", `127.0.0.1:${px.port}`, "--tcp-sink-port", String(rx.port)]);
    await expectLine(rx);
    expect(px.requests.length).toBe(1);
  });

  test("--source-proxy wins over HTTP_PROXY", async () => {
    const fv = vigild({});
    const px = await proxy();
    const other = await proxy();
    const rx = await receiver();
    startRelay(["--source-url", `${fv.url}${PATH}`, "--source-proxy", px.url, "--tcp-sink-port", String(rx.port)], {
      env: { HTTP_PROXY: other.url },
    });
    await expectLine(rx);
    expect(px.requests.length).toBe(1);
    expect(other.requests.length).toBe(0);
  });

  test("an https proxy verified with --source-proxy-cacert (http target)", async () => {
    const fv = vigild({});
    const px = await proxy({ tls: pki });
    const rx = await receiver();
    startRelay([
      "--source-url", `${fv.url}${PATH}`,
      "--source-proxy", px.url,
      "--source-proxy-cacert", pki.caPath,
      "--tcp-sink-port", String(rx.port),
    ]);
    await expectLine(rx);
    expect(px.url).toStartWith("https://");
    expect(px.requests.length).toBe(1);
  });

  test("an https proxy to an https target (--source-proxy-cacert and --source-cacert)", async () => {
    const fv = vigild({ tls: pki });
    const px = await proxy({ tls: pki });
    const rx = await receiver();
    startRelay([
      "--source-url", `${fv.url}${PATH}`,
      "--source-proxy", px.url,
      "--source-proxy-cacert", pki.caPath,
      "--source-cacert", pki.caPath,
      "--tcp-sink-port", String(rx.port),
    ]);
    await expectLine(rx);
    expect(px.requests[0]).toMatchObject({ method: "CONNECT", target: `127.0.0.1:${fv.port}` });
  });

  test("an https proxy with --source-proxy-insecure (http target)", async () => {
    const fv = vigild({});
    const px = await proxy({ tls: pki });
    const rx = await receiver();
    startRelay(["--source-url", `${fv.url}${PATH}`, "--source-proxy", px.url, "--source-proxy-insecure", "--tcp-sink-port", String(rx.port)]);
    await expectLine(rx);
    expect(px.requests.length).toBe(1);
  });

  test("an https proxy whose CA is not given fails and retries", async () => {
    const fv = vigild({});
    const px = await proxy({ tls: pki });
    const rx = await receiver();
    const relay = startRelay(["--source-url", `${fv.url}${PATH}`, "--source-proxy", px.url, "--tcp-sink-port", String(rx.port)]);
    await relay.stderr.waitFor("source stream failed");
    expect(fv.requests.length).toBe(0);
    expect(rx.lineCount).toBe(0);
  });
});

/**
 * A TLS-intercepting proxy re-signs every target with its own CA. Simulated
 * here by a target whose certificate that CA signed, reached through the
 * plain CONNECT proxy: what the relay sees is the same.
 */
describe("a TLS-intercepting proxy", () => {
  const proxyCa = makePki();

  test("--source-proxy-cacert is trusted for targets reached through the proxy (as the reference trusts it), not for direct ones", async () => {
    const fv = vigild({ tls: proxyCa });
    const px = await proxy();
    const rx = await receiver();
    const flags = ["--source-url", `${fv.url}${PATH}`, "--source-proxy", px.url, "--source-proxy-cacert", proxyCa.caPath, "--tcp-sink-port", String(rx.port)];
    const direct = startRelay([...flags, "--source-no-proxy", "127.0.0.1"]);
    expect(await direct.stderr.waitFor("source stream failed")).toContain("certificate");
    expect(fv.requests.length).toBe(0);
    direct.proc.kill();
    await direct.exited;
    startRelay(flags);
    await expectLine(rx);
    expect(px.requests[0]).toMatchObject({ method: "CONNECT", target: `127.0.0.1:${fv.port}` });
  });

  test("--source-proxy-insecure: targets through the proxy are not verified either; direct ones still are", async () => {
    const fv = vigild({ tls: proxyCa });
    const px = await proxy();
    const rx = await receiver();
    const flags = ["--source-url", `${fv.url}${PATH}`, "--source-proxy", px.url, "--source-proxy-insecure", "--tcp-sink-port", String(rx.port)];
    const direct = startRelay([...flags, "--source-no-proxy", "127.0.0.1"]);
    expect(await direct.stderr.waitFor("source stream failed")).toContain("certificate");
    direct.proc.kill();
    await direct.exited;
    startRelay(flags);
    await expectLine(rx);
  });
});

describe("HTTP_PROXY / HTTPS_PROXY / NO_PROXY", () => {
  test("HTTP_PROXY is honoured for an http target", async () => {
    const fv = vigild({});
    const px = await proxy();
    const rx = await receiver();
    startRelay(["--source-url", `${fv.url}${PATH}`, "--tcp-sink-port", String(rx.port)], { env: { HTTP_PROXY: px.url } });
    await expectLine(rx);
    expect(px.requests[0]?.method).toBe("GET");
  });

  test("lower-case http_proxy is honoured too", async () => {
    const fv = vigild({});
    const px = await proxy();
    const rx = await receiver();
    startRelay(["--source-url", `${fv.url}${PATH}`, "--tcp-sink-port", String(rx.port)], { env: { http_proxy: px.url } });
    await expectLine(rx);
    expect(px.requests.length).toBe(1);
  });

  test("HTTPS_PROXY is honoured for an https target (and HTTP_PROXY is not used for it)", async () => {
    const fv = vigild({ tls: pki });
    const px = await proxy();
    const wrong = await proxy();
    const rx = await receiver();
    startRelay(["--source-url", `${fv.url}${PATH}`, "--source-cacert", pki.caPath, "--tcp-sink-port", String(rx.port)], {
      env: { HTTPS_PROXY: px.url, HTTP_PROXY: wrong.url },
    });
    await expectLine(rx);
    expect(px.requests[0]?.method).toBe("CONNECT");
    expect(wrong.requests.length).toBe(0);
  });

  test("NO_PROXY with the host bypasses HTTP_PROXY", async () => {
    const fv = vigild({});
    const px = await proxy();
    const rx = await receiver();
    startRelay(["--source-url", `${fv.url}${PATH}`, "--tcp-sink-port", String(rx.port)], {
      env: { HTTP_PROXY: px.url, NO_PROXY: "example.com,127.0.0.1" },
    });
    await expectLine(rx);
    expect(px.requests.length).toBe(0);
    expect(px.connections).toBe(0);
  });

  test("NO_PROXY with an IPv4 CIDR bypasses HTTPS_PROXY", async () => {
    const fv = vigild({ tls: pki });
    const px = await proxy();
    const rx = await receiver();
    startRelay(["--source-url", `${fv.url}${PATH}`, "--source-cacert", pki.caPath, "--tcp-sink-port", String(rx.port)], {
      env: { HTTPS_PROXY: px.url, NO_PROXY: "10.0.0.0/8, 127.0.0.0/8" },
    });
    await expectLine(rx);
    expect(px.connections).toBe(0);
  });

  test("NO_PROXY with a .suffix domain bypasses the proxy (the bare domain matches too)", async () => {
    const fv = vigild({});
    const px = await proxy();
    const rx = await receiver();
    // "localhost" matches the entry ".localhost" (the bare domain matches its own .suffix)
    startRelay(["--source-url", `http://localhost:${fv.port}${PATH}`, "--tcp-sink-port", String(rx.port)], {
      env: { HTTP_PROXY: px.url, NO_PROXY: ".localhost" },
    });
    await expectLine(rx);
    expect(px.connections).toBe(0);
  });

  test("NO_PROXY with an IPv6 CIDR bypasses the proxy for an [::1] target", async () => {
    const fv = track(startFakeVigild({ host: "::1", handler: () => chunks(["via-proxy-test\n"], "hang") }));
    const px = await proxy();
    const rx = await receiver();
    startRelay(["--source-url", `${fv.url}${PATH}`, "--tcp-sink-port", String(rx.port)], {
      env: { HTTP_PROXY: px.url, NO_PROXY: "fd00::/8,::1/128" },
    });
    await expectLine(rx);
    expect(px.connections).toBe(0);
  });

  test("--source-no-proxy bypasses --source-proxy (and replaces NO_PROXY)", async () => {
    const fv = vigild({});
    const px = await proxy();
    const rx = await receiver();
    startRelay(["--source-url", `${fv.url}${PATH}`, "--source-proxy", px.url, "--source-no-proxy", "127.0.0.1/32", "--tcp-sink-port", String(rx.port)], {
      env: { NO_PROXY: "example.org" },
    });
    await expectLine(rx);
    expect(px.connections).toBe(0);
  });

  test("a NO_PROXY that does not match leaves the proxy in use", async () => {
    const fv = vigild({});
    const px = await proxy();
    const rx = await receiver();
    startRelay(["--source-url", `${fv.url}${PATH}`, "--tcp-sink-port", String(rx.port)], {
      env: { HTTP_PROXY: px.url, NO_PROXY: "10.0.0.0/8,.example.com,::1" },
    });
    await expectLine(rx);
    expect(px.requests.length).toBe(1);
  });
});
