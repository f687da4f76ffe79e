/**
 * Many streams in Kubernetes mode: 300 pods streaming at once (more than the 256
 * concurrent requests Bun's fetch allows), from source and as the compiled
 * binary, and --max-log-requests with slot rotation (no loss, never over the cap).
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { FakeKube } from "../fixtures/fake-kube/index.ts";
import { addPods, cleanup, compiledRelay, kubeEnv, startKubeRelay, waitForStreams, type KubeEnv, type Relay } from "./helpers.ts";

afterEach(cleanup);

/**
 * 300 pods, the relay started on them; every stream open at once, then two
 * lines per pod (one before a close of every stream, one after).
 */
async function threeHundredPods(start: (env: KubeEnv) => Relay): Promise<void> {
  const env = await kubeEnv();
  const { kube, ns } = env;
  const pods = addPods(kube, ns, "many", 300);
  const relay = start(env);
  await waitForStreams(kube, 300, 60_000);
  expect(kube.activeLogStreams()).toBe(300);
  for (const p of pods) kube.appendLog(ns, p, "app", [`${p}-app-1`]);
  const expected1 = new Map(pods.map((p) => [`${p}-app`, 1]));
  await env.records.expectExactly(expected1, 60_000);
  kube.closeAllLogStreams();
  await waitForStreams(kube, 300, 60_000);
  for (const p of pods) kube.appendLog(ns, p, "app", [`${p}-app-2`]);
  await env.records.expectExactly(new Map(pods.map((p) => [`${p}-app`, 2])), 60_000);
  expect(relay.proc.exitCode).toBeNull();
}

/**
 * Tracks the most log streams open at once at the fake: waitFor re-checks its
 * predicate on every change there (each stream opened or closed). The waiter
 * ends at the next change after stop(), or when the fake stops.
 */
function trackMaxStreams(kube: FakeKube): { max: () => number; stop: () => void } {
  let max = 0;
  let done = false;
  kube
    .waitFor(
      () => {
        max = Math.max(max, kube.activeLogStreams());
        return done;
      },
      { timeoutMs: 600_000 },
    )
    .catch(() => {});
  return {
    max: () => max,
    stop: () => {
      done = true;
    },
  };
}

describe("kubernetes: scale", () => {
  test("300 pods all streaming at once: every pod's lines arrive (no 256-request limit)", async () => {
    await threeHundredPods((env) => startKubeRelay(env));
  }, 120_000);

  test("the compiled binary: 300 pods all streaming at once, every pod's lines arrive", async () => {
    await threeHundredPods((env) => startKubeRelay(env, [], { binary: compiledRelay() }));
  }, 120_000);

  test("--max-log-requests 5 over 20 pods with generators: never more than 5 streams, rotation every second, no loss", async () => {
    const env = await kubeEnv();
    const { kube, ns } = env;
    const pods = addPods(kube, ns, "cap", 20);
    const tracker = trackMaxStreams(kube);
    const relay = startKubeRelay(env, ["--max-log-requests", "5", "--stream-rotate-after", "1"]);
    await waitForStreams(kube, 5);
    const gens = pods.map((p) => kube.startGenerator(ns, p, "app", { linesPerSecond: 50 }));
    // Every pod gets its turn: each has been read at least twice (rotation works).
    await kube.waitFor(() => pods.every((p) => kube.requests.filter((r) => r.endpoint === "log" && r.path.includes(`/pods/${p}/`)).length >= 2), {
      timeoutMs: 40_000,
      message: "every pod read twice",
    });
    kube.stopAllGenerators();
    await env.records.expectExactly(new Map(pods.map((p, i) => [`${p}-app`, gens[i]?.seq ?? -1])), 40_000);
    tracker.stop();
    expect(tracker.max()).toBe(5);
    expect(relay.proc.exitCode).toBeNull();
  }, 90_000);
});
