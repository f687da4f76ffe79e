/**
 * Credentials and RBAC in Kubernetes mode: 401/403 on the first list (exit 2,
 * one line naming the Role), 403 for one pod's log only, token rotation through
 * a kubeconfig tokenFile and through the in-cluster service account.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { addPods, cleanup, expectOneErrorLine, kubeEnv, runRelay, startKubeRelay, startRelay, tempDir, waitForStreams, warnings } from "./helpers.ts";

afterEach(cleanup);

const SA_ROOT = "/var/run/secrets";
const SA_DIR = join(SA_ROOT, "kubernetes.io", "serviceaccount");

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
    await waitForStreams(kube, 3);
    await kube.waitFor(() => kube.activeWatches() === 1, { timeoutMs: 20_000, message: "the watch with the new token" });
    const marks = gens.map((g) => g.seq);
    await kube.waitFor(() => gens.every((g, i) => g.seq >= (marks[i] ?? 0) + 100), { timeoutMs: 20_000, message: "lines after the rotation" });
    kube.stopAllGenerators();
    await env.records.expectExactly(new Map(gens.map((g, i) => [`rot-${i + 1}-app`, g.seq])), 30_000);
    // A new pod after the rotation is found by the re-established watch.
    kube.addPod({ namespace: ns, name: "late", containers: [{ name: "app" }] });
    kube.appendLog(ns, "late", "app", ["late-app-1", "late-app-2"]);
    await env.records.waitComplete(new Map([["late-app", 2]]), 20_000);
    const refused = kube.requests.filter((r) => r.at >= at && r.status === 401).length;
    expect(refused).toBeLessThanOrEqual(10);
    expect(relay.proc.exitCode).toBeNull();
  }, 60_000);

  test("in-cluster service account (no KUBECONFIG, no ~/.kube): namespace from the file, token rotation", async () => {
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
      const relay = startRelay(["--kubernetes", "--tcp-sink-port", String(env.rx.port)], {
        env: { ...sa.env, KUBECONFIG: undefined, HOME: home },
      });
      await waitForStreams(kube, 2);
      kube.appendLog(ns, "ic-1", "app", ["ic-1-app-1", "ic-1-app-2"]);
      await env.records.waitComplete(new Map([["ic-1-app", 2]]), 20_000);
      expect(relay.stderr.text).toContain(`namespace=${ns}`);
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
