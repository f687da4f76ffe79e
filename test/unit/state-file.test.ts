import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../src/log.ts";
import { parseState, StateStore, STATE_VERSION } from "../../src/sources/kubernetes/state-file.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dir(): string {
  const d = mkdtempSync(join(tmpdir(), "vigil-state-"));
  dirs.push(d);
  return d;
}

/** A real logger whose lines are collected. */
function logger(): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, log: createLogger({ format: "text", debug: false, write: (l) => lines.push(l) }) };
}

const warns = (lines: string[]): string[] => lines.filter((l) => /WARN/.test(l));

const TS1 = "2026-03-19T10:23:45.123456789Z";
const TS2 = "2026-03-19T10:23:46.000000001Z";

function ref(uid: string, container = "app", kind = "output") {
  return { uid, namespace: "ns", pod: `pod-${uid}`, container, kind };
}

describe("StateStore", () => {
  test("save writes the file atomically (no .tmp left) and load reads it back", async () => {
    const path = join(dir(), "state.json");
    const { lines, log } = logger();
    const s = new StateStore(path, log);
    s.load();
    expect(s.size).toBe(0);
    s.written(ref("u1"), "containerd://a", { ts: TS1, count: 3 });
    s.written(ref("u2", "side", "stderr"), "containerd://b", { ts: TS2, count: 1 });
    expect(await s.save()).toBe(true);
    expect(s.saves).toBe(1);
    expect(existsSync(`${path}.tmp`)).toBe(false);
    const json = JSON.parse(readFileSync(path, "utf8")) as { version: number; cursors: unknown[] };
    expect(json.version).toBe(STATE_VERSION);
    expect(json.cursors.length).toBe(2);

    // Nothing changed: no second write.
    expect(await s.save()).toBe(true);
    expect(s.saves).toBe(1);

    const t = new StateStore(path, log);
    t.load();
    expect(t.get("u1", "app", "output")).toEqual({ uid: "u1", namespace: "ns", pod: "pod-u1", container: "app", kind: "output", containerID: "containerd://a", ts: TS1, count: 3 });
    expect(t.get("u2", "side", "stderr")?.ts).toBe(TS2);
    expect(t.get("u2", "side", "stdout")).toBeUndefined();
    expect(warns(lines)).toEqual([]);
  });

  test("a later cursor replaces the earlier one; the same cursor is not a change", async () => {
    const path = join(dir(), "state.json");
    const { log } = logger();
    const s = new StateStore(path, log);
    s.written(ref("u1"), "c1", { ts: TS1, count: 1 });
    await s.save();
    s.written(ref("u1"), "c1", { ts: TS1, count: 1 });
    await s.save();
    expect(s.saves).toBe(1);
    s.written(ref("u1"), "c1", { ts: TS1, count: 2 });
    await s.save();
    expect(s.saves).toBe(2);
    expect(parseState(readFileSync(path, "utf8"))).toEqual([{ ...ref("u1"), containerID: "c1", ts: TS1, count: 2 }]);
  });

  test("a missing file is a fresh start without a warning", () => {
    const { lines, log } = logger();
    const s = new StateStore(join(dir(), "none.json"), log);
    s.load();
    expect(s.size).toBe(0);
    expect(warns(lines)).toEqual([]);
  });

  for (const [what, text] of [
    ["garbage", "{not json"],
    ["a wrong version", JSON.stringify({ version: 99, cursors: [] })],
    ["a bad cursor", JSON.stringify({ version: 1, cursors: [{ uid: "u", container: "c", kind: "output", containerID: "x", ts: "yesterday", count: 1 }] })],
    ["an empty file", ""],
  ] as const) {
    test(`${what}: one warning and a fresh start`, () => {
      const path = join(dir(), "state.json");
      writeFileSync(path, text);
      const { lines, log } = logger();
      const s = new StateStore(path, log);
      s.load();
      expect(s.size).toBe(0);
      expect(warns(lines).length).toBe(1);
      expect(warns(lines)[0]).toContain("state file");
    });
  }

  test("an unreadable path (a directory) is one warning and a fresh start", () => {
    const path = join(dir(), "state.json");
    mkdirSync(path);
    const { lines, log } = logger();
    const s = new StateStore(path, log);
    s.load();
    expect(s.size).toBe(0);
    expect(warns(lines).length).toBe(1);
  });

  test("cursors of pods that no longer exist are dropped on the next save; nothing is pruned before the pods are known", async () => {
    const path = join(dir(), "state.json");
    const { log } = logger();
    let live: Set<string> | null = null;
    const s = new StateStore(path, log, { livePods: () => live });
    s.written(ref("u1"), "c1", { ts: TS1, count: 1 });
    s.written(ref("u2"), "c2", { ts: TS1, count: 1 });
    await s.save();
    expect(s.size).toBe(2);
    live = new Set(["u2"]);
    // Nothing else changed: pruning alone makes a save.
    await s.save();
    expect(s.size).toBe(1);
    expect(parseState(readFileSync(path, "utf8")).map((c) => c.uid)).toEqual(["u2"]);
  });

  test("an unwritable path: rate-limited warnings, no throw, saved once it can be written", async () => {
    const d = dir();
    const sub = join(d, "sub");
    const path = join(sub, "state.json");
    const { lines, log } = logger();
    const s = new StateStore(path, log);
    s.written(ref("u1"), "c1", { ts: TS1, count: 1 });
    expect(await s.save()).toBe(false);
    s.written(ref("u1"), "c1", { ts: TS1, count: 2 });
    expect(await s.save()).toBe(false);
    expect(warns(lines).length).toBe(1);
    mkdirSync(sub);
    expect(await s.save()).toBe(true);
    expect(parseState(readFileSync(path, "utf8"))[0]?.count).toBe(2);
  });

  test("the timer saves a change within about a second; close saves the rest", async () => {
    const path = join(dir(), "state.json");
    const { log } = logger();
    const s = new StateStore(path, log, { intervalMs: 50 });
    s.start();
    s.written(ref("u1"), "c1", { ts: TS1, count: 1 });
    const deadline = Date.now() + 5000;
    while (s.saves === 0 && Date.now() < deadline) await Bun.sleep(10);
    expect(s.saves).toBe(1);
    s.written(ref("u1"), "c1", { ts: TS2, count: 1 });
    await s.close();
    expect(parseState(readFileSync(path, "utf8"))[0]?.ts).toBe(TS2);
  });

  test("a read-only directory: the save fails with a warning, not a throw", async () => {
    if (process.getuid?.() === 0) return; // root writes anywhere
    const d = dir();
    chmodSync(d, 0o500);
    const { lines, log } = logger();
    const s = new StateStore(join(d, "state.json"), log);
    s.written(ref("u1"), "c1", { ts: TS1, count: 1 });
    expect(await s.save()).toBe(false);
    chmodSync(d, 0o700);
    expect(warns(lines).length).toBe(1);
  });
});
