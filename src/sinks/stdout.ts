// --stdout-sink: the same batches, written to stdout through one FileSink; each
// batch is flushed (the promise settles once the pipe took every byte) before the
// next, so a slow reader of our stdout slows the sources. Not Bun.write(Bun.stdout):
// with a full pipe (Bun 1.4.5) consecutive awaited Bun.write calls interleaved,
// duplicating and splicing lines (test/integration/stdout.test.ts).
import type { FileSink } from "bun";
import { settlesWithin } from "../backoff.ts";
import type { Metrics } from "../metrics.ts";
import type { ByteQueue } from "../queue.ts";
import { BatchBuilder, completeBatch } from "./batch.ts";
import type { Sink } from "./sink.ts";

export class StdoutSink implements Sink {
  private readonly batches = new BatchBuilder();
  private stopping = false;
  private loop: Promise<void> | null = null;
  private abandoned = false;
  /** The batch being written: its write may not have reached the pipe yet. */
  private writing: Uint8Array | null = null;
  readonly connected = true;

  constructor(
    private readonly queue: ByteQueue,
    private readonly metrics: Metrics,
    /** Stdout is gone (EPIPE): nothing more can be delivered. */
    private readonly onFatal: (message: string) => void,
    private readonly write: (buf: Uint8Array) => Promise<unknown> = stdoutWriter(),
  ) {}

  start(): void {
    this.loop ??= this.run();
  }

  async flush(timeoutMs: number): Promise<boolean> {
    this.stopping = true;
    this.queue.wake();
    return settlesWithin(this.loop ?? Promise.resolve(), timeoutMs);
  }

  abandon(): Uint8Array | null {
    this.abandoned = true;
    this.queue.wake();
    const rest = this.writing;
    this.writing = null;
    return rest === null ? null : rest.slice();
  }

  private async run(): Promise<void> {
    while (true) {
      if (this.abandoned) return;
      const batch = this.batches.next(this.queue);
      if (batch === null) {
        if (this.stopping) return;
        await this.queue.waitForData();
        continue;
      }
      try {
        this.writing = batch.buf;
        await this.write(batch.buf);
        this.writing = null;
        if (this.abandoned) return;
      } catch (e) {
        this.onFatal(`cannot write to stdout (--stdout-sink): ${e instanceof Error ? e.message : String(e)}`);
        return;
      }
      completeBatch(batch, this.queue, this.metrics);
    }
  }
}

/** Writes to stdout; the promise settles once every byte is with the kernel. */
function stdoutWriter(): (buf: Uint8Array) => Promise<unknown> {
  let sink: FileSink | null = null;
  return async (buf) => {
    sink ??= Bun.stdout.writer();
    // write() returns a promise when it could not write at once; a closed pipe rejects it.
    const pending = sink.write(buf);
    if (typeof pending !== "number") await pending;
    await sink.flush();
  };
}
