// First-line latency: from spawning a command to the first byte at a TCP
// receiver, on an otherwise idle machine. The throughput runs also report a
// first line, but there the feeder already floods both cores with 2,000,000
// lines while the relay starts, and each run gives one sample; here every
// command is started `trials` times (interleaved, so a busy moment hits all
// of them alike) against a feeder that answers each request at once with a
// few lines and ends the response. The receiver and the clock live in this
// process, so spawn time and arrival time come from one clock.
import { makeBlock } from "./log-lines.ts";

export interface FirstLineCommand {
  name: string;
  format: "ndjson" | "sse";
  /** The argv, given the feeder's URL and the receiver's port. */
  argv: (url: string, port: number) => string[];
}

export interface FirstLineResult {
  name: string;
  medianMs: number;
  p90Ms: number;
  /** Trials that saw no line within the timeout. */
  misses: number;
}

const LINES_PER_RESPONSE = 20;
const TRIAL_TIMEOUT_MS = 2000;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] as number;
}

export async function measureFirstLine(commands: FirstLineCommand[], trials: number): Promise<FirstLineResult[]> {
  const bodies = {
    ndjson: firstLines("ndjson"),
    sse: firstLines("sse"),
  };
  const feeder = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const format = new URL(req.url).pathname === "/sse" ? "sse" : "ndjson";
      return new Response(bodies[format], {
        headers: { "content-type": format === "sse" ? "text/event-stream" : "application/x-ndjson" },
      });
    },
  });
  let arrived: ((at: number) => void) | null = null;
  const receiver = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data() {
        const resolve = arrived;
        arrived = null;
        resolve?.(performance.now());
      },
    },
  });
  const times = commands.map(() => [] as number[]);
  const misses = commands.map(() => 0);
  try {
    for (let t = 0; t < trials; t++) {
      for (let c = 0; c < commands.length; c++) {
        const cmd = commands[c] as FirstLineCommand;
        const url = `http://127.0.0.1:${feeder.port}/${cmd.format === "sse" ? "sse" : ""}`;
        const first = new Promise<number>((resolve) => (arrived = resolve));
        const t0 = performance.now();
        const proc = Bun.spawn(cmd.argv(url, receiver.port), { stdout: "ignore", stderr: "ignore" });
        let timer: ReturnType<typeof setTimeout> | undefined;
        const at = await Promise.race([first, new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), TRIAL_TIMEOUT_MS)))]);
        clearTimeout(timer);
        arrived = null;
        if (at === null) misses[c] = (misses[c] as number) + 1;
        else (times[c] as number[]).push(at - t0);
        // The relay reconnects after the response ends; the pipe ends by itself.
        proc.kill("SIGKILL");
        await proc.exited;
      }
    }
  } finally {
    feeder.stop(true);
    receiver.stop(true);
  }
  return commands.map((cmd, c) => {
    const sorted = (times[c] as number[]).sort((a, b) => a - b);
    return {
      name: cmd.name,
      medianMs: sorted.length > 0 ? percentile(sorted, 0.5) : NaN,
      p90Ms: sorted.length > 0 ? percentile(sorted, 0.9) : NaN,
      misses: misses[c] as number,
    };
  });
}

/** The first records of the benchmark's block, as one response body. */
function firstLines(format: "ndjson" | "sse"): Uint8Array {
  const { block } = makeBlock(format, 0);
  // A record ends with a newline (ndjson) or with the blank line closing its event (SSE).
  const end = format === "sse" ? Buffer.from("\n\n") : Buffer.from("\n");
  const buf = Buffer.from(block.buffer, block.byteOffset, block.byteLength);
  let cut = 0;
  for (let seen = 0; seen < LINES_PER_RESPONSE; seen++) {
    const i = buf.indexOf(end, cut);
    if (i < 0) break;
    cut = i + end.length;
  }
  return block.slice(0, cut);
}
