/**
 * --state-file: cursors that survive a relay restart. SIGTERM then restart:
 * every sequence complete, no duplicate. SIGKILL under load then restart:
 * nothing lost, duplicates bounded by what was written after the last save.
 * A corrupt state file: one warning, a normal start.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Generator } from "../fixtures/fake-kube/index.ts";
import { addPods, cleanup, compiledRelay, expectInstances, kubeEnv, startKubeRelay, waitForStreams, waitUntil, warnings } from "./helpers.ts";

afterEach(cleanup);

function expectedFrom(gens: Map<string, Generator>): Map<string, number> {
  const m = new Map<string, number>();
  for (const [prefix, g] of gens) m.set(prefix, g.seq);
  return m;
}

/** The state file's cursors, or null while it does not exist (or is being replaced). */
function cursorsIn(path: string): Array<{ pod: string; ts: string; count: number }> | null {
  if (!existsSync(path)) return null;
  try {
    const v = JSON.parse(readFileSync(path, "utf8")) as { version: number; cursors: Array<{ pod: string; ts: string; count: number }> };
    return v.version === 1 ? v.cursors : null;
  } catch {
    return null;
  }
}

/** Per prefix: every seq 1..N arrived (none missing, none beyond), and how many arrived more than once. */
function lossAndDuplicates(got: Map<string, number[]>, expected: Map<string, number>): { missing: string[]; dups: Map<string, number> } {
  const missing: string[] = [];
  const dups = new Map<string, number>();
  for (const [prefix, n] of expected) {
    const seqs = got.get(prefix) ?? [];
    const seen = new Set(seqs);
    const gone: number[] = [];
    for (let i = 1; i <= n; i++) if (!seen.has(i)) gone.push(i);
    const extra = [...seen].filter((s) => s < 1 || s > n);
    if (gone.length + extra.length > 0) missing.push(`${prefix}: missing ${gone.length} [${gone.slice(0, 10).join(",")}], unexpected [${extra.slice(0, 10).join(",")}]`);
    dups.set(prefix, seqs.length - seen.size);
  }
  return { missing, dups };
}

describe("kubernetes: --state-file", () => {
  test("SIGTERM, lines logged while the relay is down, restart with the same file: every line exactly once", async () => {
    const env = await kubeEnv();
    const { kube, ns } = env;
    const path = join(env.dir, "state.json");
    const pods = addPods(kube, ns, "calm", 5);
    const first = startKubeRelay(env, ["--state-file", path]);
    await waitForStreams(kube, 5);
    const gens = new Map<string, Generator>();
    for (const p of pods) gens.set(`${p}-app`, kube.startGenerator(ns, p, "app", { linesPerSecond: 100 }));
    await waitUntil(() => [...env.records.seqs().values()].filter((s) => s.length >= 50).length === 5, 15_000, "50 lines of every pod");

    first.signal("SIGTERM");
    expect(await first.waitExit()).toBe(0);
    const saved = cursorsIn(path);
    expect(saved?.length).toBe(5);
    // Written on shutdown after the flush: the cursors match the last lines received.
    const atStop = env.records.seqs();

    // Lines logged while no relay runs.
    const seqAtStop = new Map([...gens].map(([k, g]) => [k, g.seq]));
    await waitUntil(() => [...gens].every(([k, g]) => g.seq >= (seqAtStop.get(k) ?? 0) + 50), 15_000, "lines logged while the relay is down");

    const second = startKubeRelay(env, ["--state-file", path]);
    await second.stderr.waitFor("state file loaded");
    await waitForStreams(kube, 5);
    await waitUntil(() => [...gens].every(([k, g]) => (env.records.seqs().get(k)?.length ?? 0) > (atStop.get(k)?.length ?? 0) + 50), 15_000, "lines after the restart");
    for (const g of gens.values()) g.stop();
    await env.records.expectExactly(expectedFrom(gens), 20_000);
    expect(warnings(first)).toEqual([]);
    expect(warnings(second)).toEqual([]);
    second.signal("SIGTERM");
    expect(await second.waitExit()).toBe(0);
  });

  test("SIGKILL of the compiled relay under load (20 pods x 200 lines/s), restart with the same file: nothing lost, duplicates within about a second of lines", async () => {
    const binary = compiledRelay();
    const env = await kubeEnv();
    const { kube, ns } = env;
    const path = join(env.dir, "state.json");
    const pods = addPods(kube, ns, "busy", 20);
    const first = startKubeRelay(env, ["--state-file", path], { binary });
    await waitForStreams(kube, 20);
    const rate = 200;
    const gens = new Map<string, Generator>();
    for (const p of pods) gens.set(`${p}-app`, kube.startGenerator(ns, p, "app", { linesPerSecond: rate }));
    // Past the first saves, in the middle of the run.
    await waitUntil(() => (cursorsIn(path)?.length ?? 0) === 20, 15_000, "a state file with every pod");
    await waitUntil(() => [...env.records.seqs().values()].filter((s) => s.length >= 2 * rate).length === 20, 20_000, "2 s of lines of every pod");
    // The worst case: kill late in a save interval. Wait for a save, then for about 0.8 s of
    // lines more (the next save comes about 1 s after the last one).
    const before = readFileSync(path, "utf8");
    await waitUntil(() => readFileSync(path, "utf8") !== before, 5_000, "the next save");
    const atSave = new Map([...env.records.seqs()].map(([k, s]) => [k, s.length]));
    await waitUntil(() => [...gens.keys()].every((k) => (env.records.seqs().get(k)?.length ?? 0) >= (atSave.get(k) ?? 0) + 0.8 * rate), 10_000, "0.8 s of lines after a save");

    await first.kill();
    const atKill = new Map([...env.records.seqs()].map(([k, s]) => [k, s.length]));

    const second = startKubeRelay(env, ["--state-file", path], { binary });
    await second.stderr.waitFor("state file loaded");
    await waitForStreams(kube, 20);
    await waitUntil(() => [...gens.keys()].every((k) => (env.records.seqs().get(k)?.length ?? 0) > (atKill.get(k) ?? 0) + rate), 20_000, "a second of lines after the restart");
    for (const g of gens.values()) g.stop();
    const expected = expectedFrom(gens);
    await env.records.waitComplete(expected, 30_000);
    const { missing, dups } = lossAndDuplicates(env.records.seqs(), expected);
    expect(missing).toEqual([]);
    const worst = Math.max(...dups.values());
    const total = [...dups.values()].reduce((a, b) => a + b, 0);
    console.error(`state-file SIGKILL: duplicates per container max ${worst}, total ${total} over ${dups.size} containers (${rate} lines/s each)`);
    // Saved every second, so at most about a second (plus a save in flight) is written twice.
    expect(worst).toBeLessThanOrEqual(2 * rate);
    expect(warnings(second)).toEqual([]);
    second.signal("SIGTERM");
    expect(await second.waitExit()).toBe(0);
  }, 90_000);

  test("a container restarted while the relay was down: the old instance's tail (previous=true), then the new one from its start", async () => {
    const env = await kubeEnv();
    const { kube, ns } = env;
    const path = join(env.dir, "state.json");
    kube.addPod({ namespace: ns, name: "crashy", containers: [{ name: "app" }] });
    const first = startKubeRelay(env, ["--state-file", path]);
    await waitForStreams(kube, 1);
    const gen = kube.startGenerator(ns, "crashy", "app", { linesPerSecond: 200 });
    await waitUntil(() => (env.records.seqs().get("crashy-app")?.length ?? 0) >= 100, 15_000, "100 lines");
    first.signal("SIGTERM");
    expect(await first.waitExit()).toBe(0);
    const oldId = kube.containerId(ns, "crashy", "app");
    expect(cursorsIn(path)?.length).toBe(1);

    // More lines of the old instance, a restart, lines of the new one: all while no relay runs.
    let before = gen.seq;
    await kube.waitFor(() => gen.seq >= before + 100, { timeoutMs: 20_000, message: "more lines of the old instance" });
    const end = gen.seq;
    kube.restartContainer(ns, "crashy", "app");
    expect(kube.containerId(ns, "crashy", "app")).not.toBe(oldId);
    before = gen.seq;
    await kube.waitFor(() => gen.seq >= before + 100, { timeoutMs: 20_000, message: "lines of the new instance" });

    const second = startKubeRelay(env, ["--state-file", path]);
    await second.stderr.waitFor("state file loaded");
    await waitForStreams(kube, 1);
    before = gen.seq;
    await kube.waitFor(() => gen.seq >= before + 50, { timeoutMs: 20_000, message: "lines after the restart" });
    gen.stop();
    await env.records.waitComplete(new Map([["crashy-app", gen.seq]]), 20_000);
    expectInstances(env.records.seqs().get("crashy-app") ?? [], [end, gen.seq]);
    expect(kube.requests.some((r) => r.endpoint === "log" && r.query.get("previous") === "true" && r.query.has("sinceTime"))).toBe(true);
    expect(warnings(second)).toEqual([]);
  });

  test("a corrupt state file: one warning, a normal start, and a valid file after the stop", async () => {
    const env = await kubeEnv();
    const { kube, ns } = env;
    const path = join(env.dir, "state.json");
    writeFileSync(path, '{"version":1,"cursors":[{"uid":');
    addPods(kube, ns, "web", 1);
    const relay = startKubeRelay(env, ["--state-file", path]);
    await waitForStreams(kube, 1);
    kube.appendLog(ns, "web-1", "app", ["web-1-app-1", "web-1-app-2", "web-1-app-3"]);
    await env.records.expectExactly(new Map([["web-1-app", 3]]), 10_000);
    const warns = warnings(relay);
    expect(warns.length).toBe(1);
    expect(warns[0]).toContain("state file");
    relay.signal("SIGTERM");
    expect(await relay.waitExit()).toBe(0);
    const saved = cursorsIn(path);
    expect(saved?.length).toBe(1);
    expect(saved?.[0]?.pod).toBe("web-1");
    expect(saved?.[0]?.count).toBe(1);
  });
});
