// GET /healthz (liveness: the main loop ticked within --healthcheck-max-age),
// GET /readyz (source and sink connected) and GET /metrics, with Bun.serve.
import type { Server } from "bun";
import type { HealthConfig } from "./config.ts";
import type { Metrics } from "./metrics.ts";

export class Liveness {
  private last = Date.now();
  constructor(private readonly maxAgeS: number) {}
  tick(): void {
    this.last = Date.now();
  }
  get fresh(): boolean {
    return Date.now() - this.last <= this.maxAgeS * 1000;
  }
}

/**
 * How often to tick: every `everyMs`, and at least twice per max age, so that
 * a short --healthcheck-max-age never blinks stale between two ticks.
 */
export function tickPeriodMs(everyMs: number, maxAgeS: number): number {
  return Math.max(100, Math.min(everyMs, (maxAgeS * 1000) / 2));
}

export interface ReadinessCheck {
  /** null when ready, else a one-line reason. */
  (): string | null;
}

export interface HealthServer {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

export function startHealthServer(cfg: HealthConfig, liveness: Liveness, ready: ReadinessCheck, metrics: Metrics): HealthServer {
  const text = (body: string, status: number) =>
    new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
  const server: Server<undefined> = Bun.serve({
    hostname: cfg.host,
    port: cfg.port,
    development: false,
    // A second relay on the same address must fail, not share it and answer for the first.
    reusePort: false,
    fetch(req) {
      switch (new URL(req.url).pathname) {
        case "/readyz": {
          const reason = ready();
          return reason === null ? text("ready\n", 200) : text(`not ready: ${reason}\n`, 503);
        }
        case "/metrics":
          return new Response(metrics.render(), { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } });
        default:
          // /healthz, and every other path and method: the reference answers any request
          // with its liveness, so a probe written for it (another path, POST) keeps working.
          return liveness.fresh ? text("ok\n", 200) : text("stale\n", 503);
      }
    },
    error() {
      return text("internal error\n", 500);
    },
  });
  const host = cfg.host.includes(":") ? `[${cfg.host}]` : cfg.host;
  return {
    url: `http://${host}:${server.port}`,
    port: server.port ?? cfg.port,
    stop: () => server.stop(true),
  };
}
