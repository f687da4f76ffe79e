import { afterEach, describe, expect, test } from "bun:test";
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Spool } from "../../src/spool/spool.ts";
import { FIRST_SEQ, segmentPath } from "../../src/spool/segments.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function freshDir(): string {
  const d = mkdtempSync(join(tmpdir(), "vigil-spool-"));
  dirs.push(d);
  return d;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
function lines(from: number, count: number): Uint8Array {
  let s = "";
  for (let i = from; i < from + count; i++) s += `{"n":${i}}\n`;
  return enc.encode(s);
}
function append(spool: Spool, from: number, count: number, onDurable?: () => void): void {
  const b = lines(from, count);
  spool.append([b], b.length, onDurable);
}
/** Reads and commits everything; returns the line numbers in order. */
function drain(spool: Spool, maxBytes = 100): number[] {
  const out: number[] = [];
  for (let c = spool.read(maxBytes); c !== null; c = spool.read(maxBytes)) {
    const text = dec.decode(c.buf);
    expect(text.endsWith("\n")).toBe(true);
    const got = text.trimEnd().split("\n");
    expect(got.length).toBe(c.lines);
    for (const l of got) out.push((JSON.parse(l) as { n: number }).n);
    spool.commit(c.end);
  }
  return out;
}
const segmentFiles = (dir: string) => readdirSync(dir).filter((f) => f.startsWith("segment-"));

describe("Spool", () => {
  test("reads back whole lines in order across segments, and deletes each segment once committed", () => {
    const dir = freshDir();
    const { spool } = Spool.open(dir, 256);
    for (let i = 0; i < 50; i++) append(spool, i * 3, 3);
    expect(segmentFiles(dir).length).toBeGreaterThan(3);
    expect(spool.bytes).toBe(spool.unread);
    const got = drain(spool, 70);
    expect(got).toEqual(Array.from({ length: 150 }, (_, i) => i));
    expect(spool.bytes).toBe(0);
    expect(segmentFiles(dir)).toEqual([]);
    spool.close();
  });

  test("a chunk holds at least one whole line even when the line is longer than maxBytes", () => {
    const dir = freshDir();
    const { spool } = Spool.open(dir, 1 << 20);
    const long = enc.encode(`{"n":0,"pad":"${"x".repeat(5000)}"}\n`);
    spool.append([long], long.length);
    append(spool, 1, 1);
    const c = spool.read(10)!;
    expect(c.lines).toBeGreaterThanOrEqual(1);
    expect(c.buf.subarray(0, long.length)).toEqual(long);
    expect(c.buf[c.buf.length - 1]).toBe(10);
    spool.close();
  });

  test("bytes count what the sink has not written; read ahead does not free them until commit", () => {
    const dir = freshDir();
    const { spool } = Spool.open(dir, 1 << 20);
    append(spool, 0, 10);
    const total = spool.bytes;
    const c = spool.read(1 << 20);
    expect(spool.unread).toBe(0);
    expect(spool.bytes).toBe(total);
    spool.commit(c!.end);
    expect(spool.bytes).toBe(0);
    spool.close();
  });

  test("survives a restart: the next open resumes after the committed position (no duplicates)", () => {
    const dir = freshDir();
    const first = Spool.open(dir, 200);
    append(first.spool, 0, 40);
    const c = first.spool.read(100)!;
    first.spool.commit(c.end);
    first.spool.close();
    const second = Spool.open(dir, 200);
    expect(second.recoveredBytes).toBeGreaterThan(0);
    const got = drain(second.spool);
    expect(got[0]).toBe(c.lines);
    expect(got).toEqual(Array.from({ length: 40 - c.lines }, (_, i) => i + c.lines));
    second.spool.close();
  });

  test("new appends after a restart go behind the recovered lines", () => {
    const dir = freshDir();
    const a = Spool.open(dir, 1 << 20);
    append(a.spool, 0, 5);
    a.spool.close();
    const b = Spool.open(dir, 1 << 20);
    append(b.spool, 5, 5);
    expect(drain(b.spool)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    b.spool.close();
  });

  test("a torn last line (killed mid-append) is cut off at open", () => {
    const dir = freshDir();
    const a = Spool.open(dir, 1 << 20);
    append(a.spool, 0, 3);
    a.spool.close();
    const seg = segmentFiles(dir)[0]!;
    appendFileSync(join(dir, seg), '{"n":3,"torn');
    const b = Spool.open(dir, 1 << 20);
    expect(drain(b.spool)).toEqual([0, 1, 2]);
    b.spool.close();
  });

  test("a corrupt position file means a resend from the oldest segment, never a crash", () => {
    const dir = freshDir();
    const a = Spool.open(dir, 1 << 20);
    append(a.spool, 0, 4);
    const c = a.spool.read(12)!;
    a.spool.commit(c.end);
    a.spool.close();
    writeFileSync(join(dir, "position.json"), "{not json");
    const b = Spool.open(dir, 1 << 20);
    expect(b.positionLost).toBe(true);
    expect(drain(b.spool)).toEqual([0, 1, 2, 3]);
    b.spool.close();
  });

  test("a saved offset that is not at a line start falls back to the segment start (resend, no splice)", () => {
    const dir = freshDir();
    const a = Spool.open(dir, 1 << 20);
    append(a.spool, 0, 4);
    a.spool.close();
    writeFileSync(join(dir, "position.json"), JSON.stringify({ seq: FIRST_SEQ, offset: 3 }));
    const b = Spool.open(dir, 1 << 20);
    expect(drain(b.spool)).toEqual([0, 1, 2, 3]);
    b.spool.close();
  });

  test("prepend puts lines in front, keeping the unsent rest of a half-written segment behind them", () => {
    const dir = freshDir();
    const { spool } = Spool.open(dir, 1 << 20);
    append(spool, 10, 6);
    const c = spool.read(30)!; // some of 10.. written
    spool.commit(c.end);
    const readAhead = spool.read(10)!; // handed out, not written: must come back
    expect(readAhead.lines).toBeGreaterThan(0);
    spool.prepend([lines(0, 3)]);
    spool.close();
    const b = Spool.open(dir, 1 << 20);
    expect(drain(b.spool)).toEqual([0, 1, 2, ...Array.from({ length: 6 - c.lines }, (_, i) => 10 + c.lines + i)]);
    b.spool.close();
  });

  test("durable callbacks run after the sync, not at append", () => {
    const dir = freshDir();
    const { spool } = Spool.open(dir, 1 << 20);
    let durable = 0;
    append(spool, 0, 2, () => durable++);
    expect(durable).toBe(0);
    spool.sync();
    expect(durable).toBe(1);
    spool.close();
  });

  test("an unusable directory throws at open (a file in the way)", () => {
    const dir = freshDir();
    const file = join(dir, "file");
    writeFileSync(file, "x");
    expect(() => Spool.open(join(file, "spool"), 1 << 20)).toThrow();
  });

  test("once everything was written the open segment is deleted too (no disk held while idle)", () => {
    const dir = freshDir();
    const { spool } = Spool.open(dir, 1 << 20);
    append(spool, 0, 3);
    drain(spool);
    expect(existsSync(segmentPath(dir, FIRST_SEQ))).toBe(false);
    append(spool, 3, 2);
    expect(drain(spool)).toEqual([3, 4]);
    spool.close();
    expect(JSON.parse(readFileSync(join(dir, "position.json"), "utf8")).seq).toBeGreaterThan(FIRST_SEQ);
  });
});

describe("Spool lock", () => {
  test("a second relay on the same directory is refused while the first runs; a dead owner's lock is taken over", async () => {
    const dir = freshDir();
    // A live process that looks like a relay holds the lock.
    const owner = Bun.spawn(["sh", "-c", "sleep 30; true", "vigil-log-relay"], { stdout: "ignore", stderr: "ignore" });
    try {
      // Until the child has exec'd, its cmdline is still this test runner's.
      const deadline = Date.now() + 5000;
      while (!readFileSync(`/proc/${owner.pid}/cmdline`, "utf8").includes("vigil-log-relay") && Date.now() < deadline) await Bun.sleep(5);
      writeFileSync(join(dir, "lock"), `${owner.pid}\n`);
      expect(() => Spool.open(dir, 1 << 20)).toThrow(`in use by another relay (pid ${owner.pid})`);
    } finally {
      owner.kill("SIGKILL");
      await owner.exited;
    }
    const { spool } = Spool.open(dir, 1 << 20);
    expect(readFileSync(join(dir, "lock"), "utf8")).toBe(`${process.pid}\n`);
    spool.close();
    expect(existsSync(join(dir, "lock"))).toBe(false);
  });

  test("a pid reused by another program does not hold the lock", () => {
    const dir = freshDir();
    const other = Bun.spawnSync(["true"]);
    writeFileSync(join(dir, "lock"), `${other.pid}\n`); // exited: not alive
    const { spool } = Spool.open(dir, 1 << 20);
    spool.close();
  });
});
