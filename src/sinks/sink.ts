// What main.ts needs of a sink: start it, ask whether it is connected, flush on shutdown.
export interface Sink {
  start(): void;
  readonly connected: boolean;
  /** Stops taking new work once the queue is empty; resolves true if everything was written in time. */
  flush(timeoutMs: number): Promise<boolean>;
  /**
   * After flush: stop for good and hand back the rest of the batch in flight that
   * is not known to be written (from a line start), or null. Used to keep it in the spool.
   */
  abandon(): Uint8Array | null;
}
