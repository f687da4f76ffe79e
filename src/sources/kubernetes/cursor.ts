// Exact resume for one log stream of one container instance.
// The cursor is the last timestamp forwarded and how many lines carried that
// exact timestamp. A reconnect asks for sinceTime = the cursor's whole second
// (the API server truncates to seconds anyway), then skips every line before
// the cursor and the first `count` lines at it: no gap, no duplicate, and
// lines sharing a timestamp are never dropped for that reason alone.

export interface CursorState {
  /** RFC3339 timestamp exactly as the API sent it. */
  ts: string;
  /** Lines already forwarded that carry exactly `ts`. */
  count: number;
}

const FIXED_Z = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/;

/** Nanoseconds since the epoch as a bigint-free pair, for timestamps not in the fixed `…123456789Z` form. */
function parseTs(ts: string): { s: number; ns: number } | null {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (!m) return null;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) return null;
  return { s: ms / 1000, ns: Number(((m[2] ?? "") + "000000000").slice(0, 9)) };
}

/** The kubelet's fixed-width UTC form, "2026-03-19T10:23:45.123456789Z". */
function isFixedZ(ts: string): boolean {
  return ts.length === 30 && ts.charCodeAt(29) === 90;
}

/** Orders two API timestamps: negative, zero or positive. */
export function compareTs(a: string, b: string): number {
  // Fast path: the kubelet's fixed-width UTC form compares as text.
  if (a.length === b.length && a.length === 30 && a.charCodeAt(29) === 90 && b.charCodeAt(29) === 90) {
    return a < b ? -1 : a > b ? 1 : 0;
  }
  const pa = parseTs(a);
  const pb = parseTs(b);
  if (!pa || !pb) return a < b ? -1 : a > b ? 1 : 0;
  return pa.s !== pb.s ? pa.s - pb.s : pa.ns - pb.ns;
}

/** True for a timestamp the API would send with timestamps=true. */
export function isApiTimestamp(ts: string): boolean {
  return FIXED_Z.test(ts) || parseTs(ts) !== null;
}

/** The cursor's second as sinceTime (RFC3339, seconds precision, UTC). */
export function sinceTimeFor(ts: string): string {
  if (FIXED_Z.test(ts)) return ts.slice(0, 19) + "Z";
  const p = parseTs(ts);
  if (!p) return ts;
  return new Date(Math.floor(p.s) * 1000).toISOString().slice(0, 19) + "Z";
}

export class Cursor {
  /** Last timestamp forwarded and its count; null before the first line. */
  state: CursorState | null;
  /** While resuming: lines at or before the cursor still to skip. */
  private skipping = false;
  private skipAtTs = 0;

  constructor(initial: CursorState | null = null) {
    this.state = initial;
  }

  /**
   * True once the resume has passed the cursor point (or there was nothing to
   * skip): every later line is new. Still false after a response means the
   * response ended before the cursor point, e.g. it was the log of another
   * container instance whose lines are all older than the cursor.
   */
  get resumed(): boolean {
    return !this.skipping;
  }

  /** A copy of the state (accept() changes the count in place). */
  snapshot(): CursorState | null {
    return this.state === null ? null : { ts: this.state.ts, count: this.state.count };
  }

  /** Called when a new request starts from this cursor (sinceTime = sinceTimeFor(state.ts)). */
  beginResume(): void {
    this.skipping = this.state !== null;
    this.skipAtTs = 0;
  }

  /**
   * Decides for one line with timestamp `ts`: true to forward it (the cursor
   * then moves to it), false when it was already forwarded.
   */
  accept(ts: string): boolean {
    const st = this.state;
    if (this.skipping && st !== null) {
      const c = compareTs(ts, st.ts);
      if (c < 0) return false;
      if (c === 0 && this.skipAtTs < st.count) {
        // The count-th line at the cursor's timestamp is the cursor point itself:
        // everything after it is new, whatever its timestamp.
        if (++this.skipAtTs >= st.count) this.skipping = false;
        return false;
      }
      this.skipping = false;
    }
    // Two different strings of the kubelet's fixed UTC form are never the same instant.
    if (st !== null && (st.ts === ts || (!(isFixedZ(st.ts) && isFixedZ(ts)) && compareTs(st.ts, ts) === 0))) st.count++;
    else this.state = { ts, count: 1 };
    return true;
  }
}
