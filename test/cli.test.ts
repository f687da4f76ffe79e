import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { ConfigError, FLAGS, HELP_GROUPS, VERSION, parseCli } from "../src/cli.ts";
import type { Config } from "../src/config.ts";

type Env = Record<string, string | undefined>;

function run(argv: string[], env: Env = {}): Config {
  const r = parseCli(argv, env);
  if (r.kind !== "run") throw new Error(`expected run, got ${r.kind}`);
  return r.config;
}

const k8s = (...rest: string[]): string[] => ["--kubernetes", ...rest];

/** Asserts a one-line ConfigError whose message contains every fragment. */
function expectError(argv: string[], env: Env, ...fragments: string[]): string {
  let caught: unknown;
  try {
    parseCli(argv, env);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  const message = caught instanceof Error ? caught.message : "";
  expect(message).not.toContain("\n");
  expect(message.length).toBeGreaterThan(0);
  for (const f of fragments) expect(message).toContain(f);
  return message;
}

const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
let dir = "";
let goodPem = "";
let twoPem = "";
let notPem = "";

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "vigil-cli-"));
  goodPem = join(dir, "ca.pem");
  twoPem = join(dir, "chain.pem");
  notPem = join(dir, "not.pem");
  writeFileSync(goodPem, PEM);
  writeFileSync(twoPem, PEM + PEM);
  writeFileSync(notPem, "hello, not a certificate\n");
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("defaults (REFERENCE.md)", () => {
  const c = run(k8s());

  test("source", () => {
    expect(c.source).toBe("kubernetes");
    expect(c.sourceUrl).toBeUndefined();
    expect(c.sourceSocket).toBeUndefined();
    expect(c.sourcePath).toBe("/v1/logs/follow?format=ndjson");
  });

  test("source connection", () => {
    expect(c.connection.connectTimeoutMs).toBe(10000);
    expect(c.connection.readTimeoutMs).toBe(0);
    expect(c.connection.idleTimeoutMs).toBe(0);
    expect(c.connection.keepaliveIntervalS).toBe(0);
    expect(c.connection.keepaliveTimeoutS).toBe(0);
    expect(c.connection.insecure).toBe(false);
    expect(c.connection.caPem).toBeUndefined();
    expect(c.connection.caPath).toBeUndefined();
    expect(c.connection.proxy).toEqual({ insecure: false, noProxy: [] });
  });

  test("source reconnect", () => {
    expect(c.connection.reconnectDelayMs).toBe(500);
    expect(c.connection.reconnectMaxMs).toBe(30000);
    expect(c.connection.reconnectRetries).toBe(0);
  });

  test("kubernetes", () => {
    expect(c.kubernetes).toEqual({
      podSelector: "",
      watchIntervalS: 10,
      tailLines: 0,
      sinceSeconds: 10,
      excludePods: [],
      maxLogRequests: 0,
      fairShareS: 30,
      noStreamParam: false,
      splitStreams: false,
    });
    // unset: resolved from the service account / kubeconfig, else "default"
    expect(c.kubernetes.namespace).toBeUndefined();
    expect(c.kubernetes.container).toBeUndefined();
  });

  test("filter", () => {
    expect(c.filter).toEqual({ include: [], exclude: [] });
    expect(c.maxLineBytes).toBe(1048576);
  });

  test("sink and tcp sink", () => {
    expect(c.stdoutSink).toBe(false);
    expect(c.queueMaxBytes).toBe(67108864);
    expect(c.shutdownTimeoutMs).toBe(5000);
    expect(c.tcp).toEqual({
      host: "127.0.0.1",
      port: 5170,
      connectTimeoutMs: 10000,
      writeTimeoutMs: 0,
      idleTimeoutMs: 0,
      keepaliveIntervalS: 0,
      keepaliveTimeoutS: 0,
      reconnectDelayMs: 500,
      reconnectMaxMs: 30000,
    });
  });

  test("health and logging", () => {
    expect(c.health).toEqual({ host: "127.0.0.1", port: 9091, maxAgeS: 30 });
    expect(c.logFormat).toBe("text");
    expect(c.debug).toBe(false);
  });
});

describe("sources", () => {
  test("--source-url", () => {
    const c = run(["--source-url", "https://vigild:8443/v1/logs/follow?format=ndjson"]);
    expect(c.source).toBe("url");
    expect(c.sourceUrl).toBe("https://vigild:8443/v1/logs/follow?format=ndjson");
  });

  test("--source-socket with --source-path", () => {
    const c = run(["--source-socket", "/run/vigild.sock", "--source-path=/v1/logs/follow?format=sse"]);
    expect(c.source).toBe("socket");
    expect(c.sourceSocket).toBe("/run/vigild.sock");
    expect(c.sourcePath).toBe("/v1/logs/follow?format=sse");
  });

  test("none is an error", () => {
    const msg = expectError([], {}, "no source", "--kubernetes", "--source-url", "--source-socket");
    expect(msg).toBe("no source: give one of --kubernetes, --source-url, --source-socket");
  });

  test("two or three are an error", () => {
    expectError(["--kubernetes", "--source-url", "http://a/"], {}, "--kubernetes", "--source-url");
    expectError(["--source-socket", "/s", "--source-url=http://a/"], {}, "--source-url", "--source-socket");
    expectError(["--kubernetes", "--source-socket", "/s", "--source-url", "http://a/"], {}, "only one source");
  });

  test("bad --source-url", () => {
    expectError(["--source-url", "not a url"], {}, "--source-url", "not a url");
    expectError(["--source-url", "ftp://host/x"], {}, "--source-url", "ftp://host/x", "http");
    expectError(["--source-url", "vigild:8080/logs"], {}, "--source-url", "vigild:8080/logs");
    expectError(["--source-url="], {}, "--source-url");
  });

  test("--source-path must start with / (checked for a socket source, which uses it; the reference ignores it elsewhere)", () => {
    expectError(["--source-socket", "/s", "--source-path", "v1/logs"], {}, "--source-path", "v1/logs", '"/"');
    expect(run(["--source-url", "http://h/", "--source-path", "v1/logs"]).sourceUrl).toBe("http://h/");
  });

  test("empty --source-socket", () => {
    expectError(["--source-socket="], {}, "--source-socket", "empty");
  });
});

describe("env and flags", () => {
  const numeric: [flag: string, env: string, get: (c: Config) => number][] = [
    ["--source-connect-timeout", "SOURCE_CONNECT_TIMEOUT", (c) => c.connection.connectTimeoutMs],
    ["--source-read-timeout", "SOURCE_READ_TIMEOUT", (c) => c.connection.readTimeoutMs],
    ["--source-idle-timeout", "SOURCE_IDLE_TIMEOUT", (c) => c.connection.idleTimeoutMs],
    ["--source-keepalive-interval", "SOURCE_KEEPALIVE_INTERVAL", (c) => c.connection.keepaliveIntervalS],
    ["--source-keepalive-timeout", "SOURCE_KEEPALIVE_TIMEOUT", (c) => c.connection.keepaliveTimeoutS],
    ["--source-reconnect-delay", "SOURCE_RECONNECT_DELAY", (c) => c.connection.reconnectDelayMs],
    ["--source-reconnect-max", "SOURCE_RECONNECT_MAX", (c) => c.connection.reconnectMaxMs],
    ["--source-reconnect-retries", "SOURCE_RECONNECT_RETRIES", (c) => c.connection.reconnectRetries],
    ["--watch-interval", "WATCH_INTERVAL", (c) => c.kubernetes.watchIntervalS],
    ["--tail-lines", "TAIL_LINES", (c) => c.kubernetes.tailLines],
    ["--since-seconds", "SINCE_SECONDS", (c) => c.kubernetes.sinceSeconds],
    ["--max-log-requests", "MAX_LOG_REQUESTS", (c) => c.kubernetes.maxLogRequests],
    ["--stream-rotate-after", "STREAM_ROTATE_AFTER", (c) => c.kubernetes.fairShareS],
    ["--max-line-bytes", "MAX_LINE_BYTES", (c) => c.maxLineBytes],
    ["--queue-max-bytes", "QUEUE_MAX_BYTES", (c) => c.queueMaxBytes],
    ["--shutdown-timeout", "SHUTDOWN_TIMEOUT", (c) => c.shutdownTimeoutMs],
    ["--tcp-sink-port", "TCP_SINK_PORT", (c) => c.tcp.port],
    ["--dest-connect-timeout", "DEST_CONNECT_TIMEOUT", (c) => c.tcp.connectTimeoutMs],
    ["--dest-read-timeout", "DEST_READ_TIMEOUT", (c) => c.tcp.writeTimeoutMs],
    ["--dest-idle-timeout", "DEST_IDLE_TIMEOUT", (c) => c.tcp.idleTimeoutMs],
    ["--dest-keepalive-interval", "DEST_KEEPALIVE_INTERVAL", (c) => c.tcp.keepaliveIntervalS],
    ["--dest-keepalive-timeout", "DEST_KEEPALIVE_TIMEOUT", (c) => c.tcp.keepaliveTimeoutS],
    ["--dest-reconnect-delay", "DEST_RECONNECT_DELAY", (c) => c.tcp.reconnectDelayMs],
    ["--dest-reconnect-max", "DEST_RECONNECT_MAX", (c) => c.tcp.reconnectMaxMs],
    ["--healthcheck-max-age", "HEALTHCHECK_MAX_AGE", (c) => c.health.maxAgeS],
  ];

  const SIGNED = new Set(["--tail-lines", "--since-seconds"]);
  for (const [flag, env, get] of numeric) {
    test(`${flag} / ${env}`, () => {
      expect(get(run(k8s(), { [env]: "7" }))).toBe(7);
      expect(get(run(k8s(flag, "9"), { [env]: "7" }))).toBe(9);
      expect(get(run(k8s(`${flag}=11`), { [env]: "7" }))).toBe(11);
      expectError(k8s(flag, "abc"), {}, flag, '"abc"');
      expectError(k8s(flag, "1.5"), {}, flag, '"1.5"');
      expectError(k8s(flag, ""), {}, flag, '""');
      expectError(k8s(), { [env]: "ten" }, env, '"ten"');
      if (SIGNED.has(flag)) {
        // The reference reads these as signed numbers, used only above 0.
        expect(get(run(k8s(`${flag}=-1`)))).toBe(0);
        expect(get(run(k8s(), { [env]: "-3" }))).toBe(0);
      } else {
        expectError(k8s(`${flag}=-1`), {}, flag, '"-1"');
        expectError(k8s(flag, "-5"), {}, flag, '"-5"');
        expectError(k8s(), { [env]: "-3" }, env, '"-3"');
      }
    });
  }

  test("numbers of 0 where 0 is meaningless", () => {
    expectError(k8s("--tcp-sink-port", "0"), {}, "--tcp-sink-port", '"0"');
    expectError(k8s("--watch-interval", "0"), {}, "--watch-interval", '"0"');
    expectError(k8s("--max-line-bytes", "0"), {}, "--max-line-bytes");
    expectError(k8s("--queue-max-bytes", "0"), {}, "--queue-max-bytes");
    expectError(k8s("--stream-rotate-after", "0"), {}, "--stream-rotate-after");
    expect(run(k8s("--source-connect-timeout", "0")).connection.connectTimeoutMs).toBe(0);
  });

  test("--tcp-sink-port range", () => {
    expect(run(k8s("--tcp-sink-port", "65535")).tcp.port).toBe(65535);
    expect(run(k8s("--tcp-sink-port", "1")).tcp.port).toBe(1);
    expectError(k8s("--tcp-sink-port", "65536"), {}, "--tcp-sink-port", "65536");
    expectError(k8s(), { TCP_SINK_PORT: "70000" }, "TCP_SINK_PORT", "70000");
  });

  test("string flags with env", () => {
    const env = { NAMESPACE: "prod", POD_SELECTOR: "app=api", TCP_SINK_HOST: "logstash", VIGIL_LOG_FORMAT: "json" };
    const fromEnv = run(k8s(), env);
    expect(fromEnv.kubernetes.namespace).toBe("prod");
    expect(fromEnv.kubernetes.podSelector).toBe("app=api");
    expect(fromEnv.tcp.host).toBe("logstash");
    expect(fromEnv.logFormat).toBe("json");
    const fromFlags = run(
      k8s("--namespace", "dev", "--pod-selector=tier in (web)", "--tcp-sink-host", "fluent", "--log-format", "text"),
      env,
    );
    expect(fromFlags.kubernetes.namespace).toBe("dev");
    expect(fromFlags.kubernetes.podSelector).toBe("tier in (web)");
    expect(fromFlags.tcp.host).toBe("fluent");
    expect(fromFlags.logFormat).toBe("text");
  });

  test("empty env counts as unset", () => {
    const c = run(k8s(), { NAMESPACE: "", TCP_SINK_PORT: "", SOURCE_PROXY: "", SOURCE_INSECURE: "" });
    expect(c.kubernetes.namespace).toBeUndefined();
    expect(c.tcp.port).toBe(5170);
    expect(c.connection.proxy.url).toBeUndefined();
    expect(c.connection.insecure).toBe(false);
  });

  test("--container has no env", () => {
    expect(run(k8s("--container", "app")).kubernetes.container).toBe("app");
    expect(run(k8s(), { CONTAINER: "app" }).kubernetes.container).toBeUndefined();
  });

  test("--state-file / STATE_FILE, no default", () => {
    expect(run(k8s()).kubernetes.stateFile).toBeUndefined();
    expect(run(k8s("--state-file", "/tmp/s.json")).kubernetes.stateFile).toBe("/tmp/s.json");
    expect(run(k8s(), { STATE_FILE: "/var/lib/x/state.json" }).kubernetes.stateFile).toBe("/var/lib/x/state.json");
    expect(run(k8s("--state-file", "/a"), { STATE_FILE: "/b" }).kubernetes.stateFile).toBe("/a");
    expectError(k8s("--state-file="), {}, "--state-file", "empty");
  });

  test("--log-format", () => {
    expect(run(k8s("--log-format=json")).logFormat).toBe("json");
    expect(run(k8s("--log-format=JSON")).logFormat).toBe("json");
    expectError(k8s("--log-format", "yaml"), {}, "--log-format", '"yaml"', "text", "json");
    // VIGIL_LOG_FORMAT is vigild's too: any value but json is text there and in the reference.
    expect(run(k8s(), { VIGIL_LOG_FORMAT: "logfmt" }).logFormat).toBe("text");
    expect(run(k8s(), { VIGIL_LOG_FORMAT: "JSON" }).logFormat).toBe("json");
  });

  test("--x=v keeps everything after the first =", () => {
    expect(run(k8s("--pod-selector=app=api,tier!=db")).kubernetes.podSelector).toBe("app=api,tier!=db");
  });
});

describe("booleans", () => {
  const bools: [flag: string, env: string, get: (c: Config) => boolean][] = [
    ["--source-insecure", "SOURCE_INSECURE", (c) => c.connection.insecure],
    ["--source-proxy-insecure", "SOURCE_PROXY_INSECURE", (c) => c.connection.proxy.insecure],
    ["--no-stream-param", "NO_STREAM_PARAM", (c) => c.kubernetes.noStreamParam],
    ["--split-streams", "SPLIT_STREAMS", (c) => c.kubernetes.splitStreams],
    ["--stdout-sink", "STDOUT_SINK", (c) => c.stdoutSink],
  ];

  for (const [flag, env, get] of bools) {
    test(`${flag} / ${env}`, () => {
      expect(get(run(k8s()))).toBe(false);
      expect(get(run(k8s(flag)))).toBe(true);
      for (const v of ["true", "TRUE", "1", "yes", "Yes"]) expect(get(run(k8s(), { [env]: v }))).toBe(true);
      for (const v of ["false", "False", "0", "no", "NO"]) expect(get(run(k8s(), { [env]: v }))).toBe(false);
      // the flag wins over a false env
      expect(get(run(k8s(flag), { [env]: "false" }))).toBe(true);
      expectError(k8s(), { [env]: "maybe" }, env, '"maybe"');
      expectError(k8s(`${flag}=true`), {}, flag, "takes no value");
    });
  }

  test("--debug (no env)", () => {
    expect(run(k8s("--debug")).debug).toBe(true);
    expect(run(k8s(), { DEBUG: "true" }).debug).toBe(false);
  });

  test("--no-stream-param is not read as a negation of another flag", () => {
    const c = run(k8s("--no-stream-param"));
    expect(c.kubernetes.noStreamParam).toBe(true);
    expectError(k8s("--no-debug"), {}, "unknown flag --no-debug");
  });
});

describe("repeatable flags and regexes", () => {
  test("collect every occurrence in order, both forms", () => {
    const c = run(k8s("--include", "a", "--include=b", "--exclude", "c", "--exclude-pod", "^job-", "--include", "d", "--exclude-pod=canary"));
    expect(c.filter.include.map((r) => r.source)).toEqual(["a", "b", "d"]);
    expect(c.filter.exclude.map((r) => r.source)).toEqual(["c"]);
    expect(c.kubernetes.excludePods.map((r) => r.source)).toEqual(["^job-", "canary"]);
  });

  test("unanchored search, no flags", () => {
    const [re] = run(k8s("--include", "err(or)?")).filter.include;
    expect(re?.flags).toBe("");
    expect(re?.test("level=error msg=x")).toBe(true);
    expect(re?.test("level=info")).toBe(false);
  });

  test("Rust syntax: leading (?i) and (?P<name>)", () => {
    const [ci, named] = run(k8s("--exclude", "(?i)healthz", "--exclude", "(?P<lvl>WARN|ERROR)")).filter.exclude;
    expect(ci?.test("GET /HEALTHZ")).toBe(true);
    expect(named?.exec("x ERROR y")?.groups?.lvl).toBe("ERROR");
  });

  test("invalid regex names flag and pattern", () => {
    for (const flag of ["--include", "--exclude", "--exclude-pod"]) {
      expectError(k8s(flag, "a("), {}, flag, '"a("', "invalid regular expression");
      expectError(k8s(`${flag}=[z-a]`), {}, flag, '"[z-a]"');
    }
  });

  test("a non-repeatable flag given twice", () => {
    expectError(k8s("--namespace", "a", "--namespace", "b"), {}, "--namespace", "more than once");
    expectError(["--kubernetes", "--kubernetes"], {}, "--kubernetes", "more than once");
  });
});

describe("healthcheck", () => {
  test("HOST:PORT forms", () => {
    expect(run(k8s("--healthcheck", "0.0.0.0:8080")).health).toEqual({ host: "0.0.0.0", port: 8080, maxAgeS: 30 });
    expect(run(k8s("--healthcheck=[::1]:9091")).health).toMatchObject({ host: "::1", port: 9091 });
    expect(run(k8s("--healthcheck", "localhost:0")).health).toMatchObject({ host: "localhost", port: 0 });
    expect(run(k8s(), { HEALTHCHECK: "[::]:9100" }).health).toMatchObject({ host: "::", port: 9100 });
    expect(run(k8s("--healthcheck", "127.0.0.1:1"), { HEALTHCHECK: "[::]:9100" }).health).toMatchObject({ host: "127.0.0.1", port: 1 });
  });

  test("bad addresses", () => {
    expectError(k8s("--healthcheck", "127.0.0.1"), {}, "--healthcheck", '"127.0.0.1"', "port");
    expectError(k8s("--healthcheck", "127.0.0.1:"), {}, "--healthcheck", "port");
    expectError(k8s("--healthcheck", "[::1]"), {}, "--healthcheck", '"[::1]"', "port");
    expectError(k8s("--healthcheck", "::1:9091"), {}, "--healthcheck", "[::1]");
    expectError(k8s("--healthcheck", ":9091"), {}, "--healthcheck", "host");
    expectError(k8s("--healthcheck", "h:65536"), {}, "--healthcheck", "65536");
    expectError(k8s("--healthcheck", "h:x"), {}, "--healthcheck", '"x"');
    expectError(k8s(), { HEALTHCHECK: "nope" }, "HEALTHCHECK", '"nope"');
  });
});

describe("CA files", () => {
  test("read at parse time, several blocks allowed", () => {
    const c = run(["--source-url", "https://a/", "--source-cacert", twoPem, "--source-proxy-cacert", goodPem]);
    expect(c.connection.caPem).toBe(PEM + PEM);
    expect(c.connection.caPath).toBe(twoPem);
    expect(c.connection.proxy.caPem).toBe(PEM);
  });

  test("from env, flag wins", () => {
    expect(run(k8s(), { SOURCE_CACERT: goodPem }).connection.caPem).toBe(PEM);
    expect(run(k8s(), { SOURCE_PROXY_CACERT: goodPem }).connection.proxy.caPem).toBe(PEM);
    expect(run(k8s(`--source-cacert=${twoPem}`), { SOURCE_CACERT: notPem }).connection.caPath).toBe(twoPem);
  });

  for (const [flag, env] of [
    ["--source-cacert", "SOURCE_CACERT"],
    ["--source-proxy-cacert", "SOURCE_PROXY_CACERT"],
  ] as const) {
    test(`${flag} errors`, () => {
      const missing = join(dir, "missing.pem");
      expectError(k8s(flag, missing), {}, flag, missing, "no such file or directory");
      expectError(k8s(flag, dir), {}, flag, dir, "EISDIR");
      expectError(k8s(flag, notPem), {}, flag, notPem, "-----BEGIN CERTIFICATE-----");
      expectError(k8s(), { [env]: missing }, env, missing);
    });
  }
});

describe("proxy", () => {
  test("url from flag or env, flag wins", () => {
    expect(run(k8s("--source-proxy", "http://proxy:3128")).connection.proxy.url).toBe("http://proxy:3128");
    expect(run(k8s(), { SOURCE_PROXY: "https://p:443" }).connection.proxy.url).toBe("https://p:443");
    expect(run(k8s("--source-proxy=http://a:1"), { SOURCE_PROXY: "http://b:2" }).connection.proxy.url).toBe("http://a:1");
  });

  test("HTTP(S)_PROXY / NO_PROXY are left to the source module", () => {
    const c = run(k8s(), { HTTPS_PROXY: "http://x:1", HTTP_PROXY: "http://x:1", NO_PROXY: "a,b" });
    expect(c.connection.proxy.url).toBeUndefined();
    expect(c.connection.proxy.noProxy).toEqual([]);
  });

  test("scheme-less host:port means http:// (as reqwest)", () => {
    expect(run(k8s("--source-proxy", "proxy:3128")).connection.proxy.url).toBe("http://proxy:3128");
  });

  test("bad proxy URLs", () => {
    expectError(k8s("--source-proxy", "socks5://p:1080"), {}, "--source-proxy", "socks5://p:1080", "http");
    expectError(k8s("--source-proxy", "http://"), {}, "--source-proxy", '"http://"');
    expectError(k8s(), { SOURCE_PROXY: "ftp://p" }, "SOURCE_PROXY");
  });

  test("credentials are not echoed", () => {
    const msg = expectError(k8s("--source-proxy", "socks5://user:secret@p:1080"), {}, "--source-proxy");
    expect(msg).not.toContain("secret");
  });

  test("no-proxy list", () => {
    expect(run(k8s("--source-no-proxy", " a.internal, ,.svc,10.0.0.0/8 ,::1/128,")).connection.proxy.noProxy).toEqual([
      "a.internal",
      ".svc",
      "10.0.0.0/8",
      "::1/128",
    ]);
    expect(run(k8s(), { SOURCE_NO_PROXY: "x,y" }).connection.proxy.noProxy).toEqual(["x", "y"]);
    expect(run(k8s("--source-no-proxy=z"), { SOURCE_NO_PROXY: "x,y" }).connection.proxy.noProxy).toEqual(["z"]);
  });
});

describe("argv errors", () => {
  test("unknown flags are named", () => {
    expectError(k8s("--bogus"), {}, "unknown flag --bogus");
    expectError(k8s("--bogus=1"), {}, "unknown flag --bogus");
    expectError(k8s("-x"), {}, "unknown flag -x");
    expectError(k8s("--tcpSinkPort=5"), {}, "--tcpSinkPort", "did you mean --tcp-sink-port");
    expectError(k8s("--tcp-sink-prot", "5"), {}, "--tcp-sink-prot", "did you mean --tcp-sink-port");
  });

  test("positional arguments are rejected", () => {
    expectError(k8s("extra"), {}, '"extra"');
    expectError(k8s("--", "extra"), {}, '"extra"');
  });

  test("missing values", () => {
    expectError(k8s("--namespace"), {}, "--namespace", "requires a value");
    expectError(k8s("--tcp-sink-port", "--debug"), {}, "--tcp-sink-port", "requires a value");
    expectError(["--source-url"], {}, "--source-url", "requires a value");
  });

  test("a value starting with a single dash is taken", () => {
    expect(run(k8s("--exclude-pod", "-canary$")).kubernetes.excludePods[0]?.source).toBe("-canary$");
  });
});

describe("help and version", () => {
  const helpOf = (argv: string[]): string => {
    const r = parseCli(argv, {});
    if (r.kind !== "help") throw new Error(`expected help, got ${r.kind}`);
    return r.text;
  };

  test("--help and -h, even without a source or after a bad flag", () => {
    expect(helpOf(["--help"])).toContain("Usage:");
    expect(helpOf(["-h"])).toBe(helpOf(["--help"]));
    expect(helpOf(["--bogus", "--help"])).toContain("Usage:");
  });

  test("headings in order", () => {
    const text = helpOf(["--help"]);
    const headings = [
      "Source",
      "Source Connection",
      "Source Reconnect",
      "Kubernetes",
      "Filter",
      "Sink",
      "TCP Sink",
      "TCP Sink Connection",
      "TCP Sink Reconnect",
      "Health Check",
      "Logging",
    ];
    const lines = text.split("\n");
    const positions = headings.map((h) => lines.indexOf(`${h}:`));
    for (const p of positions) expect(p).toBeGreaterThanOrEqual(0);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(HELP_GROUPS.slice(0, headings.length).join("|")).toBe(headings.join("|"));
  });

  test("every flag appears with env and default", () => {
    const lines = helpOf(["--help"]).split("\n");
    for (const flag of FLAGS) {
      const line = lines.find((l) => new RegExp(`^\\s+(-\\w, )?--${flag.name}(\\s|$)`).test(l));
      expect(line, `--${flag.name}`).toBeDefined();
      if (flag.valueHint !== undefined) expect(line).toContain(`<${flag.valueHint}>`);
      if (flag.env !== undefined) expect(line).toContain(`[env: ${flag.env}]`);
      if (flag.defaultText !== undefined) expect(line).toContain(`[default: ${flag.defaultText}]`);
    }
    const text = lines.join("\n");
    for (const f of ["--kubernetes", "--source-url", "--max-line-bytes", "--queue-max-bytes", "--shutdown-timeout", "--split-streams", "--stream-rotate-after"]) {
      expect(text).toContain(f);
    }
    expect(text).toContain("[env: TCP_SINK_PORT] [default: 5170]");
    expect(text).toContain("[env: HEALTHCHECK] [default: 127.0.0.1:9091]");
  });

  test("extra flags sit in their groups", () => {
    const groupOf = (name: string): string | undefined => FLAGS.find((f) => f.name === name)?.group;
    expect(["Filter", "Source"]).toContain(groupOf("max-line-bytes") ?? "");
    expect(groupOf("queue-max-bytes")).toBe("Sink");
    expect(groupOf("shutdown-timeout")).toBe("Sink");
    expect(groupOf("split-streams")).toBe("Kubernetes");
    expect(groupOf("stream-rotate-after")).toBe("Kubernetes");
  });

  test("--version prints the package.json version", () => {
    const r = parseCli(["--version"], {});
    expect(r.kind).toBe("version");
    expect(VERSION).toBe(pkg.version);
    if (r.kind === "version") expect(r.text).toContain(pkg.version);
    // -V as in the reference (clap)
    expect(parseCli(["-V"], {})).toEqual(r);
  });
});
