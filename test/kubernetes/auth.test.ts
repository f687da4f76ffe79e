/**
 * Credentials and RBAC in Kubernetes mode: 401/403 on the first list (exit 2,
 * one line naming the Role), 403 for one pod's log only, token rotation through
 * a kubeconfig tokenFile, an exec credential plugin and the in-cluster service
 * account; a broken plugin at start (exit 2, one line).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Generator } from "../fixtures/fake-kube/index.ts";
import { addPods, cleanup, expectOneErrorLine, kubeEnv, runRelay, startKubeRelay, startRelay, tempDir, waitForStreams, waitUntil, warnings, type KubeEnv } from "./helpers.ts";

afterEach(cleanup);

const SA_ROOT = "/var/run/secrets";
const SA_DIR = join(SA_ROOT, "kubernetes.io", "serviceaccount");

/**
 * An exec credential plugin like `aws eks get-token`: prints an ExecCredential
 * with the token in `tokenFile`, or, while `fail(text)` is in force, prints
 * the text on stderr and exits 1; every run appends a line to `calls` and
 * keeps the KUBERNETES_EXEC_INFO it was given.
 */
function writeExecPlugin(dir: string, token: string) {
  const command = join(dir, "get-token");
  const tokenFile = join(dir, "plugin-token");
  const callsFile = join(dir, "plugin-calls");
  const failFile = join(dir, "plugin-fails");
  const infoFile = join(dir, "plugin-exec-info");
  writeFileSync(tokenFile, token);
  writeFileSync(
    command,
    [
      "#!/bin/sh",
      'printf "%s" "$KUBERNETES_EXEC_INFO" > "$INFO_FILE"',
      'echo run >> "$CALLS"',
      'if [ -f "$FAIL_FILE" ]; then cat "$FAIL_FILE" >&2; exit 1; fi',
      `printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}\\n' "$(cat "$TOKEN_FILE")"`,
      "",
    ].join("\n"),
  );
  chmodSync(command, 0o755);
  return {
    command,
    tokenFile,
    calls: (): number => (existsSync(callsFile) ? readFileSync(callsFile, "utf8").split("\n").filter((l) => l !== "").length : 0),
    fail: (text: string | null): void => (text === null ? rmSync(failFile, { force: true }) : writeFileSync(failFile, `${text}\n`)),
    /** KUBERNETES_EXEC_INFO as the last run saw it */
    execInfo: (): unknown => JSON.parse(readFileSync(infoFile, "utf8")),
    env: { TOKEN_FILE: tokenFile, CALLS: callsFile, FAIL_FILE: failFile, INFO_FILE: infoFile },
  };
}

/** `n` pods named `${base}-i` logging 100 lines/s, streamed by a relay whose kubeconfig uses an exec plugin. */
async function streamWithPlugin(base: string, n: number) {
  const env = await kubeEnv();
  const { kube, ns } = env;
  const plugin = writeExecPlugin(env.dir, kube.token);
  kube.writeKubeconfig(env.kubeconfig, { namespace: ns, exec: { command: plugin.command, env: plugin.env } });
  const pods = addPods(kube, ns, base, n);
  const relay = startKubeRelay(env);
  await waitForStreams(kube, n);
  const gens = pods.map((p) => kube.startGenerator(ns, p, "app", { linesPerSecond: 100 }));
  return { env, kube, plugin, relay, gens };
}

/**
 * After the credentials changed: every stream and the watch are back, each
 * generator (pod `${base}-i`) writes 100 more lines, and every line of each
 * arrived exactly once, in order.
 */
async function expectResumedWithoutLoss(env: KubeEnv, gens: Generator[], base: string): Promise<void> {
  const { kube } = env;
  await waitForStreams(kube, gens.length, 40_000);
  await kube.waitFor(() => kube.activeWatches() === 1, { timeoutMs: 20_000, message: "the watch with the new credentials" });
  const marks = gens.map((g) => g.seq);
  await kube.waitFor(() => gens.every((g, i) => g.seq >= (marks[i] ?? 0) + 100), { timeoutMs: 20_000, message: "lines after the change" });
  kube.stopAllGenerators();
  await env.records.expectExactly(new Map(gens.map((g, i) => [`${base}-${i + 1}-app`, g.seq])), 30_000);
}

describe("kubernetes: credentials and RBAC", () => {
  test("403 on the first list: exit 2, one stderr line quoting the API and naming the Role", async () => {
    const env = await kubeEnv();
    const { kube, ns } = env;
    addPods(kube, ns, "p", 2);
    const user = `system:serviceaccount:${ns}:relay`;
    kube.addToken({ token: "no-list", user, namespaces: [ns], allow: ["log", "get"] });
    kube.writeKubeconfig(env.kubeconfig, { namespace: ns, token: "no-list" });
    const r = await runRelay(["--kubernetes", "--namespace", ns, "--tcp-sink-port", String(env.rx.port)], {
      env: { KUBECONFIG: env.kubeconfig, HOME: env.dir },
      timeoutMs: 20_000,
    });
    expect(r.code).toBe(2);
    const line = expectOneErrorLine(r.stderr);
    expect(line).toContain("Role");
    expect(line).toContain(`"${ns}"`);
    expect(line).toContain(`cannot list resource "pods"`);
    expect(line).toContain("pods/log");
    expect(r.stdout).toBe("");
    expect(kube.requestCount("log")).toBe(0);
  }, 30_000);

  test("401 on the first list: exit 2, one stderr line", async () => {
    const env = await kubeEnv();
    env.kube.writeKubeconfig(env.kubeconfig, { namespace: env.ns, token: "nobody-knows-this-token" });
    const r = await runRelay(["--kubernetes", "--namespace", env.ns, "--tcp-sink-port", String(env.rx.port)], {
      env: { KUBECONFIG: env.kubeconfig, HOME: env.dir },
      timeoutMs: 20_000,
    });
    expect(r.code).toBe(2);
    const line = expectOneErrorLine(r.stderr);
    expect(line).toContain("401");
    // One list, one list after reloading the credentials: no loop.
    expect(env.kube.requestCount("list")).toBeLessThanOrEqual(2);
  }, 30_000);

  test("403 for one pod's log only: the other pods stream, the relay keeps running", async () => {
    const env = await kubeEnv();
    const { kube, ns } = env;
    addPods(kube, ns, "open", 3);
    kube.addPod({ namespace: ns, name: "secret", containers: [{ name: "app" }] });
    kube.addToken({ token: "relay-sa", user: `system:serviceaccount:${ns}:relay`, namespaces: [ns], allow: ["list", "watch", "get", "log"], denyPods: ["secret"] });
    kube.writeKubeconfig(env.kubeconfig, { namespace: ns, token: "relay-sa" });
    const relay = startKubeRelay(env);
    await waitForStreams(kube, 3);
    const gens = ["open-1", "open-2", "open-3", "secret"].map((p) => kube.startGenerator(ns, p, "app", { linesPerSecond: 100 }));
    await env.records.waitComplete(
      new Map([
        ["open-1-app", 200],
        ["open-2-app", 200],
        ["open-3-app", 200],
      ]),
      20_000,
    );
    kube.stopAllGenerators();
    await env.records.expectExactly(
      new Map([
        ["open-1-app", gens[0]?.seq ?? -1],
        ["open-2-app", gens[1]?.seq ?? -1],
        ["open-3-app", gens[2]?.seq ?? -1],
      ]),
    );
    expect(env.records.of("secret").length).toBe(0);
    expect(relay.proc.exitCode).toBeNull();
    const denied = kube.requests.filter((r) => r.endpoint === "log" && r.path.includes("/pods/secret/"));
    expect(denied.length).toBeGreaterThanOrEqual(1);
    expect(denied.every((r) => r.status === 403)).toBe(true);
    // Backoff, not a storm: ~2 s of running allows a handful of attempts.
    expect(denied.length).toBeLessThanOrEqual(6);
    const warned = warnings(relay).filter((l) => l.includes("secret"));
    expect(warned.length).toBe(1);
    expect(warned[0]).toContain("pods/log");
  }, 60_000);

  test("token rotation through a kubeconfig tokenFile: 401 -> reload -> the streams continue", async () => {
    const env = await kubeEnv();
    const { kube, ns } = env;
    const tokenFile = join(env.dir, "token");
    kube.writeKubeconfig(env.kubeconfig, { namespace: ns, tokenFile });
    addPods(kube, ns, "rot", 3);
    const relay = startKubeRelay(env);
    await waitForStreams(kube, 3);
    const gens = ["rot-1", "rot-2", "rot-3"].map((p) => kube.startGenerator(ns, p, "app", { linesPerSecond: 100 }));
    await env.records.waitComplete(new Map([["rot-1-app", 50]]), 20_000, "lines before the rotation");
    kube.rotateToken(kube.token);
    // Every request from now on needs the new token: streams and watch end and come back.
    kube.closeAllLogStreams();
    kube.closeAllWatches();
    const at = Date.now();
    await kube.waitFor(() => kube.requests.some((r) => r.at >= at && r.endpoint === "log" && r.status === 401), {
      timeoutMs: 20_000,
      message: "a request with the old token",
    });
    await expectResumedWithoutLoss(env, gens, "rot");
    // A new pod after the rotation is found by the re-established watch.
    kube.addPod({ namespace: ns, name: "late", containers: [{ name: "app" }] });
    kube.appendLog(ns, "late", "app", ["late-app-1", "late-app-2"]);
    await env.records.waitComplete(new Map([["late-app", 2]]), 20_000);
    const refused = kube.requests.filter((r) => r.at >= at && r.status === 401).length;
    expect(refused).toBeLessThanOrEqual(10);
    expect(relay.proc.exitCode).toBeNull();
  }, 60_000);

  test("exec credential plugin: its token is used, run once, and run again after a 401 when the token rotates; no line lost", async () => {
    const { env, kube, plugin, relay, gens } = await streamWithPlugin("ex", 3);
    await env.records.waitComplete(new Map([["ex-1-app", 50]]), 20_000, "lines before the rotation");
    // One run serves the list, the watch and every stream (credentials are derived once and shared).
    expect(plugin.calls()).toBe(1);
    const next = kube.rotateToken(kube.token);
    writeFileSync(plugin.tokenFile, next);
    kube.closeAllLogStreams();
    kube.closeAllWatches();
    const at = Date.now();
    await kube.waitFor(() => kube.requests.some((r) => r.at >= at && r.status === 401), { timeoutMs: 20_000, message: "a request with the old token" });
    await expectResumedWithoutLoss(env, gens, "ex");
    // Re-run on the 401s (at most one reload a second), not once per request.
    expect(plugin.calls()).toBeGreaterThanOrEqual(2);
    expect(plugin.calls()).toBeLessThanOrEqual(5);
    expect(relay.proc.exitCode).toBeNull();
  }, 60_000);

  test("exec credential plugin failing after start (token rotated, SSO expired): one warning naming the plugin, retries, no line lost once it works again", async () => {
    const { env, kube, plugin, relay, gens } = await streamWithPlugin("sso", 2);
    await env.records.waitComplete(new Map([["sso-1-app", 20]]), 20_000, "lines before the rotation");
    plugin.fail("error: the SSO session has expired; run aws sso login");
    const next = kube.rotateToken(kube.token);
    kube.closeAllLogStreams();
    kube.closeAllWatches();
    await waitUntil(() => warnings(relay).some((l) => l.includes("the SSO session has expired")), 20_000, "the credentials warning");
    const warned = warnings(relay).filter((l) => l.includes("credentials"));
    expect(warned[0]).toContain(plugin.command);
    writeFileSync(plugin.tokenFile, next);
    plugin.fail(null);
    await expectResumedWithoutLoss(env, gens, "sso");
    // Rate limited: one warning for the list, the watch and both streams together.
    expect(warnings(relay).filter((l) => l.includes("the SSO session has expired")).length).toBeLessThanOrEqual(2);
    expect(relay.proc.exitCode).toBeNull();
  }, 90_000);

  test("exec credential plugin named relative to the kubeconfig (./bin/get-token) runs from the kubeconfig's directory, as kubectl runs it", async () => {
    const env = await kubeEnv();
    const { kube, ns } = env;
    const binDir = join(env.dir, "bin");
    mkdirSync(binDir);
    const plugin = writeExecPlugin(binDir, kube.token);
    kube.writeKubeconfig(env.kubeconfig, { namespace: ns, exec: { command: "./bin/get-token", env: plugin.env } });
    kube.addPod({ namespace: ns, name: "rel", containers: [{ name: "app" }] });
    kube.appendLog(ns, "rel", "app", ["rel-app-1", "rel-app-2"]);
    // The relay's working directory is not the kubeconfig's.
    const relay = startKubeRelay(env, [], { cwd: tempDir("vigil-k8s-cwd-") });
    await env.records.expectExactly(new Map([["rel-app", 2]]), 20_000);
    expect(plugin.calls()).toBe(1);
    expect(relay.proc.exitCode).toBeNull();
  }, 30_000);

  test("exec credential plugin gets KUBERNETES_EXEC_INFO as kubectl gives it: its apiVersion, not interactive, the cluster with provideClusterInfo", async () => {
    const env = await kubeEnv();
    const { kube, ns } = env;
    const plugin = writeExecPlugin(env.dir, kube.token);
    const exec = { command: plugin.command, env: plugin.env, apiVersion: "client.authentication.k8s.io/v1beta1" };
    kube.writeKubeconfig(env.kubeconfig, { namespace: ns, exec: { ...exec, provideClusterInfo: true } });
    kube.addPod({ namespace: ns, name: "info", containers: [{ name: "app" }] });
    kube.appendLog(ns, "info", "app", ["info-app-1"]);
    const relay = startKubeRelay(env);
    await env.records.expectExactly(new Map([["info-app", 1]]), 20_000);
    expect(plugin.execInfo()).toEqual({
      apiVersion: "client.authentication.k8s.io/v1beta1",
      kind: "ExecCredential",
      spec: { interactive: false, cluster: { server: kube.url, "certificate-authority-data": Buffer.from(kube.caPem).toString("base64") } },
    });
    relay.proc.kill("SIGTERM");
    await relay.exited;
    // Without provideClusterInfo, no cluster.
    kube.writeKubeconfig(env.kubeconfig, { namespace: ns, exec });
    const again = startKubeRelay(env);
    // The info is written before the run is counted.
    await kube.waitFor(() => plugin.calls() === 2, { timeoutMs: 20_000, message: "the second relay's plugin run" });
    expect(plugin.execInfo()).toEqual({ apiVersion: "client.authentication.k8s.io/v1beta1", kind: "ExecCredential", spec: { interactive: false } });
    expect(again.proc.exitCode).toBeNull();
  }, 40_000);

  test("exec credential plugin failing at start: exit 2, one line naming the plugin and quoting its stderr", async () => {
    const env = await kubeEnv();
    const plugin = writeExecPlugin(env.dir, env.kube.token);
    plugin.fail("error: You must be logged in to the server (the SSO session has expired)");
    env.kube.writeKubeconfig(env.kubeconfig, { namespace: env.ns, exec: { command: plugin.command, env: plugin.env } });
    const r = await runRelay(["--kubernetes", "--namespace", env.ns, "--tcp-sink-port", String(env.rx.port)], {
      env: { KUBECONFIG: env.kubeconfig, HOME: env.dir },
      timeoutMs: 20_000,
    });
    expect(r.code).toBe(2);
    const line = expectOneErrorLine(r.stderr);
    expect(line).toContain(JSON.stringify(plugin.command));
    expect(line).toContain("You must be logged in to the server (the SSO session has expired)");
    expect(env.kube.requestCount("list")).toBe(0);
  }, 30_000);

  test("exec credential plugin missing, or printing no credential: exit 2, one line each", async () => {
    const env = await kubeEnv();
    const missing = join(env.dir, "no-such-plugin");
    env.kube.writeKubeconfig(env.kubeconfig, { namespace: env.ns, exec: { command: missing } });
    const flags = ["--kubernetes", "--namespace", env.ns, "--tcp-sink-port", String(env.rx.port)];
    const runOpts = { env: { KUBECONFIG: env.kubeconfig, HOME: env.dir }, timeoutMs: 20_000 };
    const r1 = await runRelay(flags, runOpts);
    expect(r1.code).toBe(2);
    const line1 = expectOneErrorLine(r1.stderr);
    expect(line1).toContain(JSON.stringify(missing));
    expect(line1).toContain("was not found");
    env.kube.writeKubeconfig(env.kubeconfig, { namespace: env.ns, exec: { command: "/bin/true" } });
    const r2 = await runRelay(flags, runOpts);
    expect(r2.code).toBe(2);
    expect(expectOneErrorLine(r2.stderr)).toContain("printed no ExecCredential JSON");
    expect(env.kube.requestCount("list")).toBe(0);
  }, 30_000);

  test("in-cluster service account (a stale KUBECONFIG, no ~/.kube): namespace from the file, token rotation, HTTPS_PROXY not used", async () => {
    if (existsSync(SA_ROOT)) {
      console.warn(`skipped: ${SA_ROOT} exists on this machine; the in-cluster test only creates (and removes) it itself`);
      return;
    }
    try {
      mkdirSync(SA_ROOT, { recursive: true });
    } catch (e) {
      console.warn(`skipped: cannot create ${SA_ROOT} (${e instanceof Error ? e.message : String(e)}); the in-cluster test needs it`);
      return;
    }
    try {
      const env = await kubeEnv();
      const { kube, ns } = env;
      const sa = kube.writeServiceAccount(SA_DIR, { namespace: ns });
      addPods(kube, ns, "ic", 2);
      const home = tempDir("vigil-k8s-home-");
      // A pod's proxy variables are for the outside world: in-cluster, the API is reached
      // directly (as the reference does); this proxy does not exist.
      const relay = startRelay(["--kubernetes", "--tcp-sink-port", String(env.rx.port)], {
        // A stale KUBECONFIG in the pod falls back to the service account (one warning), as the reference's client does.
        env: { ...sa.env, KUBECONFIG: join(home, "no-such-kubeconfig"), HOME: home, HTTPS_PROXY: "http://127.0.0.1:1", HTTP_PROXY: "http://127.0.0.1:1" },
      });
      await waitForStreams(kube, 2);
      kube.appendLog(ns, "ic-1", "app", ["ic-1-app-1", "ic-1-app-2"]);
      await env.records.waitComplete(new Map([["ic-1-app", 2]]), 20_000);
      expect(relay.stderr.text).toContain(`namespace=${ns}`);
      expect(warnings(relay).filter((l) => l.includes("using the in-cluster service account"))).toHaveLength(1);
      kube.rotateToken(kube.token);
      kube.closeAllLogStreams();
      kube.closeAllWatches();
      await waitForStreams(kube, 2);
      kube.appendLog(ns, "ic-1", "app", ["ic-1-app-3"]);
      kube.appendLog(ns, "ic-2", "app", ["ic-2-app-1"]);
      await env.records.expectExactly(
        new Map([
          ["ic-1-app", 3],
          ["ic-2-app", 1],
        ]),
        20_000,
      );
      await kube.waitFor(() => kube.activeWatches() === 1, { timeoutMs: 20_000, message: "the watch with the new token" });
      expect(relay.proc.exitCode).toBeNull();
    } finally {
      await cleanup();
      rmSync(SA_ROOT, { recursive: true, force: true });
    }
  }, 60_000);
});
