// make release: the relay for every Linux target, cross-compiled by the pinned
// Bun with the options of scripts/build.ts, into dist/release/:
//
//   vigil-log-relay-VERSION-linux-x64         glibc
//   vigil-log-relay-VERSION-linux-x64-musl    musl (Alpine)
//   vigil-log-relay-VERSION-linux-arm64       glibc
//   vigil-log-relay-VERSION-linux-arm64-musl  musl (Alpine)
//   SHA256SUMS                                `sha256sum -c SHA256SUMS` format
//
// Each binary's ELF header must match its name (machine and libc loader), the
// sizes are printed, and the binary for this host is run (--version, --help).
// Bun fetches the runtime of a foreign target from the npm registry on first
// use (package @oven/bun-linux-*) and caches it under ~/.bun/install/cache.
//
//   bun scripts/release.ts [--targets all|host|NAME,NAME] [--out-dir dist/release]
//   RELEASE_TARGETS=host bun scripts/release.ts      (the same as --targets host)
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import pkg from "../package.json" with { type: "json" };
import { compile } from "./build.ts";
import { readElf } from "./lib/elf.ts";

export interface ReleaseTarget {
  /** The name's suffix: vigil-log-relay-VERSION-<name>. */
  name: string;
  bunTarget: string;
  arch: "x64" | "arm64";
  libc: "glibc" | "musl";
}

export const TARGETS: readonly ReleaseTarget[] = [
  { name: "linux-x64", bunTarget: "bun-linux-x64", arch: "x64", libc: "glibc" },
  { name: "linux-x64-musl", bunTarget: "bun-linux-x64-musl", arch: "x64", libc: "musl" },
  { name: "linux-arm64", bunTarget: "bun-linux-arm64", arch: "arm64", libc: "glibc" },
  { name: "linux-arm64-musl", bunTarget: "bun-linux-arm64-musl", arch: "arm64", libc: "musl" },
];

export const PREFIX = "vigil-log-relay-";
export const SUMS = "SHA256SUMS";

export function artifactName(version: string, target: ReleaseTarget): string {
  return `${PREFIX}${version}-${target.name}`;
}

/**
 * The target whose binaries run here: the one matching the running Bun's own
 * executable (its machine and its libc loader), so a musl host picks -musl.
 */
export function hostTarget(): ReleaseTarget | undefined {
  if (process.platform !== "linux") return undefined;
  const self = readElf(process.execPath);
  return TARGETS.find((t) => t.arch === self.arch && t.libc === self.libc);
}

/** `all`, `host`, or a comma-separated list of target names. */
export function selectTargets(spec: string): ReleaseTarget[] {
  if (spec === "all") return [...TARGETS];
  if (spec === "host") {
    const host = hostTarget();
    if (!host) throw new Error(`this host (${process.platform}/${process.arch}) is none of the release targets`);
    return [host];
  }
  const names = spec.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (names.length === 0) throw new Error("--targets: empty list");
  return names.map((n) => {
    const t = TARGETS.find((x) => x.name === n);
    if (!t) throw new Error(`--targets: unknown target "${n}" (known: all, host, ${TARGETS.map((x) => x.name).join(", ")})`);
    return t;
  });
}

export async function sha256(path: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  // Streamed: the binaries are ~100 MB each.
  for await (const chunk of Bun.file(path).stream()) hasher.update(chunk);
  return hasher.digest("hex");
}

/** Runs the host binary the way a user first would; returns what went wrong, or null. */
export function smokeTest(binary: string, version: string): string | null {
  const v = Bun.spawnSync([binary, "--version"], { stdout: "pipe", stderr: "pipe", env: {} });
  const want = `vigil-log-relay ${version}\n`;
  if (v.exitCode !== 0 || v.stdout.toString() !== want) {
    return `--version: exit ${v.exitCode}, printed ${JSON.stringify(v.stdout.toString())} (want ${JSON.stringify(want)}) ${v.stderr.toString()}`;
  }
  const h = Bun.spawnSync([binary, "--help"], { stdout: "pipe", stderr: "pipe", env: {} });
  const help = h.stdout.toString();
  if (h.exitCode !== 0 || !help.includes("Usage:") || !help.includes("--kubernetes")) {
    return `--help: exit ${h.exitCode}, printed ${JSON.stringify(help.slice(0, 200))} ${h.stderr.toString()}`;
  }
  return null;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Removes what an earlier release run left (other versions, other targets), nothing else. */
function clearOutputs(dir: string): void {
  for (const f of readdirSync(dir)) {
    if (f.startsWith(PREFIX) || f === SUMS) rmSync(join(dir, f), { force: true });
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      targets: { type: "string", default: process.env.RELEASE_TARGETS || "all" },
      "out-dir": { type: "string", default: "dist/release" },
    },
  });
  let targets: ReleaseTarget[];
  try {
    targets = selectTargets(values.targets as string);
  } catch (e) {
    console.error(`release: ${e instanceof Error ? e.message : String(e)}`);
    return 2;
  }
  const version = pkg.version;
  const outDir = resolve(values["out-dir"] as string);
  mkdirSync(outDir, { recursive: true });
  clearOutputs(outDir);

  const built: Array<{ target: ReleaseTarget; file: string; size: number; sum: string }> = [];
  for (const target of targets) {
    const file = join(outDir, artifactName(version, target));
    console.error(`release: building ${target.name} (${target.bunTarget})`);
    const r = compile({ out: file, target: target.bunTarget }, "pipe");
    if (r.exitCode !== 0 || !existsSync(file)) {
      console.error(r.output.trimEnd());
      console.error(`release: bun build failed for ${target.name} (exit ${r.exitCode})`);
      return 1;
    }
    const elf = readElf(file);
    if (elf.arch !== target.arch || elf.libc !== target.libc) {
      console.error(`release: ${file} is ${elf.arch}/${elf.libc} (${elf.interpreter}), not ${target.arch}/${target.libc}`);
      return 1;
    }
    built.push({ target, file, size: statSync(file).size, sum: await sha256(file) });
  }

  // Two spaces: sha256sum's text mode, which `sha256sum -c` reads on every platform.
  const sums = built.map((b) => `${b.sum}  ${artifactName(version, b.target)}\n`).join("");
  writeFileSync(join(outDir, SUMS), sums);

  const width = Math.max(...built.map((b) => artifactName(version, b.target).length));
  console.log(`vigil-log-relay ${version} -> ${outDir}`);
  for (const b of built) console.log(`  ${artifactName(version, b.target).padEnd(width)}  ${mib(b.size).padStart(10)}  ${b.size} bytes`);
  console.log(`  ${SUMS}`);

  const host = hostTarget();
  const hostBuild = built.find((b) => b.target === host);
  if (!hostBuild) {
    console.log("smoke test: skipped, no binary for this host was built");
    return 0;
  }
  const problem = smokeTest(hostBuild.file, version);
  if (problem !== null) {
    console.error(`release: smoke test of ${hostBuild.file} failed: ${problem}`);
    return 1;
  }
  console.log(`smoke test: ${artifactName(version, hostBuild.target)} --version / --help ok`);
  return 0;
}

if (import.meta.main) process.exit(await main());
