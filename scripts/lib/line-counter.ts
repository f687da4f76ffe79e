// Benchmark receiver: a TCP server counting newlines. Prints {"port":N} when
// ready, then {"lines":N,"bytes":B,"firstMs":..,"lastMs":..} once `--lines` arrived
// (times in ms since its own start, via performance.timeOrigin for cross-process use).
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { lines: { type: "string", default: "2000000" } } });
const want = Number(values.lines);
let lines = 0;
let bytes = 0;
let first = 0;
const now = () => performance.timeOrigin + performance.now();
const server = Bun.listen({
  hostname: "127.0.0.1",
  port: 0,
  socket: {
    binaryType: "uint8array",
    data(_s, chunk: Uint8Array) {
      if (first === 0) first = now();
      bytes += chunk.length;
      let i = chunk.indexOf(10);
      while (i >= 0) {
        lines++;
        i = chunk.indexOf(10, i + 1);
      }
      if (lines >= want) {
        console.log(JSON.stringify({ lines, bytes, firstAt: first, lastAt: now() }));
        process.exit(0);
      }
    },
  },
});
console.log(JSON.stringify({ port: server.port }));
