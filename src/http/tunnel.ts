// TLS to the target inside a TLS connection to an https:// proxy.
//
// Bun's socket.upgradeTLS() only works on a plain TCP socket: on a TLS socket
// it returns undefined (Bun 1.4.5), so TLS-in-TLS cannot use it. Instead
// node:tls runs the inner TLS session over a Duplex whose other side is the
// Bun TLS socket to the proxy. Backpressure is kept both ways: the inner
// socket's pause() stops reads from the Duplex, a full Duplex pauses the Bun
// socket, and writes wait for its drain.
import type { Socket } from "bun";
import { Duplex } from "node:stream";
import * as tls from "node:tls";

/** The transport an exchange writes the request to and reads the response from. */
export interface Wire {
  /** bytes taken (may be short: wait for drain), -1 when closed */
  write(data: Uint8Array): number;
  pause(): void;
  resume(): void;
  /** graceful close */
  end(): void;
  /** abrupt close */
  terminate(): void;
}

export interface TunnelCallbacks {
  /** the inner handshake finished (verification already passed or was waived) */
  secure(): void;
  data(chunk: Uint8Array): void;
  /** the inner stream ended (err null: clean FIN / close_notify) */
  eof(err: Error | null): void;
}

export class NodeTlsTunnel implements Wire {
  private readonly duplex: Duplex;
  private readonly inner: tls.TLSSocket;
  private outerPaused = false;
  /** a Duplex write the outer socket did not take whole yet */
  private pending: { rest: Uint8Array; done: (err?: Error | null) => void } | null = null;

  constructor(
    private readonly outer: Socket<unknown>,
    options: tls.ConnectionOptions,
    cb: TunnelCallbacks,
  ) {
    this.duplex = new Duplex({
      read: () => {
        // node:tls wants more: undo a pause that a full Duplex caused
        if (this.outerPaused) {
          this.outerPaused = false;
          this.outer.resume();
        }
      },
      write: (chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void) => {
        const n = this.outer.write(chunk);
        if (n < 0) done(new Error("proxy connection closed"));
        else if (n < chunk.length) this.pending = { rest: chunk.subarray(n), done };
        else done();
      },
      final: (done: (err?: Error | null) => void) => done(),
      destroy: (err: Error | null, done: (err: Error | null) => void) => done(err),
    });
    this.inner = tls.connect({ ...options, socket: this.duplex });
    this.inner.on("secureConnect", () => cb.secure());
    this.inner.on("data", (d: Buffer) => cb.data(d));
    this.inner.on("end", () => cb.eof(null));
    this.inner.on("error", (err: Error) => cb.eof(err));
    this.inner.on("close", () => cb.eof(null));
  }

  /** bytes from the proxy socket (after the CONNECT response) */
  feed(chunk: Uint8Array): void {
    if (!this.duplex.push(chunk) && !this.outerPaused) {
      this.outerPaused = true;
      this.outer.pause();
    }
  }

  /** the proxy socket ended or failed */
  outerEnded(err: Error | null): void {
    if (err) this.duplex.destroy(err);
    else this.duplex.push(null);
  }

  /** the proxy socket's drain: finish a short write */
  outerDrained(): void {
    const p = this.pending;
    if (!p) return;
    const n = this.outer.write(p.rest);
    if (n < 0) {
      this.pending = null;
      p.done(new Error("proxy connection closed"));
    } else if (n < p.rest.length) {
      p.rest = p.rest.subarray(n);
    } else {
      this.pending = null;
      p.done();
    }
  }

  write(data: Uint8Array): number {
    if (this.inner.destroyed) return -1;
    this.inner.write(data); // node streams buffer what the tunnel cannot take yet
    return data.length;
  }

  pause(): void {
    this.inner.pause();
  }

  resume(): void {
    this.inner.resume();
  }

  end(): void {
    this.inner.end();
  }

  terminate(): void {
    this.inner.destroy();
    this.duplex.destroy();
  }
}
