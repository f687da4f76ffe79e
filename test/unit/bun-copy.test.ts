// The benchmark's Bun floor (scripts/lib/bun-copy.ts) must copy the body exactly,
// or its figures would not be a floor for the same work.
import { afterAll, expect, test } from "bun:test";
import type { Server } from "bun";

const SCRIPT = new URL("../../scripts/lib/bun-copy.ts", import.meta.url).pathname;
const lines = Array.from({ length: 5000 }, (_, i) => `{"n":${i},"msg":"line ${i} ${"x".repeat(i % 97)}"}\n`);
const body = Buffer.from(lines.join(""));

const servers: Server<undefined>[] = [];
afterAll(() => {
  for (const s of servers) s.stop(true);
});

/** Serves `body` chunked (pieces of odd sizes, so chunk sizes and CRLFs land anywhere in a read) or with a content-length. */
function feeder(chunked: boolean): Server<undefined> {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch() {
      if (!chunked) return new Response(body);
      let off = 0;
      let size = 1;
      return new Response(
        new ReadableStream({
          pull(controller) {
            if (off >= body.length) return controller.close();
            controller.enqueue(body.subarray(off, off + size));
            off += size;
            size = (size * 7 + 13) % 9001;
          },
        }),
      );
    },
  });
  servers.push(server);
  return server;
}

async function copyThrough(chunked: boolean): Promise<{ received: Buffer; exitCode: number | null }> {
  const parts: Buffer[] = [];
  const { promise: closed, resolve } = Promise.withResolvers<void>();
  const receiver = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(_s, d) {
        parts.push(Buffer.from(d));
      },
      close() {
        resolve();
      },
    },
  });
  try {
    const source = feeder(chunked);
    const proc = Bun.spawn([process.execPath, SCRIPT, `http://127.0.0.1:${source.port}/`, String(receiver.port)], { stdout: "ignore", stderr: "pipe" });
    const exitCode = await proc.exited;
    await closed;
    return { received: Buffer.concat(parts), exitCode };
  } finally {
    receiver.stop(true);
  }
}

test("bun-copy forwards a chunked body byte for byte and exits 0 at its end", async () => {
  const { received, exitCode } = await copyThrough(true);
  expect(exitCode).toBe(0);
  expect(received.length).toBe(body.length);
  expect(received.equals(body)).toBe(true);
});

test("bun-copy forwards a content-length body byte for byte", async () => {
  const { received, exitCode } = await copyThrough(false);
  expect(exitCode).toBe(0);
  expect(received.equals(body)).toBe(true);
});
