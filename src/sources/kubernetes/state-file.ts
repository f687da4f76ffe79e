// --state-file: the Kubernetes cursors that survive a relay restart.
//
// Each entry is the *written* cursor of one log stream of one container
// instance: the last timestamp the sink has written (and how many lines carried
// it), never what was only queued, so a crash cannot skip lines still in
// memory. The file is small JSON, {"version":1,"cursors":[...]}, replaced
// atomically (PATH.tmp, fsync, rename, fsync of the directory) at most once a
// second while something changed, and once more on shutdown after the sink
// flushed. A missing file is a fresh start; a corrupt, unreadable or
// wrong-version file is one warning and a fresh start; a failed save is a
// rate-limited warning and retried at the next interval.
import { readFileSync } from "node:fs";
import { open, rename } from "node:fs/promises";
import { dirname } from "node:path";
import type { Logger } from "../../log.ts";
import type { Metrics } from "../../metrics.ts";
import { isApiTimestamp, type CursorState } from "./cursor.ts";

export const STATE_VERSION = 1;

/** One stream's written cursor, as saved. */
export interface SavedCursor {
  /** The pod's uid: a pod recreated under the same name is another pod. */
  uid: string;
  /** For people reading the file. */
  namespace: string;
  pod: string;
  container: string;
  /** "output" (combined), "stdout" or "stderr". */
  kind: string;
  /** The container instance the cursor belongs to. */
  containerID: string;
  /** Last timestamp written to the sink, exactly as the API sent it. */
  ts: string;
  /** Lines written that carry exactly `ts`. */
  count: number;
}

export interface StateStoreOptions {
  /** How often a changed state is saved (default 1000 ms). */
  intervalMs?: number;
  /** Uids of the pods that exist, or null while that is not known yet (nothing is pruned then). */
  livePods?: () => ReadonlySet<string> | null;
  /** Where saves and failed saves are counted (cursor_saves_total, cursor_save_failures_total). */
  metrics?: Metrics;
}

function keyOf(uid: string, container: string, kind: string): string {
  return `${uid}\u0000${container}\u0000${kind}`;
}

type Json = Record<string, unknown>;

function isObj(v: unknown): v is Json {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function str(o: Json, k: string): string | null {
  const v = o[k];
  return typeof v === "string" && v !== "" ? v : null;
}

/** The cursors of a state file's text; throws an Error with a short reason when it is not one. */
export function parseState(text: string): SavedCursor[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error("not valid JSON");
  }
  if (!isObj(v)) throw new Error("not a JSON object");
  if (v.version !== STATE_VERSION) throw new Error(`version ${JSON.stringify(v.version)}, expected ${STATE_VERSION}`);
  if (!Array.isArray(v.cursors)) throw new Error("no cursors array");
  const out: SavedCursor[] = [];
  for (const c of v.cursors) {
    if (!isObj(c)) throw new Error("a cursor is not an object");
    const uid = str(c, "uid");
    const container = str(c, "container");
    const kind = str(c, "kind");
    const containerID = str(c, "containerID");
    const ts = str(c, "ts");
    const count = c.count;
    if (uid === null || container === null || kind === null || containerID === null || ts === null) throw new Error("a cursor lacks a field");
    if (!isApiTimestamp(ts)) throw new Error(`a cursor has an invalid timestamp ${JSON.stringify(ts.slice(0, 60))}`);
    if (typeof count !== "number" || !Number.isSafeInteger(count) || count < 1) throw new Error("a cursor has an invalid count");
    out.push({ uid, namespace: typeof c.namespace === "string" ? c.namespace : "", pod: typeof c.pod === "string" ? c.pod : "", container, kind, containerID, ts, count });
  }
  return out;
}

export class StateStore {
  private readonly cursors = new Map<string, SavedCursor>();
  private dirty = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  private saving: Promise<boolean> | null = null;
  private closed = false;
  private readonly intervalMs: number;
  private livePods: () => ReadonlySet<string> | null;
  private readonly metrics: Metrics | undefined;
  /** Successful saves (for tests and metrics). */
  saves = 0;

  constructor(
    readonly path: string,
    private readonly log: Logger,
    opts: StateStoreOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 1000;
    this.livePods = opts.livePods ?? (() => null);
    this.metrics = opts.metrics;
  }

  /** Reads the file; a missing one is a fresh start, a bad one one warning and a fresh start. Never throws. */
  load(): void {
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") {
        this.log.info("no state file yet, starting fresh", { path: this.path });
        return;
      }
      this.log.warn("cannot read the state file, starting fresh (check the path and its permissions)", {
        path: this.path,
        error: e instanceof Error ? e.message : String(e),
      });
      return;
    }
    let list: SavedCursor[];
    try {
      list = parseState(text);
    } catch (e) {
      this.log.warn("the state file is not usable, starting fresh (it is replaced at the next save)", {
        path: this.path,
        error: e instanceof Error ? e.message : String(e),
      });
      return;
    }
    for (const c of list) this.cursors.set(keyOf(c.uid, c.container, c.kind), c);
    this.log.info("state file loaded", { path: this.path, cursors: list.length });
  }

  setLivePods(fn: () => ReadonlySet<string> | null): void {
    this.livePods = fn;
  }

  get size(): number {
    return this.cursors.size;
  }

  get(uid: string, container: string, kind: string): SavedCursor | undefined {
    return this.cursors.get(keyOf(uid, container, kind));
  }

  /** All cursors (copies), for tests. */
  list(): SavedCursor[] {
    return [...this.cursors.values()].map((c) => ({ ...c }));
  }

  /** The sink has written a stream's lines up to `cursor` of instance `containerID`. */
  written(ref: { uid: string; namespace: string; pod: string; container: string; kind: string }, containerID: string, cursor: CursorState): void {
    const key = keyOf(ref.uid, ref.container, ref.kind);
    const old = this.cursors.get(key);
    if (old !== undefined && old.containerID === containerID && old.ts === cursor.ts && old.count === cursor.count) return;
    this.cursors.set(key, {
      uid: ref.uid,
      namespace: ref.namespace,
      pod: ref.pod,
      container: ref.container,
      kind: ref.kind,
      containerID,
      ts: cursor.ts,
      count: cursor.count,
    });
    this.dirty = true;
  }

  /** Saves every intervalMs while something changed. */
  start(): void {
    if (this.timer !== undefined || this.closed) return;
    this.timer = setInterval(() => {
      if (this.dirty && this.saving === null) void this.save();
    }, this.intervalMs);
    this.timer.unref?.();
  }

  /** Drops the cursors of pods that no longer exist; true when any was dropped. */
  private prune(): boolean {
    const live = this.livePods();
    if (live === null) return false;
    let dropped = false;
    for (const [key, c] of this.cursors) {
      if (!live.has(c.uid)) {
        this.cursors.delete(key);
        dropped = true;
      }
    }
    return dropped;
  }

  /**
   * Writes the file if anything changed (or a pod's cursors were pruned);
   * waits for a save in progress first. Resolves false when the write failed
   * (warned, rate limited). Never rejects.
   */
  async save(): Promise<boolean> {
    while (this.saving !== null) await this.saving;
    if (this.prune()) this.dirty = true;
    if (!this.dirty) return true;
    this.dirty = false;
    const text = JSON.stringify({ version: STATE_VERSION, cursors: [...this.cursors.values()] }) + "\n";
    const p = this.write(text).then(
      () => {
        this.saves++;
        this.metrics?.cursorSaves.inc();
        return true;
      },
      (e: unknown) => {
        this.dirty = true;
        this.metrics?.cursorSaveFailures.inc();
        this.log.warnLimited("state-file-save", "cannot save the state file; cursors will not survive a restart until it can be written (check the path, its directory and free space)", {
          path: this.path,
          error: e instanceof Error ? e.message : String(e),
        });
        return false;
      },
    );
    this.saving = p;
    try {
      return await p;
    } finally {
      this.saving = null;
    }
  }

  private async write(text: string): Promise<void> {
    const tmp = `${this.path}.tmp`;
    const fh = await open(tmp, "w", 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.path);
    // The rename itself is durable only once the directory is synced; not every system allows that.
    try {
      const dir = await open(dirname(this.path), "r");
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch {
      // best effort
    }
  }

  /** Stops the timer and saves what changed since the last save. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.save();
  }
}
