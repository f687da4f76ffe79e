// What main.ts needs of a source.
export interface Source {
  /**
   * Optional start-up check, awaited before the relay reports itself started
   * (Kubernetes: the first pod list, so that a 401/403 is one line and exit 2).
   */
  prepare?(): Promise<void>;
  /** Streams until the signal aborts; rejects with SourceFatalError when it must give up. */
  run(signal: AbortSignal): Promise<void>;
  /** True while the source stream (or the Kubernetes watch) is established. */
  readonly connected: boolean;
  /** Optional last step on shutdown, awaited after the sink flushed (Kubernetes: the final state file save). */
  close?(): Promise<void>;
}

/** A source gave up (e.g. --source-reconnect-retries exhausted): the relay exits non-zero. */
export class SourceFatalError extends Error {}
