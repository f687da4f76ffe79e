// Doubling backoff between a first delay and a ceiling; reset after success.
export class Backoff {
  private current: number;

  constructor(
    private readonly first: number,
    private readonly max: number,
  ) {
    this.current = first;
  }

  /** The delay to wait now; the next one doubles (up to the ceiling). */
  next(): number {
    const d = Math.min(this.current, Math.max(this.max, this.first));
    this.current = Math.min(Math.max(this.current * 2, 1), Math.max(this.max, this.first));
    return d;
  }

  reset(): void {
    this.current = this.first;
  }
}

/** Resolves after `ms`, or at once when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted || ms <= 0) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** True if `p` settles within `ms`, false if the time runs out first. */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
