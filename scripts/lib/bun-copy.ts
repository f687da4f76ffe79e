// The benchmark's runtime floor: the least a Bun program can do for the relay's
// job. It GETs one HTTP body over Bun.connect and forwards its bytes, unframed
// and unfiltered, to a TCP receiver, pausing the source while the receiver is
// behind (no queue beyond one read), then exits at the body's end.
// Compiled like the relay (bun build --compile), its peak RSS is what any Bun
// relay costs at this rate before it does any work of its own.
//   bun-copy URL RECEIVER_PORT        (http only)
import type { Socket } from "bun";
import { type BodyDecoder, bodyDecoderFor } from "../../src/http/body.ts";
import { HeadParser } from "../../src/http/head.ts";
import { buildRequest, portOf } from "../../src/http/request-head.ts";

// Built with the relay's options (scripts/build.ts), it starts with the JIT held
// back too; the normal policy returns after 50 ms, as in src/main.ts.
setTimeout(() => Bun.unsafe.setJITPolicy(1), 50).unref();

const url = new URL(process.argv[2] ?? "");
const receiverPort = Number(process.argv[3]);

/** Bytes read from the source but not yet accepted by the receiver. */
const pending: Uint8Array[] = [];
let source: Socket<undefined> | null = null;
let ended = false;

function flush(receiver: Socket<undefined>): void {
  while (pending.length > 0) {
    const buf = pending[0] as Uint8Array;
    const n = receiver.write(buf);
    if (n < buf.length) {
      pending[0] = buf.subarray(Math.max(n, 0));
      return;
    }
    pending.shift();
  }
  if (!ended) {
    source?.resume();
    return;
  }
  // Everything is in the kernel's socket buffer: it goes out after the exit too.
  receiver.end();
  process.exit(0);
}

const receiver = await Bun.connect({
  hostname: "127.0.0.1",
  port: receiverPort,
  socket: {
    binaryType: "uint8array",
    data() {},
    drain: flush,
  },
});

// The relay's own request and response code (src/http): the floor speaks HTTP as the relay does.
const headParser = new HeadParser();
let decoder: BodyDecoder | null = null;
const forward = (data: Uint8Array) => {
  pending.push(data);
};

/** Queues the body bytes of one read in `pending`; true once the body is complete. */
function feed(d: Uint8Array): boolean {
  let rest = d;
  if (decoder === null) {
    const parsed = headParser.push(d);
    if (parsed === null) return false;
    decoder = bodyDecoderFor(parsed.head.status, parsed.head.headers);
    rest = parsed.rest;
  }
  return decoder.push(rest, forward);
}

source = await Bun.connect({
  hostname: url.hostname,
  port: portOf(url),
  socket: {
    binaryType: "uint8array",
    open(s) {
      s.write(buildRequest(url, undefined));
    },
    data(s, d: Uint8Array) {
      if (feed(d)) ended = true;
      flush(receiver);
      if (pending.length > 0) s.pause();
    },
    close() {
      ended = true;
      flush(receiver);
    },
  },
});
