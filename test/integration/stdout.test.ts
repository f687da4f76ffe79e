/**
 * --stdout-sink: the lines on stdout, the relay's own logs only on stderr
 * (text or --log-format json), and stdout backpressure reaching the source.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { startFakeVigild, type FakeVigild, type Script } from "../fixtures/fake-vigild.ts";
import { expectedLines } from "../fixtures/lines.ts";
import { chunks, cleanup, MAIN, sequence, startRelay, track } from "./helpers.ts";

afterEach(cleanup);

function vigild(...scripts: Script[]): FakeVigild {
  return track(startFakeVigild({ handler: sequence(...scripts) }));
}

describe("--stdout-sink", () => {
  test("lines on stdout, logs only on stderr", async () => {
    const fv = vigild(chunks(["one\n", 'data: {"two":2}\n\n', "three\r\n"], "end"), chunks(["four\n"], "hang"));
    const relay = startRelay(["--source-url", fv.url, "--stdout-sink"]);
    await relay.stdout.until(() => relay.stdout.lines.length >= 4, 10_000, () => `stdout: ${relay.stdout.text}`);
    expect(relay.stdout.lines).toEqual(["one", '{"two":2}', "three", "four"]);
    await relay.stderr.waitFor("source connected");
    relay.signal("SIGTERM");
    expect(await relay.waitExit()).toBe(0);
    await Promise.all([relay.stdout.end(), relay.stderr.end()]);
    expect(relay.stdout.text).toBe('one\n{"two":2}\nthree\nfour\n');
    // every stderr line is a log line, none is a data line
    const logs = relay.stderr.lines.filter((l) => l !== "");
    expect(logs.length).toBeGreaterThan(2);
    for (const l of logs) expect(l).toMatch(/^\s*(INFO|WARN|ERROR|DEBUG) /);
    expect(relay.stderr.text).not.toContain("one\n");
    expect(logs.some((l) => l.includes("sink=stdout"))).toBe(true);
  });

  test("STDOUT_SINK=true from the environment", async () => {
    const fv = vigild(chunks(["env-stdout\n"], "hang"));
    const relay = startRelay(["--source-url", fv.url], { env: { STDOUT_SINK: "true" } });
    await relay.stdout.waitFor("env-stdout");
    expect(relay.stdout.lines[0]).toBe("env-stdout");
  });

  test("--log-format json: one JSON object per stderr line; data stays on stdout", async () => {
    const fv = vigild(chunks(["json-mode\n"], "hang"));
    const relay = startRelay(["--source-url", fv.url, "--stdout-sink", "--log-format", "json"]);
    await relay.stdout.waitFor("json-mode");
    await relay.stderr.waitFor("source connected");
    relay.signal("SIGTERM");
    expect(await relay.waitExit()).toBe(0);
    await relay.stderr.end();
    const logs = relay.stderr.lines.filter((l) => l !== "");
    expect(logs.length).toBeGreaterThan(2);
    for (const l of logs) {
      const rec: unknown = JSON.parse(l);
      expect(typeof rec).toBe("object");
      expect(rec).toMatchObject({ level: expect.any(String), message: expect.any(String), timestamp: expect.any(String) });
    }
    const records = logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    const health = records.find((r) => r.message === "health check listening");
    expect(String(health?.address)).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/healthz$/);
    expect(records.some((r) => r.message === "stopping" && r.signal === "SIGTERM")).toBe(true);
    expect(relay.stdout.text).toBe("json-mode\n");
  });

  test("VIGIL_LOG_FORMAT=json with the TCP sink down: warnings are JSON too", async () => {
    const fv = vigild(chunks(["x\n"], "hang"));
    const relay = startRelay(["--source-url", fv.url, "--tcp-sink-port", "1"], { env: { VIGIL_LOG_FORMAT: "json" } });
    const line = await relay.stderr.waitFor("cannot connect to the sink");
    expect(JSON.parse(line)).toMatchObject({ level: "warn", address: "127.0.0.1:1" });
  });

  test("--debug: timestamps and debug lines", async () => {
    const fv = vigild(chunks(["a\n"]), chunks(["b\n"], "hang"));
    const relay = startRelay(["--source-url", fv.url, "--stdout-sink", "--debug"]);
    await relay.stdout.until(() => relay.stdout.lines.length >= 2, 10_000, () => relay.stdout.text);
    const dbg = await relay.stderr.waitFor("DEBUG");
    expect(dbg).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z DEBUG /);
  });

  test("stdout backpressure: a reader that stops holds the source back; nothing is lost", async () => {
    const PAD = "y".repeat(190);
    const make = (i: number): string => `line-${i} ${PAD}`;
    const N = 200_000;
    const fv = track(startFakeVigild({ handler: sequence({ steps: [{ lines: N, make }, { hang: true }] }) }));
    const held = fv.waitForBackpressure(30_000);
    const reading = Promise.withResolvers<void>();
    const relay = startRelay(["--source-url", fv.url, "--stdout-sink", "--queue-max-bytes", String(1024 * 1024)], {
      stdoutGate: reading.promise,
    });
    await held;
    expect(fv.stats.bodyBytes).toBeLessThan(N * make(N).length * 0.8);
    expect(relay.stdout.lines.length).toBe(0);
    reading.resolve();
    await relay.stdout.until(() => relay.stdout.lines.length >= N, 45_000, () => `stdout has ${relay.stdout.lines.length} lines`);
    const lines = relay.stdout.lines;
    expect(lines.length).toBe(N);
    let bad = -1;
    for (let k = 0; k < N; k++) {
      if (lines[k] !== make(k)) {
        bad = k;
        break;
      }
    }
    expect(bad).toBe(-1);
  }, 60_000);
});

describe("--stdout-sink with stdout closed", () => {
  test("a reader that goes away (EPIPE): one error line and exit 1, not a silent hang", async () => {
    const fv = vigild({ steps: [{ lines: 200_000 }, { hang: true }] });
    const script = `"$0" "$1" --source-url "$2" --stdout-sink --healthcheck 127.0.0.1:0 | head -n 1 >/dev/null; echo "relay-exit=\${PIPESTATUS[0]}" >&2`;
    const proc = Bun.spawn(["bash", "-c", script, process.execPath, MAIN, fv.url], { stdout: "ignore", stderr: "pipe" });
    const stderr = await new Response(proc.stderr).text();
    expect(await proc.exited).toBe(0);
    expect(stderr).toContain("relay-exit=1");
    expect(stderr).toContain("cannot write to stdout");
    expect(stderr).not.toMatch(/^\s+at /m);
  }, 30_000);
});
