// The files of the disk spool (--buffer-dir): append-only ndjson segments named by
// a sequence number, plus one small position file saying how far the sink got.
// Segments hold whole lines only, so any segment can be read on its own and an
// operator can inspect (or replay) them with ordinary tools.
import { closeSync, fsyncSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync, ftruncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const SEGMENT_RE = /^segment-(\d{1,15})\.ndjson$/;
const POSITION_FILE = "position.json";

/**
 * First sequence number in an empty directory. Shutdown may prepend segments
 * (sequence - 1), so numbering starts high enough never to reach 0.
 */
export const FIRST_SEQ = 1_000_000;

export interface SpoolPosition {
  seq: number;
  offset: number;
}

export interface SegmentInfo {
  seq: number;
  size: number;
}

export function segmentPath(dir: string, seq: number): string {
  return join(dir, `segment-${String(seq).padStart(12, "0")}.ndjson`);
}

/** The segments in DIR, oldest first. */
export function listSegments(dir: string): SegmentInfo[] {
  const out: SegmentInfo[] = [];
  for (const name of readdirSync(dir)) {
    const m = SEGMENT_RE.exec(name);
    if (!m) continue;
    const seq = Number(m[1]);
    out.push({ seq, size: statSync(join(dir, name)).size });
  }
  return out.sort((a, b) => a.seq - b.seq);
}

/**
 * Cuts a torn last line (the relay was killed in the middle of an append) off
 * the segment; returns the new size. The torn line's cursor had not advanced,
 * so its source sends it again.
 */
export function repairTornTail(path: string, size: number): number {
  if (size === 0) return 0;
  const fd = openSync(path, "r+");
  try {
    const chunk = Buffer.allocUnsafe(64 * 1024);
    let end = size;
    while (end > 0) {
      const start = Math.max(0, end - chunk.length);
      const n = readSync(fd, chunk, 0, end - start, start);
      const nl = chunk.subarray(0, n).lastIndexOf(10);
      if (nl >= 0) {
        const keep = start + nl + 1;
        if (keep !== size) ftruncateSync(fd, keep);
        return keep;
      }
      end = start;
    }
    ftruncateSync(fd, 0);
    return 0;
  } finally {
    closeSync(fd);
  }
}

/** The saved position, or null when absent or unreadable (the caller starts at the oldest segment). */
export function loadPosition(dir: string): SpoolPosition | null {
  let text: string;
  try {
    text = readFileSync(join(dir, POSITION_FILE), "utf8");
  } catch {
    return null;
  }
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== "object" || v === null) return null;
    const { seq, offset } = v as Record<string, unknown>;
    if (typeof seq !== "number" || typeof offset !== "number" || !Number.isSafeInteger(seq) || !Number.isSafeInteger(offset) || offset < 0) return null;
    return { seq, offset };
  } catch {
    return null;
  }
}

/** Writes the position atomically (temp file + rename), with fsync when `durable`. */
export function savePosition(dir: string, pos: SpoolPosition, durable: boolean): void {
  const path = join(dir, POSITION_FILE);
  const tmp = `${path}.tmp`;
  const body = JSON.stringify({ seq: pos.seq, offset: pos.offset }) + "\n";
  if (durable) {
    const fd = openSync(tmp, "w", 0o600);
    try {
      writeFileSync(fd, body);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } else {
    writeFileSync(tmp, body, { mode: 0o600 });
  }
  renameSync(tmp, path);
}
