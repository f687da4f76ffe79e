// Builds the standalone executable with `bun build --compile`.
//   bun scripts/build.ts [--out dist/vigil-log-relay] [--target bun-linux-x64]
// The binary never autoloads a .env or bunfig.toml from where it runs.
import { parseArgs } from "node:util";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";

const { values } = parseArgs({
  options: { out: { type: "string", default: "dist/vigil-log-relay" }, target: { type: "string" } },
});
const out = values.out as string;
mkdirSync(dirname(out), { recursive: true });
const args = [
  "build",
  "--compile",
  "--minify",
  // Precompiled bytecode: the binary starts in ~10 ms instead of ~40 ms.
  "--bytecode",
  "--format=esm",
  "--sourcemap=none",
  "--no-compile-autoload-dotenv",
  "--no-compile-autoload-bunfig",
  "--no-compile-autoload-tsconfig",
  "--no-compile-autoload-package-json",
  ...(values.target ? [`--target=${values.target}`] : []),
  "src/main.ts",
  "--outfile",
  out,
];
const proc = Bun.spawnSync([process.execPath, ...args], { stdout: "inherit", stderr: "inherit" });
if (proc.exitCode !== 0) process.exit(proc.exitCode ?? 1);
