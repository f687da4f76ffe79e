/**
 * GET /metrics of a running relay, parsed by a strict Prometheus text-format
 * 0.0.4 reader (test/fixtures/prometheus-parser.ts): every family is one the
 * Metrics class declares, with its type, help and bounded label values; the
 * counters equal what the test sent through the HTTP source (ndjson and SSE
 * lines, --include/--exclude, too-long lines, vigild's lagged notice, invalid
 * UTF-8), the Unix socket source and Kubernetes mode (filters, too-long lines,
 * duplicates skipped on resume, reconnects); and no counter goes backwards
 * between two scrapes.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { startFakeVigild, type FakeVigild, type Step } from "../fixtures/fake-vigild.ts";
import { parsePrometheusText, PrometheusParseError, seriesOf, valueOf, type Family } from "../fixtures/prometheus-parser.ts";
import { startTcpReceiver } from "../fixtures/tcp-receiver.ts";
import { Metrics, PREFIX } from "../../src/metrics.ts";
import { cleanup, gate, get, sequence, startRelay, tempDir, track, waitUntil, type Relay } from "./helpers.ts";
import { addPods, kubeEnv, startKubeRelay, waitForStreams } from "../kubernetes/helpers.ts";

afterEach(cleanup);

type Scrape = Map<string, Family>;

/** What the relay declares: family name -> type, help, label name and values. */
const DECLARED = new Map(new Metrics().all().map((m) => [`${PREFIX}${m.name}`, m]));

/** GETs /metrics, checks the response and every line against the format and the declarations. */
async function scrape(relay: Relay): Promise<Scrape> {
  const res = await fetch(`${await relay.healthUrl()}/metrics`, { proxy: undefined });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  const families = parsePrometheusText(await res.text());
  expect([...families.keys()].sort()).toEqual([...DECLARED.keys()].sort());
  for (const f of families.values()) {
    const d = DECLARED.get(f.name);
    if (!d) throw new Error(`undeclared family ${f.name}`);
    expect(f.type).toBe(d.type);
    expect(f.help).toBe(d.help);
    // Every family shows a sample from the first scrape on (counters and gauges at 0).
    expect(f.samples.length).toBeGreaterThan(0);
    for (const s of f.samples) {
      const names = Object.keys(s.labels);
      if (d.labels === null) {
        expect(names).toEqual([]);
      } else {
        // Bounded: one label, only the declared values (never a pod, a URL or a line).
        expect(names).toEqual([d.labels.name]);
        expect(d.labels.values).toContain(s.labels[d.labels.name] ?? "");
      }
    }
    // Every declared label value is exported, at 0 before its first event.
    if (d.labels !== null) expect(f.samples.length).toBe(d.labels.values.length);
  }
  return families;
}

/** Counter series may only grow; none disappears. */
function expectNoCounterWentBack(before: Scrape, after: Scrape): void {
  const now = seriesOf(after);
  const back: string[] = [];
  for (const f of before.values()) {
    if (f.type !== "counter") continue;
    for (const s of f.samples) {
      const later = now.get(`${s.name}{${Object.keys(s.labels).sort().map((k) => `${k}=${JSON.stringify(s.labels[k])}`).join(",")}}`);
      if (!later) back.push(`${s.name} ${JSON.stringify(s.labels)} disappeared`);
      else if (later.value < s.value) back.push(`${s.name} ${JSON.stringify(s.labels)}: ${s.value} -> ${later.value}`);
    }
  }
  expect(back).toEqual([]);
}

/** name (without the prefix) -> value, for the checks below. */
function v(families: Scrape, name: string, labels: Record<string, string> = {}): number {
  return valueOf(families, `${PREFIX}${name}`, labels);
}

function lines(n: number, make: (i: number) => string): string[] {
  return Array.from({ length: n }, (_, i) => make(i + 1));
}

/** One body as chunks of `size` bytes: lines, and too-long lines, split across reads. */
function chunked(body: Buffer, size: number): Step[] {
  const steps: Step[] = [];
  for (let i = 0; i < body.length; i += size) steps.push({ write: body.subarray(i, i + size) });
  return steps;
}

describe("/metrics, HTTP sources", () => {
  test("--source-url: counters equal what was sent (forwarded, filtered, skipped, too long, lagged, invalid UTF-8, bytes, reconnects), and none goes back", async () => {
    const MAX = 100;
    // Batch 1, one response, then a clean end (one eof reconnect).
    const ok = lines(20, (i) => `app ok-${i}`);
    const other = lines(5, (i) => `other-${i}`); // no --include match
    const secret = lines(4, (i) => `app secret-${i}`); // --exclude match
    const tooLong = `app ${"x".repeat(MAX * 3)}`;
    const skipped = [": keepalive", ": lagged: skipped 7 entries", "", "event: message"];
    const parts: Array<string | Buffer> = [];
    for (let i = 0; i < 20; i++) {
      parts.push(ok[i] ?? "");
      if (i < 5) parts.push(other[i] ?? "");
      if (i < 4) parts.push(secret[i] ?? "");
      if (i < 4) parts.push(skipped[i] ?? "");
      if (i === 7) parts.push(tooLong);
      if (i === 9) parts.push("data: app sse-1");
      if (i === 11) parts.push(Buffer.concat([Buffer.from("app bad-"), Buffer.from([0xff])]));
    }
    parts.push("app ok-last");
    const body1 = Buffer.concat(parts.map((p) => Buffer.concat([typeof p === "string" ? Buffer.from(p) : p, Buffer.from("\n")])));
    // In the order sent: the SSE data line after ok-10, the invalid one after ok-12.
    const forwarded1 = [...ok.slice(0, 10), "app sse-1", ...ok.slice(10, 12), "app bad-\ufffd", ...ok.slice(12), "app ok-last"];
    // Batch 2, the second response (held until the test has scraped once), then it hangs.
    const two = lines(10, (i) => `app two-${i}`);
    const parts2 = [...two.slice(0, 5), `app ${"y".repeat(MAX + 1)}`, "other-two", ...two.slice(5), "app two-last"];
    const body2 = Buffer.from(parts2.map((l) => `${l}\n`).join(""));
    const forwarded2 = [...two, "app two-last"];

    const second = gate();
    const fv: FakeVigild = track(
      startFakeVigild({
        handler: sequence(
          { steps: [...chunked(body1, 37), { close: "end" }] },
          { steps: [{ waitFor: second.promise }, ...chunked(body2, 53), { hang: true }] },
        ),
      }),
    );
    const rx = track(await startTcpReceiver());
    const t0 = Date.now() / 1000;
    const relay = startRelay([
      "--source-url", `${fv.url}/v1/logs/follow?format=ndjson`,
      "--tcp-sink-port", String(rx.port),
      "--include", "^app ",
      "--exclude", "secret",
      "--max-line-bytes", String(MAX),
    ]);
    expect(await rx.waitForLines(forwarded1.length, 15_000)).toEqual(forwarded1);
    // The second request comes after the first stream's end was counted.
    await fv.nextRequest(10_000);
    await fv.nextRequest(10_000);
    const first = await scrape(relay);
    const linesSent1 = parts.length;
    expect(v(first, "lines_read_total", { source: "url" })).toBe(linesSent1);
    expect(v(first, "bytes_read_total", { source: "url" })).toBe(body1.length);
    expect(v(first, "lines_forwarded_total")).toBe(forwarded1.length);
    expect(v(first, "bytes_forwarded_total")).toBe(rx.bytes);
    expect(v(first, "lines_filtered_total", { filter: "include" })).toBe(5);
    expect(v(first, "lines_filtered_total", { filter: "exclude" })).toBe(4);
    expect(v(first, "lines_skipped_total")).toBe(4);
    expect(v(first, "lines_dropped_total", { reason: "too_long" })).toBe(1);
    expect(v(first, "lines_dropped_total", { reason: "lagged" })).toBe(7);
    expect(v(first, "lines_invalid_utf8_total")).toBe(1);
    expect(v(first, "source_reconnects_total", { cause: "eof" })).toBe(1);

    second.open();
    expect((await rx.waitForLines(forwarded1.length + forwarded2.length, 15_000)).slice(forwarded1.length)).toEqual(forwarded2);
    const t1 = Date.now() / 1000;
    const last = await scrape(relay);
    expectNoCounterWentBack(first, last);
    expect(v(last, "lines_read_total", { source: "url" })).toBe(linesSent1 + parts2.length);
    expect(v(last, "lines_read_total", { source: "socket" })).toBe(0);
    expect(v(last, "lines_read_total", { source: "kubernetes" })).toBe(0);
    expect(v(last, "bytes_read_total", { source: "url" })).toBe(body1.length + body2.length);
    expect(v(last, "lines_forwarded_total")).toBe(forwarded1.length + forwarded2.length);
    expect(v(last, "bytes_forwarded_total")).toBe(rx.bytes);
    expect(v(last, "lines_filtered_total", { filter: "include" })).toBe(6);
    expect(v(last, "lines_filtered_total", { filter: "exclude" })).toBe(4);
    expect(v(last, "lines_skipped_total")).toBe(4);
    expect(v(last, "lines_dropped_total", { reason: "too_long" })).toBe(2);
    expect(v(last, "lines_dropped_total", { reason: "lagged" })).toBe(7);
    expect(v(last, "lines_dropped_total", { reason: "partial" })).toBe(0);
    expect(v(last, "lines_dropped_total", { reason: "when_full" })).toBe(0);
    expect(v(last, "lines_invalid_utf8_total")).toBe(1);
    // Every line read is accounted for: forwarded, filtered, skipped or dropped.
    expect(v(last, "lines_read_total", { source: "url" })).toBe(
      v(last, "lines_forwarded_total") +
        v(last, "lines_filtered_total", { filter: "include" }) +
        v(last, "lines_filtered_total", { filter: "exclude" }) +
        v(last, "lines_skipped_total") +
        v(last, "lines_dropped_total", { reason: "too_long" }),
    );
    expect(v(last, "source_reconnects_total", { cause: "eof" })).toBe(1);
    for (const cause of ["error", "timeout", "rotation", "rejected"]) expect(v(last, "source_reconnects_total", { cause })).toBe(0);
    expect(v(last, "source_connected")).toBe(1);
    expect(v(last, "sink_connected")).toBe(1);
    expect(v(last, "duplicates_skipped_total")).toBe(0);
    expect(v(last, "cursor_saves_total")).toBe(0);
    expect(v(last, "queue_bytes")).toBe(0);
    const lastWrite = v(last, "last_write_timestamp_seconds");
    expect(lastWrite).toBeGreaterThanOrEqual(Math.floor(t0));
    expect(lastWrite).toBeLessThanOrEqual(t1 + 1);
    // A third scrape with nothing new: the same counters.
    const again = await scrape(relay);
    expectNoCounterWentBack(last, again);
    expect(v(again, "lines_read_total", { source: "url" })).toBe(v(last, "lines_read_total", { source: "url" }));
  }, 60_000);

  test("--source-socket: lines and bytes are counted under source=\"socket\"", async () => {
    const dir = tempDir("vigil-metrics-");
    const sock = join(dir, "vigild.sock");
    const body = "one\ntwo\nthree\n";
    const fv = track(startFakeVigild({ unix: sock, handler: () => ({ steps: [{ write: body }, { hang: true }] }) }));
    const rx = track(await startTcpReceiver());
    const relay = startRelay(["--source-socket", sock, "--source-path", "/v1/logs/follow?format=ndjson", "--tcp-sink-port", String(rx.port)]);
    expect(await rx.waitForLines(3, 15_000)).toEqual(["one", "two", "three"]);
    const m = await scrape(relay);
    expect(v(m, "lines_read_total", { source: "socket" })).toBe(3);
    expect(v(m, "bytes_read_total", { source: "socket" })).toBe(body.length);
    expect(v(m, "lines_read_total", { source: "url" })).toBe(0);
    expect(v(m, "lines_forwarded_total")).toBe(3);
    expect(fv.requests.length).toBe(1);
  }, 30_000);
});

describe("/metrics, Kubernetes mode", () => {
  test("filters, too-long lines, duplicates skipped on resume and eof reconnects are counted exactly; log streams and the watch are shown", async () => {
    const MAX = 200;
    const env = await kubeEnv();
    const { kube, ns } = env;
    const pods = addPods(kube, ns, "mx", 2);
    const relay = startKubeRelay(env, ["--include", "^app ", "--exclude", "secret", "--max-line-bytes", String(MAX), "--state-file", join(env.dir, "state.json")]);
    await waitForStreams(kube, 2);
    // Fixed timestamps: every line of a batch carries the same one, so a resume replays
    // exactly the whole first batch (sinceTime is that second) and the relay skips all of it.
    const sec = Math.floor(Date.now() / 1000) - 5;
    const ts = (s: number) => `${new Date(s * 1000).toISOString().slice(0, 19)}.123456789Z`;
    const T1 = ts(sec);
    const T2 = ts(sec + 2);
    // Batch 1 per pod: 20 forwarded, 5 not included, 4 excluded, 2 too long by a few bytes
    // (cut after the timestamp is read: they move the cursor, so a replay counts them as duplicates).
    const batch1 = (p: string): string[] => {
      const out: string[] = [];
      for (let i = 1; i <= 20; i++) {
        out.push(`app ${p}-ok-${i}`);
        if (i <= 5) out.push(`other ${p}-${i}`);
        if (i <= 4) out.push(`app secret ${p}-${i}`);
        if (i === 3 || i === 13) out.push(`app ${"x".repeat(MAX + 5 - 4)}`);
      }
      out.push(`app ${p}-ok-last`);
      return out;
    };
    // Batch 2 per pod: 10 forwarded, 1 not included, 2 far too long (dropped before the timestamp is read).
    const batch2 = (p: string): string[] => [
      ...lines(5, (i) => `app ${p}-two-${i}`),
      `app ${"y".repeat(MAX * 3)}`,
      `other ${p}-two`,
      `app ${"z".repeat(MAX * 2)}`,
      ...lines(5, (i) => `app ${p}-two-${i + 5}`),
    ];
    const wire = (ls: string[], t: string) => ls.reduce((n, l) => n + Buffer.byteLength(`${t} ${l}\n`), 0);
    const b1 = new Map(pods.map((p) => [p, batch1(p)]));
    const b2 = new Map(pods.map((p) => [p, batch2(p)]));
    for (const p of pods) kube.appendLog(ns, p, "app", b1.get(p) ?? [], { timestamp: T1 });
    const fwd1 = 2 * 21;
    await rx(env, fwd1);
    const first = await scrape(relay);
    const read1 = pods.reduce((n, p) => n + (b1.get(p)?.length ?? 0), 0);
    const bytes1 = pods.reduce((n, p) => n + wire(b1.get(p) ?? [], T1), 0);
    expect(v(first, "lines_read_total", { source: "kubernetes" })).toBe(read1);
    expect(v(first, "bytes_read_total", { source: "kubernetes" })).toBe(bytes1);
    expect(v(first, "lines_forwarded_total")).toBe(fwd1);
    expect(v(first, "lines_filtered_total", { filter: "include" })).toBe(2 * 5);
    expect(v(first, "lines_filtered_total", { filter: "exclude" })).toBe(2 * 4);
    expect(v(first, "lines_dropped_total", { reason: "too_long" })).toBe(2 * 2);
    expect(v(first, "duplicates_skipped_total")).toBe(0);
    expect(v(first, "log_streams_active")).toBe(2);
    expect(v(first, "log_streams_waiting")).toBe(0);
    expect(v(first, "source_connected")).toBe(1);

    // The API server ends both streams: each resumes at once from its cursor and skips
    // the replayed first batch line by line.
    expect(kube.closeAllLogStreams()).toBe(2);
    await waitUntil(async () => (await metricValue(relay, "duplicates_skipped_total")) >= read1, 20_000, "the replayed lines skipped");
    for (const p of pods) kube.appendLog(ns, p, "app", b2.get(p) ?? [], { timestamp: T2 });
    const fwd2 = 2 * 10;
    await rx(env, fwd1 + fwd2);
    const last = await scrape(relay);
    expectNoCounterWentBack(first, last);
    const read2 = pods.reduce((n, p) => n + (b2.get(p)?.length ?? 0), 0);
    const bytes2 = pods.reduce((n, p) => n + wire(b2.get(p) ?? [], T2), 0);
    expect(v(last, "duplicates_skipped_total")).toBe(read1);
    expect(v(last, "lines_read_total", { source: "kubernetes" })).toBe(2 * read1 + read2);
    expect(v(last, "bytes_read_total", { source: "kubernetes" })).toBe(2 * bytes1 + bytes2);
    expect(v(last, "lines_forwarded_total")).toBe(fwd1 + fwd2);
    expect(v(last, "bytes_forwarded_total")).toBe(env.rx.bytes);
    expect(v(last, "lines_filtered_total", { filter: "include" })).toBe(2 * 6);
    expect(v(last, "lines_filtered_total", { filter: "exclude" })).toBe(2 * 4);
    expect(v(last, "lines_dropped_total", { reason: "too_long" })).toBe(2 * 4);
    expect(v(last, "source_reconnects_total", { cause: "eof" })).toBe(2);
    for (const cause of ["error", "timeout", "rotation", "rejected"]) expect(v(last, "source_reconnects_total", { cause })).toBe(0);
    expect(v(last, "lines_read_total", { source: "url" })).toBe(0);
    expect(v(last, "watch_relists_total")).toBe(0);
    expect(v(last, "log_streams_active")).toBe(2);
    expect(v(last, "sink_connected")).toBe(1);
    // Nothing else arrived: exactly the forwarded lines of both batches, once each.
    const messages = env.records.update().map((r) => r.message);
    expect(messages.length).toBe(fwd1 + fwd2);
    expect(new Set(messages).size).toBe(fwd1 + fwd2);
    // The cursors moved: the state file is saved (once a second while they move).
    await waitUntil(async () => (await metricValue(relay, "cursor_saves_total")) >= 1, 10_000, "a state file save");
    const saved = await scrape(relay);
    expectNoCounterWentBack(last, saved);
    expect(v(saved, "cursor_save_failures_total")).toBe(0);
  }, 90_000);

  test("a state file that cannot be written: failed saves are counted, and warned about once with what to check", async () => {
    const env = await kubeEnv();
    const { kube, ns } = env;
    kube.addPod({ namespace: ns, name: "sf-1", containers: [{ name: "app" }] });
    const relay = startKubeRelay(env, ["--state-file", join(env.dir, "no-such-dir", "state.json")]);
    await waitForStreams(kube, 1);
    kube.appendLog(ns, "sf-1", "app", ["sf-1-app-1", "sf-1-app-2"]);
    await env.rx.waitForLines(2, 20_000);
    // Retried every second while the cursor is unsaved: two failures, one warning.
    await waitUntil(async () => (await metricValue(relay, "cursor_save_failures_total")) >= 2, 15_000, "two failed saves");
    const m = await scrape(relay);
    expect(v(m, "cursor_saves_total")).toBe(0);
    const warned = relay.stderr.lines.filter((l) => l.includes("cannot save the state file"));
    expect(warned.length).toBe(1);
    expect(warned[0]).toMatch(/\(check [^)]+\)/);
  }, 60_000);
});

describe("the Prometheus text parser of these tests", () => {
  const ok = "# HELP a_total A.\n# TYPE a_total counter\na_total{k=\"x\"} 1\na_total{k=\"y\"} 2\n# HELP g G \\\\ \\n.\n# TYPE g gauge\ng -1.5e3\n";

  test("reads families, help (unescaped), types, labels and values", () => {
    const f = parsePrometheusText(ok);
    expect([...f.keys()]).toEqual(["a_total", "g"]);
    expect(f.get("g")?.help).toBe("G \\ \n.");
    expect(valueOf(f, "a_total", { k: "y" })).toBe(2);
    expect(valueOf(f, "g")).toBe(-1500);
    const esc = parsePrometheusText('# HELP e_total E.\n# TYPE e_total counter\ne_total{k="a\\"b\\\\c\\nd"} 3\n');
    expect(esc.get("e_total")?.samples[0]?.labels).toEqual({ k: 'a"b\\c\nd' });
  });

  const bad: Array<[string, string]> = [
    ["no final newline", ok.slice(0, -1)],
    ["a sample without HELP/TYPE", "x_total 1\n"],
    ["a counter without _total", "# HELP c C.\n# TYPE c counter\nc 1\n"],
    ["a negative counter", "# HELP c_total C.\n# TYPE c_total counter\nc_total -1\n"],
    ["a duplicate series", '# HELP d D.\n# TYPE d gauge\nd{a="1"} 1\nd{a="1"} 2\n'],
    ["the same labels in another order", '# HELP d D.\n# TYPE d gauge\nd{a="1",b="2"} 1\nd{b="2",a="1"} 1\n'],
    ["a family split in two", `${ok}a_total{k="z"} 1\n`],
    ["an unknown escape in a label value", '# HELP d D.\n# TYPE d gauge\nd{a="\\t"} 1\n'],
    ["an unquoted label value", "# HELP d D.\n# TYPE d gauge\nd{a=1} 1\n"],
    ["a repeated label", '# HELP d D.\n# TYPE d gauge\nd{a="1",a="2"} 1\n'],
    ["a bad value", "# HELP d D.\n# TYPE d gauge\nd one\n"],
    ["a bad escape in HELP", "# HELP d D \\q.\n# TYPE d gauge\nd 1\n"],
    ["an unknown TYPE", "# HELP d D.\n# TYPE d meter\nd 1\n"],
    ["a second TYPE", "# HELP d D.\n# TYPE d gauge\n# TYPE d gauge\nd 1\n"],
    ["TYPE after samples", "# HELP d D.\nd 1\n# TYPE d gauge\n"],
    ["trailing garbage", "# HELP d D.\n# TYPE d gauge\nd 1 2 3\n"],
  ];
  for (const [what, text] of bad) {
    test(`rejects ${what}`, () => {
      expect(() => parsePrometheusText(text)).toThrow(PrometheusParseError);
    });
  }
});

/** Waits until the receiver holds `n` records. */
async function rx(env: { rx: { waitForLines(n: number, ms?: number): Promise<string[]> } }, n: number): Promise<void> {
  await env.rx.waitForLines(n, 20_000);
}

/** One unlabelled value from /metrics (for polling). */
async function metricValue(relay: Relay, name: string): Promise<number> {
  const { body } = await get(`${await relay.healthUrl()}/metrics`);
  return valueOf(parsePrometheusText(body), `${PREFIX}${name}`);
}
