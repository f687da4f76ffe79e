/**
 * The compiled binary end to end (scripts/build.ts, as `make build` runs it,
 * into a temp dir): --version, a bad flag, and a real ndjson stream to a TCP
 * receiver followed by SIGTERM -> exit 0. Run from a directory holding a
 * stray bunfig.toml and .env, which the binary must ignore.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { linesScript, startFakeVigild } from "../fixtures/fake-vigild.ts";
import { expectedLines } from "../fixtures/lines.ts";
import { startTcpReceiver } from "../fixtures/tcp-receiver.ts";
import { cleanup, compiledRelay, expectOneErrorLine, gate, runRelay, sequence, startRelay, track } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "vigil-it-bin-"));
let binary = "";

beforeAll(() => {
  binary = compiledRelay();
  // strays the binary must not pick up where it runs
  writeFileSync(join(dir, "bunfig.toml"), 'preload = ["./boom.ts"]\n');
  writeFileSync(join(dir, "boom.ts"), 'throw new Error("stray preload ran");\n');
  writeFileSync(join(dir, ".env"), "TCP_SINK_PORT=1\nVIGIL_LOG_FORMAT=json\n");
}, 60_000);
afterEach(cleanup);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("compiled binary", () => {
  test("--version", async () => {
    const r = await runRelay(["--version"], { binary, bare: true, cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`vigil-log-relay ${pkg.version}\n`);
    expect(r.stderr).toBe("");
  });

  test("a bad flag: exit 2, one line", async () => {
    const r = await runRelay(["--source-url", "http://127.0.0.1:9/", "--tcp-sink-port", "nope"], { binary, bare: true, cwd: dir });
    expect(r.code).toBe(2);
    const line = expectOneErrorLine(r.stderr);
    expect(line).toContain("--tcp-sink-port");
    expect(r.stdout).toBe("");
  });

  test("an ndjson stream to a receiver, then SIGTERM: exit 0", async () => {
    const fv = track(startFakeVigild({ handler: sequence({ steps: [{ lines: 50_000 }, { close: "end" }] }, { steps: [{ write: "after-eof\n" }, { hang: true }] }) }));
    const rx = track(await startTcpReceiver());
    const relay = startRelay(["--source-url", `${fv.url}/v1/logs/follow?format=ndjson`, "--tcp-sink-port", String(rx.port)], { binary, cwd: dir });
    const lines = await rx.waitForLines(50_001, 20_000);
    expect(lines).toEqual([...expectedLines(50_000), "after-eof"]);
    // text logs (the stray .env asked for json), health on the free port
    const health = await relay.healthUrl();
    expect((await fetch(`${health}/healthz`)).status).toBe(200);
    expect(relay.stderr.lines[0]).toMatch(/^\s*INFO /);
    relay.signal("SIGTERM");
    expect(await relay.waitExit(10_000)).toBe(0);
    await relay.stderr.end();
    expect(relay.stderr.lines.some((l) => l.includes("stopped; queue flushed"))).toBe(true);
    expect(relay.stderr.text).not.toContain("stray preload");
  });

  test("its stderr reader goes away (EPIPE on every log line): lines still flow, SIGTERM still exits 0", async () => {
    // The second stream waits until the pipe is gone: its end and the next connect log (--debug)
    // into a closed pipe. Those writes must neither kill nor stall the relay.
    const pipeGone = gate();
    const fv = track(
      startFakeVigild({
        handler: sequence(
          linesScript(1000),
          { steps: [{ waitFor: pipeGone.promise }, { lines: 1000, start: 1000 }, { close: "end" }] },
          linesScript(1000, { start: 2000, close: "hang" }),
        ),
      }),
    );
    const rx = track(await startTcpReceiver());
    const proc = Bun.spawn(
      [binary, "--source-url", `${fv.url}/v1/logs/follow?format=ndjson`, "--tcp-sink-port", String(rx.port), "--debug", "--healthcheck", "127.0.0.1:0", "--source-reconnect-delay", "20"],
      { cwd: dir, stdout: "ignore", stderr: "pipe" },
    );
    try {
      const reader = proc.stderr.getReader();
      await reader.read();
      await reader.cancel();
      pipeGone.open();
      expect(await rx.waitForLines(3000, 20_000)).toEqual(expectedLines(3000));
      expect(proc.exitCode).toBeNull();
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
    } finally {
      proc.kill("SIGKILL");
    }
  });
});
