// --max-log-requests: at most N log requests open at once; the others wait in
// a FIFO and start the moment a slot frees. Follow streams rarely end, so
// while anyone waits, a holder that has had its slot longer than the fair
// share is asked to yield (it closes, resumes exactly, and queues again).

export interface SlotHolder {
  /** Asked to give the slot back (close the request; it will queue again). */
  yieldSlot(): void;
}

interface Held {
  holder: SlotHolder;
  since: number;
  asked: boolean;
}

export class SlotPool {
  private readonly held = new Set<Held>();
  private readonly waiting: Array<{ holder: SlotHolder; grant: (h: Held) => void }> = [];
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    /** 0 = no cap. */
    private readonly max: number,
    private readonly fairShareMs: number,
    private readonly onChange: (active: number, waiting: number) => void,
  ) {}

  get active(): number {
    return this.held.size;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Resolves with a release function once a slot is free (at once without a cap). */
  acquire(holder: SlotHolder, signal: AbortSignal): Promise<() => void> {
    // An already aborted signal never fires "abort": without this check the entry
    // would wait forever and, once granted, hold a slot nobody releases.
    if (signal.aborted) return Promise.reject(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
    if (this.max <= 0 || (this.held.size < this.max && this.waiting.length === 0)) {
      return Promise.resolve(this.take(holder));
    }
    return new Promise((resolve, reject) => {
      const entry = {
        holder,
        grant: (h: Held) => {
          signal.removeEventListener("abort", onAbort);
          resolve(() => this.release(h));
        },
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        this.changed();
        reject(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(entry);
      this.changed();
      this.startRotation();
    });
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private take(holder: SlotHolder): () => void {
    const h: Held = { holder, since: Date.now(), asked: false };
    this.held.add(h);
    this.changed();
    return () => this.release(h);
  }

  private release(h: Held): void {
    if (!this.held.delete(h)) return;
    const next = this.waiting.shift();
    if (next) {
      const nh: Held = { holder: next.holder, since: Date.now(), asked: false };
      this.held.add(nh);
      next.grant(nh);
    }
    this.changed();
  }

  private changed(): void {
    this.onChange(this.held.size, this.waiting.length);
    if (this.waiting.length === 0) this.stop();
  }

  private startRotation(): void {
    if (this.timer !== undefined || this.fairShareMs <= 0) return;
    const tick = Math.max(50, Math.min(1000, Math.floor(this.fairShareMs / 4)));
    this.timer = setInterval(() => this.rotate(), tick);
  }

  /** Asks the longest holders over their fair share to yield, one per waiter. */
  private rotate(): void {
    let wanted = this.waiting.length - [...this.held].filter((h) => h.asked).length;
    if (wanted <= 0) return;
    const now = Date.now();
    const over = [...this.held].filter((h) => !h.asked && now - h.since >= this.fairShareMs).sort((a, b) => a.since - b.since);
    for (const h of over) {
      if (wanted-- <= 0) break;
      h.asked = true;
      h.holder.yieldSlot();
    }
  }
}
