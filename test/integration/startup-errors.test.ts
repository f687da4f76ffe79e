/**
 * Every bad input of issue 2 item 3, through the real process: exit code 2,
 * exactly one line on stderr, no stack trace, nothing on stdout.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expectOneErrorLine, runRelay } from "./helpers.ts";

let dir = "";
let notPem = "";
let unreadable = "";
beforeAll(() => {
  dir = join(tmpdir(), `vigil-it-errors-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  notPem = join(dir, "not.pem");
  writeFileSync(notPem, "this is not a certificate\n");
  unreadable = join(dir, "a-directory.pem");
  mkdirSync(unreadable, { recursive: true });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const URL_SRC = ["--source-url", "http://127.0.0.1:9/v1/logs/follow"];

interface Case {
  name: string;
  argv: () => string[];
  env?: Record<string, string>;
  /** fragments the one line must contain */
  says: string[];
}

const cases: Case[] = [
  { name: "no source", argv: () => ["--tcp-sink-port", "5170"], says: ["no source", "--source-url"] },
  { name: "two sources", argv: () => [...URL_SRC, "--source-socket", "/run/vigild.sock"], says: ["only one source", "--source-url", "--source-socket"] },
  { name: "three sources", argv: () => ["--kubernetes", ...URL_SRC, "--source-socket", "/x"], says: ["only one source"] },
  { name: "invalid --include regex", argv: () => [...URL_SRC, "--include", "a(b"], says: ["--include", '"a(b"', "invalid regular expression"] },
  { name: "invalid --exclude regex", argv: () => [...URL_SRC, "--exclude", "ok", "--exclude", "[z-a]"], says: ["--exclude", '"[z-a]"'] },
  { name: "--tcp-sink-port out of range", argv: () => [...URL_SRC, "--tcp-sink-port", "70000"], says: ["--tcp-sink-port", "70000", "1 to 65535"] },
  { name: "--tcp-sink-port 0", argv: () => [...URL_SRC, "--tcp-sink-port", "0"], says: ["--tcp-sink-port"] },
  { name: "TCP_SINK_PORT out of range (env)", argv: () => URL_SRC, env: { TCP_SINK_PORT: "65536" }, says: ["TCP_SINK_PORT", "65536"] },
  { name: "--healthcheck port out of range", argv: () => [...URL_SRC, "--healthcheck", "127.0.0.1:99999"], says: ["--healthcheck", "99999"] },
  { name: "--healthcheck without port", argv: () => [...URL_SRC, "--healthcheck", "127.0.0.1"], says: ["--healthcheck", "no port"] },
  { name: "non-number --source-read-timeout", argv: () => [...URL_SRC, "--source-read-timeout", "5s"], says: ["--source-read-timeout", '"5s"'] },
  { name: "negative --dest-reconnect-delay", argv: () => [...URL_SRC, "--dest-reconnect-delay", "-1"], says: ["--dest-reconnect-delay"] },
  { name: "non-number SOURCE_RECONNECT_RETRIES (env)", argv: () => URL_SRC, env: { SOURCE_RECONNECT_RETRIES: "many" }, says: ["SOURCE_RECONNECT_RETRIES", '"many"'] },
  { name: "non-number --queue-max-bytes", argv: () => [...URL_SRC, "--queue-max-bytes", "1MiB"], says: ["--queue-max-bytes"] },
  { name: "missing --source-cacert file", argv: () => [...URL_SRC, "--source-cacert", join(dir, "missing.pem")], says: ["--source-cacert", "missing.pem", "ENOENT"] },
  { name: "unreadable --source-cacert (a directory)", argv: () => [...URL_SRC, "--source-cacert", unreadable], says: ["--source-cacert", "cannot read"] },
  { name: "non-PEM --source-cacert", argv: () => [...URL_SRC, "--source-cacert", notPem], says: ["--source-cacert", "no PEM certificate"] },
  { name: "non-PEM --source-proxy-cacert", argv: () => [...URL_SRC, "--source-proxy-cacert", notPem], says: ["--source-proxy-cacert", "no PEM certificate"] },
  { name: "unknown --log-format", argv: () => [...URL_SRC, "--log-format", "xml"], says: ["--log-format", '"xml"', "text or json"] },
  { name: "unknown flag", argv: () => [...URL_SRC, "--sink-port", "1"], says: ["--sink-port"] },
  { name: "a flag without its value", argv: () => [...URL_SRC, "--tcp-sink-host"], says: ["--tcp-sink-host", "requires a value"] },
  { name: "a positional argument", argv: () => [...URL_SRC, "extra"], says: ['"extra"'] },
  { name: "--source-url that is not http(s)", argv: () => ["--source-url", "ftp://example.com/logs"], says: ["--source-url", "http"] },
  { name: "an invalid boolean env", argv: () => URL_SRC, env: { SOURCE_INSECURE: "maybe" }, says: ["SOURCE_INSECURE", '"maybe"'] },
];

describe("bad input: exit 2, one stderr line, no stack trace", () => {
  for (const c of cases) {
    test(c.name, async () => {
      const argv = c.argv();
      // a free health port, so that a case that would start cannot collide
      const health = argv.includes("--healthcheck") ? [] : ["--healthcheck", "127.0.0.1:0"];
      const r = await runRelay([...health, ...argv], { bare: true, ...(c.env ? { env: c.env } : {}) });
      expect(r.code).toBe(2);
      const line = expectOneErrorLine(r.stderr);
      expect(line).toStartWith("vigil-log-relay: error: ");
      for (const f of c.says) expect(line).toContain(f);
      expect(r.stdout).toBe("");
    });
  }

  test("a non-PEM SOURCE_CACERT from the environment", async () => {
    const r = await runRelay([...URL_SRC, "--healthcheck", "127.0.0.1:0"], { bare: true, env: { SOURCE_CACERT: notPem } });
    expect(r.code).toBe(2);
    const line = expectOneErrorLine(r.stderr);
    expect(line).toContain("SOURCE_CACERT");
    expect(line).toContain("no PEM certificate");
  });
});

describe("good input that prints and exits", () => {
  test("--version: one line on stdout, exit 0", async () => {
    const r = await runRelay(["--version"], { bare: true });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^vigil-log-relay \d+\.\d+\.\d+\n$/);
    expect(r.stderr).toBe("");
  });

  test("--help: grouped help on stdout, exit 0", async () => {
    const r = await runRelay(["--help"], { bare: true });
    expect(r.code).toBe(0);
    for (const g of ["Source:", "Source Connection:", "Source Reconnect:", "Kubernetes:", "Filter:", "Sink:", "TCP Sink:", "TCP Sink Connection:", "TCP Sink Reconnect:", "Health Check:", "Logging:"]) {
      expect(r.stdout).toContain(`\n${g}\n`);
    }
    expect(r.stderr).toBe("");
  });
});
