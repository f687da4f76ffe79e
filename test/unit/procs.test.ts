// The benchmarks' memory sampler reads /proc: its peak and its file-backed share.
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { peakRssSampler } from "../../scripts/lib/procs.ts";

test.skipIf(!existsSync("/proc/self/status"))("peakRssSampler: this process's peak, and a smaller, non-zero file-backed part", () => {
  const sampler = peakRssSampler(process.pid, 1000);
  const peak = sampler.stop();
  const code = sampler.codeBytes();
  expect(peak).not.toBeNull();
  // Bun itself is a large executable: several MB of it are resident code pages.
  expect(code).toBeGreaterThan(4 * 1024 * 1024);
  expect(code).toBeLessThan(peak as number);
});
