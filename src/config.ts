// The relay's typed configuration: what the CLI (src/cli.ts) produces after
// parsing flags, applying environment variables and validating everything.
// Durations are kept in the unit of their flag (ms or s) as named.

export type SourceKind = "kubernetes" | "url" | "socket";

export type LogFormat = "text" | "json";

/** What happens to new lines when the queue (and the spool, if any) is full. */
export type WhenFull = "block" | "drop-newest";

export interface SpoolConfig {
  /** --buffer-dir */
  dir: string;
  /** --buffer-max-bytes: disk the spool may use before --when-full applies. */
  maxBytes: number;
}

export interface ProxyConfig {
  /** --source-proxy / SOURCE_PROXY; when absent HTTP(S)_PROXY apply. */
  url?: string;
  insecure: boolean;
  /** PEM text read from --source-proxy-cacert at start-up. */
  caPem?: string;
  /** --source-no-proxy / SOURCE_NO_PROXY, split on commas; NO_PROXY when absent. */
  noProxy: string[];
}

export interface SourceConnectionConfig {
  connectTimeoutMs: number;
  readTimeoutMs: number;
  idleTimeoutMs: number;
  keepaliveIntervalS: number;
  keepaliveTimeoutS: number;
  insecure: boolean;
  /** PEM text read from --source-cacert at start-up (may hold several blocks). */
  caPem?: string;
  caPath?: string;
  proxy: ProxyConfig;
  reconnectDelayMs: number;
  reconnectMaxMs: number;
  /** 0 = retry forever. */
  reconnectRetries: number;
}

export interface KubernetesConfig {
  /** undefined: taken from the in-cluster namespace file or kubeconfig context, else "default". */
  namespace?: string;
  podSelector: string;
  watchIntervalS: number;
  /** undefined: every container of the pod. */
  container?: string;
  tailLines: number;
  sinceSeconds: number;
  excludePods: RegExp[];
  maxLogRequests: number;
  /** Seconds a stream may hold a slot while others wait (--max-log-requests rotation). */
  fairShareS: number;
  noStreamParam: boolean;
  splitStreams: boolean;
  /** --state-file: where the written cursors are kept across restarts; undefined = not kept. */
  stateFile?: string;
}

export interface FilterConfig {
  include: RegExp[];
  exclude: RegExp[];
}

export interface TcpSinkConfig {
  host: string;
  port: number;
  connectTimeoutMs: number;
  writeTimeoutMs: number;
  idleTimeoutMs: number;
  keepaliveIntervalS: number;
  keepaliveTimeoutS: number;
  reconnectDelayMs: number;
  reconnectMaxMs: number;
}

export interface HealthConfig {
  host: string;
  port: number;
  maxAgeS: number;
}

export interface Config {
  source: SourceKind;
  /** --source-url */
  sourceUrl?: string;
  /** --source-socket */
  sourceSocket?: string;
  /** --source-path, default /v1/logs/follow?format=ndjson */
  sourcePath: string;
  connection: SourceConnectionConfig;
  kubernetes: KubernetesConfig;
  filter: FilterConfig;
  /** Longest line forwarded, in bytes; longer ones are dropped and counted. */
  maxLineBytes: number;
  stdoutSink: boolean;
  tcp: TcpSinkConfig;
  /** Bytes the in-memory queue may hold before sources wait (or lines spill to the spool). */
  queueMaxBytes: number;
  /** The disk spool behind the memory queue; undefined = none. */
  spool?: SpoolConfig;
  whenFull: WhenFull;
  /** Time SIGTERM/SIGINT may spend flushing the queue before exit. */
  shutdownTimeoutMs: number;
  health: HealthConfig;
  logFormat: LogFormat;
  debug: boolean;
}
