// Opens the --buffer-dir spool at start-up: one-line errors for an unusable
// directory, a note about what a previous run left, and the spool gauges.
import type { SpoolConfig } from "../config.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { StartupError } from "../startup-error.ts";
import { Spool } from "./spool.ts";

/** Segments are about an eighth of the spool (so space frees up in steps), within 64 KiB..16 MiB. */
export function segmentBytesFor(maxBytes: number): number {
  return Math.min(16 * 1024 * 1024, Math.max(64 * 1024, Math.floor(maxBytes / 8)));
}

export function openSpool(cfg: SpoolConfig, log: Logger, metrics: Metrics): Spool {
  let opened;
  try {
    opened = Spool.open(cfg.dir, segmentBytesFor(cfg.maxBytes));
  } catch (e) {
    throw new StartupError(`--buffer-dir ${cfg.dir}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const { spool, recoveredBytes, positionLost } = opened;
  if (positionLost) log.warn("spool position file missing or unreadable; the spool is sent again from its oldest segment", { dir: cfg.dir });
  if (recoveredBytes > 0) log.info("spool holds lines from a previous run; sending them first", { dir: cfg.dir, bytes: recoveredBytes, segments: spool.segmentCount });
  metrics.spoolBytes.sample(() => spool.bytes);
  metrics.spoolSegments.sample(() => spool.segmentCount);
  return spool;
}
