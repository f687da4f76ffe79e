/**
 * scripts/release.ts, as `make release` runs it but for this host's target only
 * (all four targets take a while and download three foreign runtimes; `make
 * release` builds those): the file names, SHA256SUMS verified by `sha256sum -c`
 * (or by hashing here where it is missing), the host binary's --version and
 * --help, the printed sizes, and stale outputs of older runs removed.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { readElf } from "../../scripts/lib/elf.ts";
import { TARGETS, artifactName, hostTarget, selectTargets, sha256 } from "../../scripts/release.ts";
import { ROOT } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "vigil-release-"));
const stale = `vigil-log-relay-0.0.0-linux-x64`;
let run: { code: number; stdout: string; stderr: string };

beforeAll(() => {
  // Left by an "older release": the script must not ship it again.
  writeFileSync(join(dir, stale), "old");
  writeFileSync(join(dir, "notes.txt"), "not ours");
  const r = Bun.spawnSync([process.execPath, join(ROOT, "scripts", "release.ts"), "--targets", "host", "--out-dir", dir], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
  });
  run = { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the release targets", () => {
  test("four Linux targets, named vigil-log-relay-VERSION-linux-ARCH[-musl]", () => {
    expect(selectTargets("all").map((t) => artifactName(pkg.version, t))).toEqual([
      `vigil-log-relay-${pkg.version}-linux-x64`,
      `vigil-log-relay-${pkg.version}-linux-x64-musl`,
      `vigil-log-relay-${pkg.version}-linux-arm64`,
      `vigil-log-relay-${pkg.version}-linux-arm64-musl`,
    ]);
    expect(TARGETS.map((t) => t.bunTarget)).toEqual(["bun-linux-x64", "bun-linux-x64-musl", "bun-linux-arm64", "bun-linux-arm64-musl"]);
    expect(selectTargets("linux-arm64,linux-x64-musl").map((t) => t.name)).toEqual(["linux-arm64", "linux-x64-musl"]);
    expect(() => selectTargets("linux-mips")).toThrow(/unknown target "linux-mips"/);
  });

  test("an unknown target: exit 2, one line, nothing built", () => {
    const out = mkdtempSync(join(tmpdir(), "vigil-release-bad-"));
    try {
      const r = Bun.spawnSync([process.execPath, join(ROOT, "scripts", "release.ts"), "--targets", "linux-sparc", "--out-dir", out], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
      expect(r.exitCode).toBe(2);
      expect(r.stderr.toString().trim().split("\n")).toHaveLength(1);
      expect(readdirSync(out)).toEqual([]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

describe("scripts/release.ts --targets host", () => {
  test("exits 0", () => {
    if (run.code !== 0) throw new Error(`release failed (${run.code}):\n${run.stdout}\n${run.stderr}`);
  });

  test("writes the host binary and SHA256SUMS, removes stale outputs, leaves other files", () => {
    const host = hostTarget();
    expect(host).toBeDefined();
    const name = artifactName(pkg.version, host!);
    expect(readdirSync(dir).sort()).toEqual(["SHA256SUMS", "notes.txt", name].sort());
    expect(existsSync(join(dir, stale))).toBe(false);
    // Executable, and built for what its name says.
    expect(statSync(join(dir, name)).mode & 0o111).not.toBe(0);
    const elf = readElf(join(dir, name));
    expect(elf.arch).toBe(host!.arch);
    expect(elf.libc).toBe(host!.libc);
  });

  test("SHA256SUMS verifies (sha256sum -c format)", async () => {
    const name = artifactName(pkg.version, hostTarget()!);
    const sums = await Bun.file(join(dir, "SHA256SUMS")).text();
    expect(sums).toMatch(/^[0-9a-f]{64} {2}\S+\n$/);
    expect(sums).toBe(`${await sha256(join(dir, name))}  ${name}\n`);
    if (Bun.which("sha256sum")) {
      const r = Bun.spawnSync(["sha256sum", "-c", "SHA256SUMS"], { cwd: dir, stdout: "pipe", stderr: "pipe" });
      expect(r.stdout.toString()).toBe(`${name}: OK\n`);
      expect(r.exitCode).toBe(0);
    } else {
      console.warn("sha256sum not installed: SHA256SUMS checked by hashing here only");
    }
  });

  test("prints each size and the smoke test", () => {
    const name = artifactName(pkg.version, hostTarget()!);
    const size = statSync(join(dir, name)).size;
    expect(run.stdout).toContain(`vigil-log-relay ${pkg.version} -> ${dir}`);
    expect(run.stdout).toMatch(new RegExp(`${name}\\s+[\\d.]+ MiB\\s+${size} bytes`));
    expect(run.stdout).toContain(`smoke test: ${name} --version / --help ok`);
  });

  test("the host binary runs: --version prints package.json's version, --help the usage", () => {
    const bin = join(dir, artifactName(pkg.version, hostTarget()!));
    const v = Bun.spawnSync([bin, "--version"], { stdout: "pipe", stderr: "pipe", env: {} });
    expect(v.exitCode).toBe(0);
    expect(v.stdout.toString()).toBe(`vigil-log-relay ${pkg.version}\n`);
    const h = Bun.spawnSync([bin, "--help"], { stdout: "pipe", stderr: "pipe", env: {} });
    expect(h.exitCode).toBe(0);
    expect(h.stdout.toString()).toContain("Usage: vigil-log-relay");
    expect(h.stdout.toString()).toContain("--state-file");
  });

  test("make release builds all four targets (the Makefile target runs this script)", async () => {
    const makefile = await Bun.file(join(ROOT, "Makefile")).text();
    expect(makefile).toMatch(/^release: install\n\t\$\(BUN\) scripts\/release\.ts/m);
  });
});
