// The benchmark's runtime floor: the least a Bun program can do for the relay's
// job. It GETs one HTTP body over Bun.connect and forwards its bytes, unframed
// and unfiltered, to a TCP receiver, pausing the source while the receiver is
// behind (no queue beyond one read), then exits at the body's end.
// Compiled like the relay (bun build --compile), its peak RSS is what any Bun
// relay costs at this rate before it does any work of its own.
//   bun-copy URL RECEIVER_PORT        (http only; identity or chunked bodies)
import type { Socket } from "bun";

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

/** A response decoder just good enough for the benchmark's feeder: head, then identity or chunked. */
class Body {
  private head = "";
  private inBody = false;
  private chunked = false;
  /** chunked: bytes left of the current chunk's data (-1: reading a size line) and its trailing CRLF */
  private left = -1;
  private sizeLine = "";

  /** The body bytes in `d`; sets `done` at the final 0-chunk. */
  feed(d: Uint8Array, out: Uint8Array[]): boolean {
    let pos = 0;
    if (!this.inBody) {
      this.head += Buffer.from(d).toString("latin1");
      const end = this.head.indexOf("\r\n\r\n");
      if (end < 0) return false;
      this.inBody = true;
      this.chunked = /^transfer-encoding:\s*chunked/im.test(this.head.slice(0, end));
      pos = d.length - (this.head.length - end - 4);
    }
    if (!this.chunked) {
      if (pos < d.length) out.push(d.subarray(pos));
      return false;
    }
    while (pos < d.length) {
      if (this.left < 0) {
        const nl = d.indexOf(10, pos);
        if (nl < 0) {
          this.sizeLine += Buffer.from(d.subarray(pos)).toString("latin1");
          return false;
        }
        this.sizeLine += Buffer.from(d.subarray(pos, nl)).toString("latin1");
        pos = nl + 1;
        const size = Number.parseInt(this.sizeLine.trim(), 16);
        this.sizeLine = "";
        if (size === 0) return true;
        this.left = size + 2; // the data, then its CRLF
        continue;
      }
      const take = Math.min(this.left, d.length - pos);
      const data = Math.min(take, this.left - 2);
      if (data > 0) out.push(d.subarray(pos, pos + data));
      pos += take;
      this.left -= take;
      if (this.left === 0) this.left = -1;
    }
    return false;
  }
}

const body = new Body();
source = await Bun.connect({
  hostname: url.hostname,
  port: Number(url.port || 80),
  socket: {
    binaryType: "uint8array",
    open(s) {
      s.write(`GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n\r\n`);
    },
    data(s, d: Uint8Array) {
      if (body.feed(d, pending)) ended = true;
      flush(receiver);
      if (pending.length > 0) s.pause();
    },
    close() {
      ended = true;
      flush(receiver);
    },
  },
});
