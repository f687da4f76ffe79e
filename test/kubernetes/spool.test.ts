/**
 * --buffer-dir together with --state-file in Kubernetes mode, the collector down
 * the whole time the first relay runs. SIGTERM: the memory queue goes to the
 * front of the spool, the cursors move past it, and the next relay sends the
 * spool, then resumes the pods: every line exactly once. SIGKILL: lines still in
 * memory are read again from the API (their cursors never moved past them,
 * although newer lines of the same containers were already safe on disk).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Generator } from "../fixtures/fake-kube/index.ts";
import { unusedPort } from "../fixtures/tcp-receiver.ts";
import { addPods, cleanup, kubeEnv, metric, startKubeRelay, waitForStreams, waitUntil, warnings } from "./helpers.ts";

afterEach(cleanup);

describe("kubernetes: spool and state file", () => {
  for (const stop of ["SIGTERM", "SIGKILL"] as const) {
    test(`collector down, ${stop}, restart with the collector up: ${stop === "SIGTERM" ? "every line exactly once" : "nothing lost, duplicates bounded"}`, async () => {
      const env = await kubeEnv();
      const { kube, ns } = env;
      const state = join(env.dir, "state.json");
      const spool = join(env.dir, "spool");
      const pods = addPods(kube, ns, "spooly", 5);
      const spoolFlags = ["--state-file", state, "--buffer-dir", spool, "--queue-max-bytes", "16384"];
      const first = startKubeRelay(env, [...spoolFlags, "--tcp-sink-port", String(unusedPort())]);
      await waitForStreams(kube, 5);
      const rate = 200;
      const gens = new Map<string, Generator>();
      for (const p of pods) gens.set(`${p}-app`, kube.startGenerator(ns, p, "app", { linesPerSecond: rate }));
      await waitUntil(async () => (await metric(first, "lines_spooled_total")) >= 5 * rate, 20_000, "a second of lines in the spool");
      // Past a spool sync and a state save, so both files hold something.
      await waitUntil(async () => (await metric(first, "lines_read_total")) >= 5 * rate * 2.5, 20_000, "2.5 s of lines read");
      if (stop === "SIGTERM") {
        first.signal("SIGTERM");
        expect(await first.waitExit()).toBe(0);
      } else {
        await first.kill();
      }
      expect(env.rx.lineCount).toBe(0);

      const second = startKubeRelay(env, spoolFlags);
      await second.stderr.waitFor("spool holds lines from a previous run");
      await waitForStreams(kube, 5);
      const atStart = new Map([...gens].map(([k, g]) => [k, g.seq]));
      await waitUntil(() => [...gens].every(([k, g]) => g.seq >= (atStart.get(k) ?? 0) + rate / 2), 15_000, "lines after the restart");
      for (const g of gens.values()) g.stop();
      const expected = new Map([...gens].map(([k, g]) => [k, g.seq]));
      if (stop === "SIGTERM") {
        await env.records.expectExactly(expected, 30_000);
      } else {
        await env.records.waitComplete(expected, 30_000);
        const got = env.records.seqs();
        const dups = [...expected.keys()].map((k) => (got.get(k)?.length ?? 0) - new Set(got.get(k)).size);
        console.error(`spool + state file SIGKILL: duplicates per container ${dups.join(", ")} (${rate} lines/s each)`);
        for (const [prefix, n] of expected) {
          const seqs = got.get(prefix) ?? [];
          const seen = new Set(seqs);
          for (let i = 1; i <= n; i++) if (!seen.has(i)) throw new Error(`${prefix}: line ${i} lost`);
          // What sat in the 16 KiB memory queue plus a spool sync / state save interval, read again.
          expect(seqs.length - seen.size).toBeLessThanOrEqual(2 * rate);
        }
      }
      expect(warnings(second)).toEqual([]);
      second.signal("SIGTERM");
      expect(await second.waitExit()).toBe(0);
    }, 90_000);
  }
});
