// The disk spool behind the memory queue (--buffer-dir): lines that do not fit in
// memory are appended to segment files and handed to the sink in order, in
// chunks of whole lines. Three positions matter:
//   committed  everything before it reached the sink (saved in position.json)
//   read       everything before it was handed to the sink (maybe not written yet)
//   end        the end of the last segment
// A segment is deleted as soon as `committed` passes its end. Appends are made
// durable (fdatasync) at most every SYNC_MS; callers that need to know when
// (the Kubernetes cursors) pass a callback that runs after that sync.
import { closeSync, fdatasyncSync, mkdirSync, openSync, readSync, unlinkSync, writeSync, ftruncateSync } from "node:fs";
import { countLines } from "../pipeline/lines.ts";
import { lockSpoolDir } from "./lock.ts";
import {
  FIRST_SEQ,
  listSegments,
  loadPosition,
  repairTornTail,
  savePosition,
  segmentPath,
  type SegmentInfo,
  type SpoolPosition,
} from "./segments.ts";

/** Longest wait before appended lines are on disk for good. */
const SYNC_MS = 200;
/** The position file is rewritten at most this often while the sink drains the spool. */
const POSITION_SAVE_MS = 200;

export interface SpoolChunk {
  /** Whole lines, each ending in "\n". */
  buf: Uint8Array;
  lines: number;
  start: SpoolPosition;
  end: SpoolPosition;
}

export interface SpoolOpenResult {
  spool: Spool;
  /** Bytes left by a previous run, to be sent before anything new. */
  recoveredBytes: number;
  /** Set when position.json was missing or unreadable although segments exist. */
  positionLost: boolean;
}

export class Spool {
  private readonly segments: SegmentInfo[];
  private nextSeq: number;
  private writeFd: number | null = null;
  private readFd: number | null = null;
  private readFdSeq = -1;
  private committed: SpoolPosition;
  private readPos: SpoolPosition;
  private live = 0;
  private unreadBytes = 0;
  private durableWaiters: Array<() => void> = [];
  private syncTimer: ReturnType<typeof setTimeout> | null = null;
  private positionTimer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;

  private constructor(
    private readonly dir: string,
    private readonly segmentBytes: number,
    segments: SegmentInfo[],
    start: SpoolPosition,
    private readonly unlock: () => void,
  ) {
    this.segments = segments;
    this.nextSeq = segments.length > 0 ? (segments[segments.length - 1] as SegmentInfo).seq + 1 : Math.max(FIRST_SEQ, start.seq);
    this.committed = { ...start };
    this.readPos = { ...start };
    this.recount();
    this.unreadBytes = this.live;
  }

  /** Opens (creating) DIR and recovers what a previous run left; throws on an unusable directory. */
  static open(dir: string, segmentBytes: number): SpoolOpenResult {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const unlock = lockSpoolDir(dir);
    try {
      return Spool.recover(dir, segmentBytes, unlock);
    } catch (e) {
      unlock();
      throw e;
    }
  }

  private static recover(dir: string, segmentBytes: number, unlock: () => void): SpoolOpenResult {
    const segments: SegmentInfo[] = [];
    for (const seg of listSegments(dir)) {
      const size = repairTornTail(segmentPath(dir, seg.seq), seg.size);
      if (size === 0) unlinkSync(segmentPath(dir, seg.seq));
      else segments.push({ seq: seg.seq, size });
    }
    const saved = loadPosition(dir);
    const positionLost = saved === null && segments.length > 0;
    let start: SpoolPosition = { seq: segments[0]?.seq ?? FIRST_SEQ, offset: 0 };
    if (saved !== null) {
      // Segments before the saved one were written to the sink; the crash came before their deletion.
      while (segments.length > 0 && (segments[0] as SegmentInfo).seq < saved.seq) {
        unlinkSync(segmentPath(dir, (segments.shift() as SegmentInfo).seq));
      }
      const first = segments[0];
      if (first && first.seq === saved.seq) {
        start = { seq: saved.seq, offset: atLineStart(segmentPath(dir, first.seq), Math.min(saved.offset, first.size)) };
      } else if (!first) {
        start = { seq: Math.max(FIRST_SEQ, saved.seq), offset: 0 };
      }
    }
    const spool = new Spool(dir, segmentBytes, segments, start, unlock);
    spool.dropConsumed();
    // Proves the directory writable now, not at the first outage.
    savePosition(dir, spool.committed, true);
    return { spool, recoveredBytes: spool.live, positionLost };
  }

  /** Bytes not yet written to the sink (on disk). */
  get bytes(): number {
    return this.live;
  }

  /** Bytes not yet handed to the sink. */
  get unread(): number {
    return this.unreadBytes;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** Appends whole lines; `onDurable` runs once they are synced to disk. Throws on a write error (nothing appended). */
  append(parts: readonly Uint8Array[], bytes: number, onDurable?: () => void): void {
    const seg = this.writableSegment(bytes);
    const fd = this.writeFd as number;
    let written = 0;
    try {
      for (const p of parts) written += writeAllSync(fd, p);
    } catch (e) {
      // A partial append would leave half a line: cut it off again.
      ftruncateSync(fd, seg.size);
      throw e;
    }
    seg.size += written;
    this.live += written;
    this.unreadBytes += written;
    if (onDurable) this.durableWaiters.push(onDurable);
    this.scheduleSync();
  }

  /** The next chunk of whole lines (about maxBytes; more when one line is longer), or null. */
  read(maxBytes: number): SpoolChunk | null {
    while (this.unreadBytes > 0) {
      const i = this.indexOf(this.readPos.seq);
      const seg = this.segments[i];
      if (!seg) return null;
      const avail = seg.size - this.readPos.offset;
      if (avail <= 0) {
        const next = this.segments[i + 1];
        if (!next) return null;
        this.readPos = { seq: next.seq, offset: 0 };
        continue;
      }
      const fd = this.readFdFor(seg.seq);
      let len = Math.min(avail, Math.max(1, maxBytes));
      let buf: Buffer;
      let end: number;
      for (;;) {
        buf = Buffer.allocUnsafe(len);
        readFully(fd, buf, this.readPos.offset);
        const nl = buf.lastIndexOf(10);
        if (nl >= 0) {
          end = nl + 1;
          break;
        }
        if (len >= avail) {
          // Segments end at line ends; a torn end was cut at open. Hand it over whole.
          end = len;
          break;
        }
        len = Math.min(avail, len * 2);
      }
      const start = { ...this.readPos };
      this.readPos = { seq: seg.seq, offset: this.readPos.offset + end };
      this.unreadBytes -= end;
      const out = buf.subarray(0, end);
      return { buf: out, lines: countLines(out), start, end: { ...this.readPos } };
    }
    return null;
  }

  /** Everything before `pos` reached the sink: frees those bytes and deletes finished segments. */
  commit(pos: SpoolPosition): void {
    if (comparePos(pos, this.committed) <= 0) return;
    this.committed = { ...pos };
    if (comparePos(this.readPos, this.committed) < 0) this.readPos = { ...this.committed };
    this.dropConsumed();
    this.recount();
    this.schedulePositionSave();
  }

  /** Forget chunks handed out but not written: they are read again (shutdown, before prepend). */
  rewind(): void {
    this.readPos = { ...this.committed };
    this.recount();
    this.unreadBytes = this.live;
  }

  /**
   * Shutdown: puts lines that were still in memory in front of the spool, so the
   * next start sends them first. The unsent rest of the first segment is copied
   * behind them (the position file can point at only one place).
   */
  prepend(parts: readonly Uint8Array[]): void {
    const total = parts.reduce((n, p) => n + p.length, 0);
    if (total === 0) return;
    this.rewind();
    const first = this.segments[0];
    const seq = Math.min(first?.seq ?? this.committed.seq, this.committed.seq) - 1;
    const path = segmentPath(this.dir, seq);
    const fd = openSync(path, "wx", 0o600);
    let size = 0;
    try {
      for (const p of parts) size += writeAllSync(fd, p);
      if (first && first.seq === this.committed.seq && this.committed.offset > 0) {
        size += copyRange(segmentPath(this.dir, first.seq), this.committed.offset, first.size, fd);
        this.deleteSegment(first);
        this.segments.shift();
      }
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.segments.unshift({ seq, size });
    this.committed = { seq, offset: 0 };
    this.readPos = { seq, offset: 0 };
    this.recount();
    this.unreadBytes = this.live;
    savePosition(this.dir, this.committed, true);
  }

  /** Syncs what was appended and runs the waiting callbacks. */
  sync(): void {
    if (this.syncTimer) {
      clearTimeout(this.syncTimer);
      this.syncTimer = null;
    }
    if (this.writeFd !== null) fdatasyncSync(this.writeFd);
    const waiters = this.durableWaiters;
    this.durableWaiters = [];
    for (const w of waiters) w();
  }

  /** Syncs, saves the position durably and closes the files. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sync();
    if (this.positionTimer) clearTimeout(this.positionTimer);
    this.positionTimer = null;
    savePosition(this.dir, this.committed, true);
    if (this.writeFd !== null) closeSync(this.writeFd);
    if (this.readFd !== null) closeSync(this.readFd);
    this.writeFd = null;
    this.readFd = null;
    this.unlock();
  }

  /** The segment to append to: the open one, or a new one once that is full. */
  private writableSegment(bytes: number): SegmentInfo {
    const last = this.segments[this.segments.length - 1];
    if (this.writeFd !== null && last && (last.size === 0 || last.size + bytes <= this.segmentBytes)) return last;
    if (this.writeFd !== null) {
      // The finished segment is synced now, so its callbacks need not wait for the next one.
      this.sync();
      closeSync(this.writeFd);
      this.writeFd = null;
    }
    const seg = { seq: this.nextSeq++, size: 0 };
    this.writeFd = openSync(segmentPath(this.dir, seg.seq), "wx", 0o600);
    this.segments.push(seg);
    return seg;
  }

  /** Deletes segments wholly before `committed`, and the open one once everything in it was written. */
  private dropConsumed(): void {
    for (;;) {
      const first = this.segments[0];
      if (!first) return;
      const isOpen = this.writeFd !== null && first === this.segments[this.segments.length - 1];
      const passed = first.seq < this.committed.seq || (first.seq === this.committed.seq && this.committed.offset >= first.size);
      if (!passed) return;
      // Its lines reached the sink, so their callbacks may run now.
      if (isOpen) this.sync();
      this.deleteSegment(first);
      this.segments.shift();
      const next = this.segments[0];
      const seq = next ? next.seq : this.nextSeq;
      if (comparePos(this.committed, { seq, offset: 0 }) < 0) this.committed = { seq, offset: 0 };
      if (comparePos(this.readPos, this.committed) < 0) this.readPos = { ...this.committed };
    }
  }

  private deleteSegment(seg: SegmentInfo): void {
    if (this.readFdSeq === seg.seq && this.readFd !== null) {
      closeSync(this.readFd);
      this.readFd = null;
      this.readFdSeq = -1;
    }
    if (this.writeFd !== null && seg === this.segments[this.segments.length - 1]) {
      closeSync(this.writeFd);
      this.writeFd = null;
    }
    try {
      unlinkSync(segmentPath(this.dir, seg.seq));
    } catch {
      // Already gone (removed by hand): nothing left to free.
    }
  }

  private readFdFor(seq: number): number {
    if (this.readFd !== null && this.readFdSeq === seq) return this.readFd;
    if (this.readFd !== null) closeSync(this.readFd);
    this.readFd = openSync(segmentPath(this.dir, seq), "r");
    this.readFdSeq = seq;
    return this.readFd;
  }

  private indexOf(seq: number): number {
    for (let i = 0; i < this.segments.length; i++) if ((this.segments[i] as SegmentInfo).seq === seq) return i;
    return -1;
  }

  /** live = bytes from `committed` to the end. */
  private recount(): void {
    let live = 0;
    for (const s of this.segments) {
      if (s.seq < this.committed.seq) continue;
      live += s.seq === this.committed.seq ? s.size - this.committed.offset : s.size;
    }
    this.live = live;
  }

  private scheduleSync(): void {
    if (this.syncTimer || this.durableWaiters.length === 0) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = null;
      if (!this.closed) this.sync();
    }, SYNC_MS);
  }

  private schedulePositionSave(): void {
    if (this.positionTimer) return;
    this.positionTimer = setTimeout(() => {
      this.positionTimer = null;
      if (this.closed) return;
      try {
        savePosition(this.dir, this.committed, false);
      } catch {
        // Retried at the next commit and at close; a stale position only means duplicates.
      }
    }, POSITION_SAVE_MS);
  }
}

export function comparePos(a: SpoolPosition, b: SpoolPosition): number {
  return a.seq !== b.seq ? a.seq - b.seq : a.offset - b.offset;
}

function readFully(fd: number, buf: Uint8Array, position: number): void {
  let off = 0;
  while (off < buf.length) {
    const n = readSync(fd, buf, off, buf.length - off, position + off);
    if (n === 0) throw new Error("spool segment shorter than expected");
    off += n;
  }
}

function writeAllSync(fd: number, p: Uint8Array): number {
  let off = 0;
  while (off < p.length) off += writeSync(fd, p, off, p.length - off);
  return p.length;
}

/** Copies [from, to) of the file at `path` to `fd`; returns the bytes copied. */
function copyRange(path: string, from: number, to: number, fd: number): number {
  const src = openSync(path, "r");
  try {
    const buf = Buffer.allocUnsafe(1024 * 1024);
    let pos = from;
    while (pos < to) {
      const n = readSync(src, buf, 0, Math.min(buf.length, to - pos), pos);
      if (n === 0) break;
      writeAllSync(fd, buf.subarray(0, n));
      pos += n;
    }
    return pos - from;
  } finally {
    closeSync(src);
  }
}

/** `offset` if a line starts there, else 0 (a resend of whole lines beats a spliced one). */
function atLineStart(path: string, offset: number): number {
  if (offset === 0) return 0;
  const fd = openSync(path, "r");
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, offset - 1);
    return b[0] === 10 ? offset : 0;
  } finally {
    closeSync(fd);
  }
}
