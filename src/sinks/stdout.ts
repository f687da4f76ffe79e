// --stdout-sink: the same batches, written to stdout. Bun.write resolves only
// once the bytes are written, so a slow reader of our stdout slows the sources.
import type { Metrics } from "../metrics.ts";
import type { ByteQueue } from "../queue.ts";
import { BatchBuilder, completeBatch } from "./batch.ts";
import type { Sink } from "./sink.ts";

export class StdoutSink implements Sink {
  private readonly batches = new BatchBuilder();
  private stopping = false;
  private loop: Promise<void> | null = null;
  readonly connected = true;

  constructor(
    private readonly queue: ByteQueue,
    private readonly metrics: Metrics,
    private readonly write: (buf: Uint8Array) => Promise<unknown> = (buf) => Bun.write(Bun.stdout, buf),
  ) {}

  start(): void {
    this.loop ??= this.run();
  }

  async flush(timeoutMs: number): Promise<boolean> {
    this.stopping = true;
    this.queue.wake();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ok = await Promise.race([
      (this.loop ?? Promise.resolve()).then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    return ok;
  }

  private async run(): Promise<void> {
    while (true) {
      const batch = this.batches.next(this.queue);
      if (batch === null) {
        if (this.stopping) return;
        await this.queue.waitForData();
        continue;
      }
      await this.write(batch.buf);
      completeBatch(batch, this.queue, this.metrics);
    }
  }
}
