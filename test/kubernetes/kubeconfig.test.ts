/**
 * A kubeconfig that cannot work is a start-up error: exit 2 and one stderr
 * line saying what is wrong with it (not YAML, a CA that does not verify the
 * server or is not PEM, a file it names that is missing). An API server that
 * merely refuses connections is not: the relay waits for it.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startConnectProxy } from "../fixtures/connect-proxy.ts";
import { makePki } from "../fixtures/tls.ts";
import { startFakeKube } from "../fixtures/fake-kube/index.ts";
import { startTcpReceiver } from "../fixtures/tcp-receiver.ts";
import { get } from "../integration/helpers.ts";
import { cleanup, expectOneErrorLine, kubeEnv, Records, runRelay, startKubeRelay, startRelay, tempDir, track, type KubeEnv } from "./helpers.ts";

afterEach(cleanup);

/** Rewrites env's kubeconfig with `edit`, runs the relay on it; its exit code and its one stderr line. */
async function startWith(env: KubeEnv, edit: (yaml: string) => string, extraEnv: Record<string, string> = {}): Promise<{ code: number | null; line: string }> {
  writeFileSync(env.kubeconfig, edit(readFileSync(env.kubeconfig, "utf8")));
  const r = await runRelay(["--kubernetes", "--tcp-sink-port", String(env.rx.port)], {
    env: { KUBECONFIG: env.kubeconfig, HOME: env.dir, ...extraEnv },
    timeoutMs: 20_000,
  });
  return { code: r.code, line: expectOneErrorLine(r.stderr) };
}

const CA_DATA = /certificate-authority-data: \S+/;

describe("kubernetes: the API through a proxy", () => {
  test("HTTPS_PROXY (kubeconfig mode) and --source-proxy carry the API requests through a CONNECT tunnel", async () => {
    for (const how of ["env", "flag"] as const) {
      const env = await kubeEnv();
      const { kube, ns } = env;
      kube.addPod({ namespace: ns, name: `via-${how}`, containers: [{ name: "app" }] });
      kube.appendLog(ns, `via-${how}`, "app", [`via-${how}-app-1`]);
      const px = track(await startConnectProxy());
      const relay = startKubeRelay(env, how === "flag" ? ["--source-proxy", px.url] : [], how === "env" ? { env: { HTTPS_PROXY: px.url } } : {});
      await env.records.expectExactly(new Map([[`via-${how}-app`, 1]]), 20_000);
      expect(px.requests.length).toBeGreaterThanOrEqual(2);
      expect(px.requests.every((r) => r.method === "CONNECT" && r.target === `127.0.0.1:${kube.port}`)).toBe(true);
      relay.proc.kill("SIGTERM");
      await relay.exited;
    }
  }, 60_000);
});

describe("kubernetes: kubeconfig problems at start", () => {
  test("not valid YAML: exit 2, one line naming the file and the parser's complaint (no code frame)", async () => {
    const env = await kubeEnv();
    const r = await startWith(env, () => "apiVersion: v1\nkind: Config\nclusters: [\n");
    expect(r.code).toBe(2);
    expect(r.line).toContain(`KUBECONFIG=${env.kubeconfig}`);
    expect(r.line).toMatch(/indentation|YAML|unexpected|flow/i);
  }, 30_000);

  test("a certificate authority that does not verify the server: exit 2, one line naming the TLS failure and the kubeconfig", async () => {
    const env = await kubeEnv();
    const pki = makePki();
    try {
      // SOURCE_INSECURE is for HTTP sources only (as in the reference): it does not switch the API's verification off.
      const r = await startWith(env, (y) => y.replace(CA_DATA, `certificate-authority-data: ${Buffer.from(pki.otherCaPem).toString("base64")}`), { SOURCE_INSECURE: "true" });
      expect(r.code).toBe(2);
      expect(r.line).toContain(`cannot list pods in namespace "${env.ns}"`);
      expect(r.line).toContain("TLS handshake");
      expect(r.line).toContain("certificate authority");
      expect(r.line).toContain(`KUBECONFIG=${env.kubeconfig}`);
    } finally {
      rmSync(pki.dir, { recursive: true, force: true });
    }
    expect(env.kube.requestCount("list")).toBe(0);
  }, 30_000);

  test("certificate-authority-data that is not PEM: exit 2, one line saying so", async () => {
    const env = await kubeEnv();
    const r = await startWith(env, (y) => y.replace(CA_DATA, `certificate-authority-data: ${Buffer.from("not a certificate").toString("base64")}`));
    expect(r.code).toBe(2);
    expect(r.line).toContain("certificate authority");
    expect(r.line).toContain("no PEM certificate");
  }, 30_000);

  test("a certificate-authority or client-certificate file that is missing: exit 2, one line naming the file", async () => {
    const env = await kubeEnv();
    const caFile = join(env.dir, "missing-ca.crt");
    const r1 = await startWith(env, (y) => y.replace(CA_DATA, `certificate-authority: ${caFile}`));
    expect(r1.code).toBe(2);
    expect(r1.line).toContain(`cannot read ${caFile}`);
    expect(r1.line).toContain("no such file");
    const env2 = await kubeEnv();
    const certFile = join(env2.dir, "missing-client.crt");
    const r2 = await startWith(env2, (y) => y.replace("  user:\n", `  user:\n    client-certificate: ${certFile}\n    client-key: ${certFile}.key\n`));
    expect(r2.code).toBe(2);
    expect(r2.line).toContain(`cannot read ${certFile}`);
  }, 30_000);

  test("an API server that is not up yet is waited for, not an error: the relay streams once it listens", async () => {
    const spare = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = spare.port;
    spare.stop(true);
    const rx = track(await startTcpReceiver());
    const records = new Records(rx);
    const dir = tempDir("vigil-k8s-late-");
    const kubeconfig = join(dir, "kubeconfig");
    const ns = "late-api";
    writeFileSync(
      kubeconfig,
      [
        "apiVersion: v1",
        "kind: Config",
        `clusters: [{name: late, cluster: {server: "http://127.0.0.1:${port}"}}]`,
        'users: [{name: late, user: {token: "late-token"}}]',
        `contexts: [{name: late, context: {cluster: late, user: late, namespace: ${ns}}}]`,
        "current-context: late",
        "",
      ].join("\n"),
    );
    const relay = startRelay(["--kubernetes", "--tcp-sink-port", String(rx.port), "--healthcheck-max-age", "1", "--watch-interval", "1"], {
      env: { KUBECONFIG: kubeconfig, HOME: dir },
    });
    await relay.stderr.waitFor("listing pods failed, retrying", 20_000);
    expect(relay.proc.exitCode).toBeNull();
    // The loop is alive, retrying: /healthz stays fresh over three max-ages (a
    // restart would not bring the API server back), as the reference's does.
    const health = `${await relay.healthUrl()}/healthz`;
    for (const until = Date.now() + 3_000; Date.now() < until; await Bun.sleep(200)) {
      expect(await get(health)).toEqual({ status: 200, body: "ok\n" });
    }
    const kube = await startFakeKube({ tls: false, port, defaultToken: "late-token", namespaces: [ns] });
    track({ stop: () => kube.stop() });
    kube.addPod({ namespace: ns, name: "early", containers: [{ name: "app" }] });
    kube.appendLog(ns, "early", "app", ["early-app-1", "early-app-2"]);
    await records.expectExactly(new Map([["early-app", 2]]), 30_000);
    expect(relay.proc.exitCode).toBeNull();
  }, 60_000);
});
