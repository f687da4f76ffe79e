// Entry: CLI -> Config -> source, queue, sink, health; signals; exit codes.
//   0  clean stop (SIGTERM/SIGINT), help, version
//   1  a source gave up (--source-reconnect-retries) or an unexpected fault
//   2  bad start-up input: flags, regexes, files, listen address, API refusal
import { ConfigError, parseCli } from "./cli.ts";
import type { Config } from "./config.ts";
import { startHealthServer, Liveness, tickPeriodMs } from "./health.ts";
import { createLogger, type Logger, writeStderr } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { OverflowQueue } from "./overflow-queue.ts";
import { type ByteQueue, MemoryQueue } from "./queue.ts";
import { TcpSink } from "./sinks/tcp.ts";
import { StdoutSink } from "./sinks/stdout.ts";
import type { Sink } from "./sinks/sink.ts";
import { HttpSource } from "./sources/http.ts";
import { shownUrl } from "./http/userinfo.ts";
import { SourceFatalError, type Source } from "./sources/source.ts";
import { firstLineOf, StartupError } from "./startup-error.ts";

const NAME = "vigil-log-relay";

/**
 * The liveness tick of the HTTP modes (REFERENCE: every 30 s and on each connect
 * attempt); at most half the max age, so /healthz never blinks stale between ticks.
 */
const HTTP_TICK_MS = 30_000;

/**
 * The compiled binary starts with the JIT held back (scripts/build.ts,
 * --compile-jit-policy): start-up code runs once and compiling it only delays
 * the first line. The normal policy returns this soon after start, before the
 * hot paths (framing, batching) matter.
 */
const JIT_NORMAL_AFTER_MS = 50;

function fail(message: string): never {
  throw new StartupError(message);
}

async function createSource(cfg: Config, queue: ByteQueue, log: Logger, metrics: Metrics, liveness: Liveness): Promise<Source> {
  switch (cfg.source) {
    case "url":
    case "socket":
      return new HttpSource(cfg, queue, log, metrics, { onAttempt: () => liveness.tick() });
    case "kubernetes": {
      // Loaded only in this mode: @kubernetes/client-node adds ~30 ms to start-up.
      const { KubernetesSource } = await import("./sources/kubernetes/source.ts");
      return new KubernetesSource(cfg, queue, log, metrics, () => liveness.tick());
    }
  }
}

async function run(cfg: Config): Promise<number> {
  const log = createLogger({ format: cfg.logFormat, debug: cfg.debug });
  // First of all: a signal during start-up must stop the relay the orderly way too.
  const stop = new AbortController();
  let signals = 0;
  const onSignal = (sig: string) => {
    signals++;
    if (signals > 1) {
      log.warn("second signal, exiting at once", { signal: sig });
      process.exit(130);
    }
    log.info("stopping", { signal: sig });
    stop.abort();
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));
  setTimeout(() => Bun.unsafe.setJITPolicy(1), JIT_NORMAL_AFTER_MS).unref();
  const metrics = new Metrics();
  const memory = new MemoryQueue(cfg.queueMaxBytes);
  metrics.queueBytes.sample(() => memory.bytes);
  // Without a spool and with the default --when-full block, the memory queue alone (the fast path).
  let overflow: OverflowQueue | null = null;
  if (cfg.spool !== undefined || cfg.whenFull !== "block") {
    // Loaded only with --buffer-dir: the spool's modules (and node:path) would cost every start.
    const spool = cfg.spool === undefined ? null : (await import("./spool/open.ts")).openSpool(cfg.spool, log, metrics);
    overflow = new OverflowQueue(memory, spool, cfg.spool?.maxBytes ?? 0, cfg.whenFull, metrics, log);
  }
  const queue: ByteQueue = overflow ?? memory;
  const liveness = new Liveness(cfg.health.maxAgeS);
  const sink: Sink = cfg.stdoutSink
    ? new StdoutSink(queue, metrics, (message) => {
        log.error(message);
        process.exit(1);
      })
    : new TcpSink(cfg.tcp, queue, log, metrics);
  const source = await createSource(cfg, queue, log, metrics, liveness);
  if (source.prepare) await source.prepare();

  // The sink connects while the health server starts (the source waits for it: a
  // health port in use ends the start-up, and lines read by then would be lost).
  sink.start();
  const notConnected = cfg.source === "kubernetes" ? "pod watch not established" : "source not connected";
  let health;
  try {
    health = startHealthServer(
      cfg.health,
      liveness,
      () => (!source.connected ? notConnected : !sink.connected ? "sink not connected" : null),
      metrics,
    );
  } catch (e) {
    fail(`--healthcheck ${cfg.health.host}:${cfg.health.port}: cannot listen: ${e instanceof Error ? e.message : String(e)}`);
  }
  log.info("health check listening", { address: `${health.url}/healthz` });


  const ticker = cfg.source === "kubernetes" ? undefined : setInterval(() => liveness.tick(), tickPeriodMs(HTTP_TICK_MS, cfg.health.maxAgeS));
  log.info("relay started", {
    source: cfg.source === "url" ? shownUrl(new URL(cfg.sourceUrl ?? "")) : cfg.source === "socket" ? `unix:${cfg.sourceSocket}` : "kubernetes",
    sink: cfg.stdoutSink ? "stdout" : `${cfg.tcp.host}:${cfg.tcp.port}`,
  });

  let code = 0;
  const stopped = new Promise<void>((resolve) => stop.signal.addEventListener("abort", () => resolve(), { once: true }));
  try {
    // The source may be blocked on a full queue when the signal comes: do not wait for it.
    await Promise.race([source.run(stop.signal), stopped]);
  } catch (e) {
    if (!(e instanceof SourceFatalError)) throw e;
    log.error(e.message);
    code = 1;
  }
  stop.abort();
  clearInterval(ticker);
  // With a spool, the sink writes what is in memory; what it cannot write stays on disk.
  overflow?.beginShutdown();
  const pending = memory.bytes;
  const flushed = await sink.flush(cfg.shutdownTimeoutMs);
  const rest = sink.abandon();
  const spooled = overflow?.closeSpool(rest) ?? 0;
  if (cfg.spool !== undefined) {
    const message = flushed ? "stopped; memory queue flushed" : "stopped; the sink did not take everything within --shutdown-timeout";
    log.info(message, { bytes_left_in_spool: spooled });
  } else if (flushed) log.info("stopped; queue flushed", { bytes: pending });
  else log.warn("stopped; queue not fully flushed within --shutdown-timeout", { bytes_left: memory.bytes, timeout_ms: cfg.shutdownTimeoutMs });
  // After the flush: the state file then holds every line the sink wrote.
  if (source.close) await source.close();
  await health.stop();
  return code;
}

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseCli(process.argv.slice(2), process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      writeStderr(`${NAME}: error: ${firstLineOf(e.message)}`);
      return 2;
    }
    throw e;
  }
  if (parsed.kind !== "run") {
    console.log("%s", parsed.text);
    return 0;
  }
  try {
    return await run(parsed.config);
  } catch (e) {
    if (e instanceof StartupError) {
      writeStderr(`${NAME}: error: ${firstLineOf(e.message)}`);
      return 2;
    }
    throw e;
  }
}

// Runtime faults are logged, never fatal: the relay must not fall over.
process.on("unhandledRejection", (e) => {
  writeStderr(`${NAME}: unexpected error (continuing): ${e instanceof Error ? e.message : String(e)}`);
});

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    writeStderr(`${NAME}: error: ${firstLineOf(e instanceof Error ? e.message : String(e))}`);
    process.exit(1);
  },
);
