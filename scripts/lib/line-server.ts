// Benchmark feeder: serves `--lines` realistic log lines (~200 bytes) as ndjson
// or SSE over HTTP, as fast as the client reads. Prints {"port":N} when ready.
//   bun scripts/lib/line-server.ts --lines 2000000 --format ndjson|sse
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { lines: { type: "string", default: "2000000" }, format: { type: "string", default: "ndjson" }, port: { type: "string", default: "0" } },
});
const total = Number(values.lines);
import { makeBlock } from "./log-lines.ts";

const { block, blocks } = makeBlock(values.format === "sse" ? "sse" : "ndjson", total);
const CHUNK = 64 * 1024;
let requests = 0;

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(values.port),
  idleTimeout: 0,
  fetch() {
    // Only the first request gets the stream: a relay reconnecting after EOF gets nothing more.
    if (requests++ > 0) return new Response("", { headers: { "content-type": "application/x-ndjson" } });
    let sent = 0;
    let off = 0;
    return new Response(
      new ReadableStream({
        type: "bytes",
        pull(controller) {
          if (sent >= blocks) {
            controller.close();
            return;
          }
          const end = Math.min(off + CHUNK, block.length);
          controller.enqueue(block.slice(off, end));
          off = end;
          if (off >= block.length) {
            off = 0;
            sent++;
          }
        },
      }),
      { headers: { "content-type": values.format === "sse" ? "text/event-stream" : "application/x-ndjson" } },
    );
  },
});
console.log(JSON.stringify({ port: server.port }));
