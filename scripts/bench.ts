// make bench: the compiled relay against `curl -sN URL | socat - TCP:...`, in one run.
// For each scenario: a feeder (scripts/lib/line-server.ts) serves the lines, a
// receiver (scripts/lib/line-counter.ts) counts them, and we time from spawn to
// the last line; CPU seconds and peak RSS come from the kernel's rusage.
//   bun scripts/bench.ts [--lines 2000000] [--binary dist/vigil-log-relay]
import { parseArgs } from "node:util";
import type { Subprocess } from "bun";
import { makeBlock } from "./lib/log-lines.ts";

const { values } = parseArgs({
  options: {
    lines: { type: "string", default: "2000000" },
    binary: { type: "string", default: "dist/vigil-log-relay" },
    /** The relay's --queue-max-bytes; unset: the relay's default (64 MiB), which the queue fills when the receiver is slower. */
    "queue-max-bytes": { type: "string" },
  },
});
const TOTAL = Number(values.lines);
const BINARY = values.binary as string;
const bun = process.execPath;

interface Result {
  name: string;
  records: number;
  elapsedS: number;
  bytes: number;
  cpuS: number;
  rssMB: number;
  firstLineMs: number;
}

async function firstJsonLine(proc: Subprocess<"ignore", "pipe", "inherit">): Promise<Record<string, number>> {
  const reader = proc.stdout.getReader();
  let buf = "";
  while (!buf.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("process ended before printing its status line");
    buf += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return JSON.parse(buf.slice(0, buf.indexOf("\n"))) as Record<string, number>;
}

function has(cmd: string): boolean {
  return Bun.which(cmd) !== null;
}

async function scenario(
  name: string,
  format: "ndjson" | "sse",
  expectedLines: number,
  records: number,
  command: (url: string, port: number) => string[],
): Promise<Result> {
  const server = Bun.spawn([bun, "scripts/lib/line-server.ts", "--lines", String(TOTAL), "--format", format], {
    stdout: "pipe",
    stderr: "inherit",
  });
  const counter = Bun.spawn([bun, "scripts/lib/line-counter.ts", "--lines", String(expectedLines)], {
    stdout: "pipe",
    stderr: "inherit",
  });
  try {
    const { port } = await firstJsonLine(server);
    const { port: sinkPort } = await firstJsonLine(counter);
    const url = `http://127.0.0.1:${port}/`;
    const t0 = performance.timeOrigin + performance.now();
    const proc = Bun.spawn(command(url, sinkPort as number), { stdout: "ignore", stderr: "ignore" });
    const done = await firstJsonLine(counter);
    proc.kill("SIGTERM");
    await proc.exited;
    const usage = proc.resourceUsage();
    const elapsedS = ((done.lastAt as number) - t0) / 1000;
    return {
      name,
      records,
      elapsedS,
      bytes: done.bytes as number,
      cpuS: usage ? Number(usage.cpuTime.user + usage.cpuTime.system) / 1e6 : NaN,
      rssMB: usage ? usage.maxRSS / 1024 / 1024 : NaN,
      firstLineMs: (done.firstAt as number) - t0,
    };
  } finally {
    server.kill();
    counter.kill();
  }
}

function row(r: Result): string {
  const lps = r.records / r.elapsedS;
  return [
    r.name.padEnd(34),
    `${Math.round(lps).toLocaleString("en-US").padStart(11)} lines/s`,
    `${(r.bytes / r.elapsedS / 1e6).toFixed(1).padStart(7)} MB/s`,
    `${r.cpuS.toFixed(2).padStart(6)} CPU s`,
    `${r.rssMB.toFixed(1).padStart(7)} MB RSS`,
    `${r.firstLineMs.toFixed(1).padStart(7)} ms first line`,
  ].join("  ");
}

const ndjson = makeBlock("ndjson", TOTAL);
const sse = makeBlock("sse", TOTAL);
const records = ndjson.blocks * ndjson.records.length;
const INCLUDE = '"level":"(INFO|WARN|ERROR)"';
const EXCLUDE = "/healthz";
const inc = new RegExp(INCLUDE);
const exc = new RegExp(EXCLUDE);
const passing = sse.records.filter((l) => inc.test(l) && !exc.test(l)).length * sse.blocks;

const relay = (extra: string[]) => (url: string, port: number) => [
  BINARY,
  "--source-url",
  url,
  "--tcp-sink-host",
  "127.0.0.1",
  "--tcp-sink-port",
  String(port),
  "--healthcheck",
  "127.0.0.1:0",
  ...(values["queue-max-bytes"] ? ["--queue-max-bytes", values["queue-max-bytes"] as string] : []),
  ...extra,
];
const pipe = (url: string, port: number) => ["sh", "-c", `curl -sN '${url}' | socat -b 262144 - TCP:127.0.0.1:${port}`];
const havePipe = has("curl") && has("socat");

console.log(`vigil-log-relay benchmark: ${records.toLocaleString("en-US")} records of ~${Math.round(ndjson.block.length / ndjson.records.length)} bytes, ${navigator.hardwareConcurrency} cores`);
console.log(`relay: ${BINARY}, --queue-max-bytes ${values["queue-max-bytes"] ?? "default (67108864)"}`);
if (!havePipe) console.log("note: curl or socat is missing: the `curl | socat` baseline is skipped (apt-get install curl socat)");

const results: Array<[Result, Result | null]> = [];
results.push([
  await scenario("relay ndjson", "ndjson", records, records, relay([])),
  havePipe ? await scenario("curl | socat ndjson", "ndjson", ndjson.rawLines * ndjson.blocks, records, pipe) : null,
]);
results.push([
  await scenario("relay SSE + include + exclude", "sse", passing, records, relay(["--include", INCLUDE, "--exclude", EXCLUDE])),
  havePipe ? await scenario("curl | socat SSE (raw bytes)", "sse", sse.rawLines * sse.blocks, records, pipe) : null,
]);

for (const [mine, base] of results) {
  console.log(row(mine));
  if (base) {
    console.log(row(base));
    const ratio = mine.records / mine.elapsedS / (base.records / base.elapsedS);
    console.log(`${"  ratio (relay / pipe, records/s)".padEnd(34)}  ${ratio.toFixed(2)}x`);
  }
}
