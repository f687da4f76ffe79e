// What main.ts needs of a sink: start it, ask whether it is connected, flush on shutdown.
export interface Sink {
  start(): void;
  readonly connected: boolean;
  /** Stops taking new work once the queue is empty; resolves true if everything was written in time. */
  flush(timeoutMs: number): Promise<boolean>;
}
