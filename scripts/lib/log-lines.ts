// Realistic log lines (~200 bytes) for the benchmarks, and the block the feeder repeats.
const LEVELS = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"];
const PATHS = ["/api/v1/orders", "/api/v1/users/42", "/healthz", "/readyz", "/api/v1/cart/checkout", "/static/app.js"];

/** One realistic line; `i` makes each distinct. */
export function makeLine(i: number): string {
  const level = LEVELS[i % LEVELS.length];
  const path = PATHS[(i * 7) % PATHS.length];
  return JSON.stringify({
    ts: `2026-03-19T10:${String(Math.floor(i / 60) % 60).padStart(2, "0")}:${String(i % 60).padStart(2, "0")}.${String(i % 1000).padStart(3, "0")}Z`,
    level,
    msg: `request handled ${path}`,
    method: "GET",
    status: level === "ERROR" ? 500 : 200,
    duration_ms: (i * 13) % 997,
    user_agent: "Mozilla/5.0 (X11; Linux x86_64)",
    trace_id: ((i * 2654435761) >>> 0).toString(16).padStart(8, "0") + "c0ffee",
    seq: i,
  });
}

export const BLOCK_RECORDS = 5000;

export interface Block {
  block: Uint8Array;
  /** How many times the block is sent to reach the requested record count. */
  blocks: number;
  records: string[];
  /** Newlines in one block (what a byte pipe delivers). */
  rawLines: number;
}

export function makeBlock(format: "ndjson" | "sse", total: number): Block {
  const records: string[] = [];
  let text = "";
  for (let i = 0; i < BLOCK_RECORDS; i++) {
    const line = makeLine(i);
    records.push(line);
    text += format === "sse" ? `event: log\ndata: ${line}\n\n` : `${line}\n`;
    if (format === "sse" && i % 100 === 0) text += ": keepalive\n";
  }
  const block = new TextEncoder().encode(text);
  let rawLines = 0;
  for (const b of block) if (b === 10) rawLines++;
  return { block, blocks: Math.ceil(total / BLOCK_RECORDS), records, rawLines };
}
