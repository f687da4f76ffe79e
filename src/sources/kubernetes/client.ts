// Talking to the API server: credentials from @kubernetes/client-node's
// KubeConfig (KUBECONFIG, ~/.kube/config or the in-cluster service account;
// client certificates, tokens, token files, exec plugins), requests through our
// own HTTP/1.1 client (src/http/raw-client.ts) because Bun's fetch caps
// concurrent requests at 256 and client-node's own HTTP ignores the cluster CA
// under Bun.
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, dirname, isAbsolute, join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import type { Config } from "../../config.ts";
import type { Logger } from "../../log.ts";
import { request, type RawResponse, type TlsSettings, type ProxySettings } from "../../http/raw-client.ts";
import { firstLineOf, StartupError } from "../../startup-error.ts";
import { CredentialsError, credentialsError } from "./credentials-error.ts";
import { execInfo } from "./exec-info.ts";
import { proxyFor, proxySettings, throughProxy } from "../proxy.ts";
import { pemBlocks } from "../tls.ts";

const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
const IN_CLUSTER = "in-cluster service account";

export interface KubeRequestOptions {
  signal?: AbortSignal;
  /** Time allowed for the response head; 0 for follow streams (the head comes with the first line). */
  headersTimeoutMs?: number;
}

/** The Status object the API answers errors with. */
export interface ApiStatus {
  code?: number;
  reason?: string;
  message?: string;
}

/** How long derived credentials are reused; token files are re-read this often (projected tokens rotate). */
const CREDENTIALS_TTL_MS = 30_000;

/** Headers and TLS settings for API requests, direct and through the proxy (which may re-sign the server). */
interface Credentials {
  headers: Record<string, string>;
  tls: TlsSettings;
  tlsViaProxy: TlsSettings;
}

export class KubeClient {
  private kc: KubeConfig;
  private proxyCache: { url: string; settings: ProxySettings } | null = null;
  /** The current user's token file (re-read with every derivation of the credentials). */
  private tokenFile: string | undefined;
  private auth: (Credentials & { at: number }) | null = null;
  /** One derivation at a time, shared by every request waiting for it (an exec plugin runs once). */
  private deriving: Promise<Credentials> | null = null;
  private lastReload = 0;
  /** Bumped by every reload: a derivation from an older configuration is not kept. */
  private generation = 0;

  constructor(
    private readonly loader: ConfigLoader,
    kc: KubeConfig,
    readonly server: URL,
    readonly namespace: string,
    private readonly cfg: Config,
    private readonly log: Logger,
    /** Where the configuration came from, for messages. */
    readonly source: string,
  ) {
    this.kc = allowPlainHttp(kc);
    this.tokenFile = loader.tokenFile(kc);
  }

  /** Headers and TLS for the next request; re-derived at least every minute (rotated token files). */
  private credentials(): Promise<Credentials> {
    if (this.auth && Date.now() - this.auth.at < CREDENTIALS_TTL_MS) return Promise.resolve(this.auth);
    if (this.deriving === null) {
      const p = this.derive().finally(() => {
        if (this.deriving === p) this.deriving = null;
      });
      this.deriving = p;
    }
    return this.deriving;
  }

  private async derive(): Promise<Credentials> {
    const generation = this.generation;
    const opts: {
      headers?: Record<string, string>;
      ca?: Buffer | string;
      cert?: Buffer | string;
      key?: Buffer | string;
      rejectUnauthorized?: boolean;
      servername?: string;
      auth?: string;
    } = {};
    // applyToHTTPSOptions is typed for node's https options; we read back what it sets.
    // client-node passes our environment on to an exec plugin.
    const info = execInfo(this.kc);
    if (info !== undefined) process.env.KUBERNETES_EXEC_INFO = info;
    try {
      await this.kc.applyToHTTPSOptions(opts as Parameters<KubeConfig["applyToHTTPSOptions"]>[0]);
    } catch (e) {
      throw credentialsError(e, this.kc);
    }
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.auth) headers["Authorization"] = `Basic ${Buffer.from(opts.auth).toString("base64")}`;
    // A token file (kubeconfig tokenFile / token-file, the in-cluster token) is read here, on
    // every derivation: client-node reads kubectl's tokenFile not at all and token-file only once.
    const tokenFile = this.tokenFile;
    if (tokenFile !== undefined) {
      try {
        const token = readFileSync(tokenFile, "utf8").trim();
        if (token !== "") {
          for (const k of Object.keys(headers)) if (k.toLowerCase() === "authorization") delete headers[k];
          headers["Authorization"] = `Bearer ${token}`;
        }
      } catch (e) {
        this.log.warnLimited("token-file", "cannot read the token file (check that it exists and that the relay may read it)", {
          path: tokenFile,
          error: e instanceof Error ? e.message : String(e),
        });
      }
    }
    // Checked here, where it can be named: the TLS library's own complaint ("Invalid CA") names no source.
    if (opts.ca !== undefined && pemBlocks(String(opts.ca)).length === 0) {
      throw new CredentialsError("the certificate authority in the Kubernetes configuration (certificate-authority-data or certificate-authority) holds no PEM certificate");
    }
    if (opts.cert !== undefined && pemBlocks(String(opts.cert)).length === 0) {
      throw new CredentialsError("the client certificate in the Kubernetes configuration (client-certificate-data or client-certificate) holds no PEM certificate");
    }
    // The API server is verified as the kubeconfig says (--source-cacert and
    // --source-insecure are for HTTP sources, as in the reference).
    const tls: TlsSettings = {
      ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
      ...(opts.cert !== undefined ? { cert: opts.cert } : {}),
      ...(opts.key !== undefined ? { key: opts.key } : {}),
      ...(opts.servername ? { serverName: opts.servername } : {}),
      rejectUnauthorized: opts.rejectUnauthorized !== false,
    };
    const auth = { headers, tls, tlsViaProxy: throughProxy(tls, this.cfg.connection.proxy), at: Date.now() };
    if (generation === this.generation) this.auth = auth;
    return auth;
  }

  /**
   * After a 401: reload the configuration (token file, exec plugin) and derive credentials anew.
   * Many streams see the same 401 at once: one reload per second is enough for all of them.
   */
  refreshCredentials(): void {
    if (Date.now() - this.lastReload < 1000) return;
    this.lastReload = Date.now();
    try {
      this.kc = allowPlainHttp(this.loader.load());
      this.tokenFile = this.loader.tokenFile(this.kc);
    } catch (e) {
      // Every 401 may bring a reload (at most one a second): a broken kubeconfig must not flood the log.
      this.log.warnLimited("credentials-reload", "reloading the Kubernetes credentials failed; using the previous ones (check KUBECONFIG or the service account files)", {
        error: e instanceof Error ? e.message : String(e),
      });
    }
    this.generation++;
    this.auth = null;
    this.deriving = null;
  }

  /**
   * The proxy for API requests, as the reference picks it: --source-proxy, else
   * the kubeconfig's proxy-url, else HTTP(S)_PROXY / NO_PROXY, except in-cluster,
   * where the API is reached directly (a pod's proxy variables are for the
   * outside world, and its proxy rarely reaches the cluster's service IP).
   * Derived once per proxy URL.
   */
  private proxy(): ProxySettings | undefined {
    const c = this.cfg.connection;
    const inCluster = this.source === IN_CLUSTER;
    const url =
      c.proxy.url !== undefined
        ? proxyFor(this.server, c.proxy) // --source-no-proxy / NO_PROXY may still bypass it
        : (this.kc.getCurrentCluster()?.proxyUrl ?? (inCluster ? undefined : proxyFor(this.server, c.proxy)));
    if (!url) return undefined;
    if (this.proxyCache?.url !== url) this.proxyCache = { url, settings: proxySettings(url, c.proxy) };
    return this.proxyCache.settings;
  }

  /** GET `path` (with query) on the API server. */
  async get(path: string, opts: KubeRequestOptions = {}): Promise<RawResponse> {
    const { headers, tls, tlsViaProxy } = await this.credentials();
    const url = new URL(path, this.server);
    // Keep a path prefix of the server URL (e.g. https://host/k8s/clusters/x).
    if (this.server.pathname !== "/" && this.server.pathname !== "") url.pathname = this.server.pathname.replace(/\/$/, "") + path.split("?")[0];
    const proxy = this.proxy();
    return request({
      url,
      headers: { ...headers, Accept: "application/json", "User-Agent": "vigil-log-relay" },
      ...(url.protocol === "https:" ? { tls: proxy ? tlsViaProxy : tls } : {}),
      ...(proxy ? { proxy } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      connectTimeoutMs: this.cfg.connection.connectTimeoutMs,
      keepAliveMs: this.cfg.connection.keepaliveIntervalS * 1000,
      headersTimeoutMs: opts.headersTimeoutMs ?? 0,
    });
  }
}

/** Reads a Status object from an error response body (or wraps the text). */
export async function readStatus(res: RawResponse): Promise<ApiStatus> {
  const text = await res.text(64 * 1024).catch(() => "");
  try {
    const v: unknown = JSON.parse(text);
    if (v !== null && typeof v === "object") {
      const o = v as Record<string, unknown>;
      return {
        code: typeof o.code === "number" ? o.code : res.status,
        ...(typeof o.reason === "string" ? { reason: o.reason } : {}),
        ...(typeof o.message === "string" ? { message: o.message } : {}),
      };
    }
  } catch {
    // not JSON: keep the text
  }
  return { code: res.status, message: text.trim().split("\n")[0]?.slice(0, 300) || res.statusText };
}

function inCluster(): boolean {
  return Boolean(process.env.KUBERNETES_SERVICE_HOST && process.env.KUBERNETES_SERVICE_PORT);
}

/**
 * client-node refuses to derive options for an http:// server (e.g. `kubectl
 * proxy`) unless the cluster skips TLS verification, which means nothing
 * without TLS: mark such a cluster so, as kubectl accepts it as it is.
 */
function allowPlainHttp(kc: KubeConfig): KubeConfig {
  const cluster = kc.getCurrentCluster();
  if (!cluster || !cluster.server.startsWith("http:") || cluster.skipTLSVerify) return kc;
  kc.clusters = kc.clusters.map((c) => (c === cluster ? { ...c, skipTLSVerify: true } : c));
  return kc;
}

interface ConfigLoader {
  load: () => KubeConfig;
  /** The current user's token file, if it has one. */
  tokenFile: (kc: KubeConfig) => string | undefined;
  source: string;
}

type Yaml = Record<string, unknown>;

function yamlObj(v: unknown): Yaml {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Yaml) : {};
}

/** The first of these kubeconfig files that defines `userName` (kubectl's merge: the first wins), and that user's entry. */
function findUser(files: string[], userName: string | undefined): { file: string; user: Yaml } | undefined {
  if (!userName) return undefined;
  for (const file of files) {
    let doc: unknown;
    try {
      doc = Bun.YAML.parse(readFileSync(file, "utf8"));
    } catch {
      continue;
    }
    const users = yamlObj(doc).users;
    if (!Array.isArray(users)) continue;
    for (const u of users) {
      const entry = yamlObj(u);
      if (entry.name === userName) return { file, user: yamlObj(entry.user) };
    }
  }
  return undefined;
}

/**
 * The current user's `tokenFile` (kubectl's field) or `token-file` in these
 * kubeconfig files, a relative path resolved against the file's directory.
 */
function kubeconfigTokenFile(files: string[], userName: string | undefined): string | undefined {
  const found = findUser(files, userName);
  if (found === undefined) return undefined;
  const { user } = found;
  const path = typeof user.tokenFile === "string" ? user.tokenFile : typeof user["token-file"] === "string" ? user["token-file"] : undefined;
  if (path === undefined || path === "") return undefined;
  return isAbsolute(path) ? path : join(dirname(found.file), path);
}

/**
 * An exec plugin's command with a "/" that is not absolute (`./bin/get-token`)
 * is relative to the kubeconfig that names it, as kubectl runs it; client-node
 * would run it relative to the working directory.
 */
function resolveExecCommand(kc: KubeConfig, files: string[]): KubeConfig {
  const current = kc.getCurrentUser();
  const command: unknown = current?.exec?.command;
  if (!current || typeof command !== "string" || !command.includes("/") || isAbsolute(command)) return kc;
  const found = findUser(files, current.name);
  if (found === undefined) return kc;
  const resolved = join(dirname(found.file), command);
  kc.users = kc.users.map((u) => (u === current ? { ...u, exec: { ...current.exec, command: resolved } } : u));
  return kc;
}

/** The in-cluster user's token file (client-node's tokenFile auth provider). */
function authProviderTokenFile(kc: KubeConfig): string | undefined {
  const config = yamlObj(yamlObj(kc.getCurrentUser()?.authProvider).config);
  return typeof config.tokenFile === "string" && config.tokenFile !== "" ? config.tokenFile : undefined;
}

/** Which configuration to load: KUBECONFIG, ~/.kube/config, else the in-cluster service account. */
function configLoader(): ConfigLoader {
  const kubeconfig = process.env.KUBECONFIG;
  const home = join(homedir(), ".kube", "config");
  if (kubeconfig && kubeconfig.trim() !== "") {
    const files = kubeconfig.split(delimiter).filter((f) => f !== "");
    return {
      load: () => {
        const kc = new KubeConfig();
        kc.loadFromDefault();
        return resolveExecCommand(kc, files);
      },
      tokenFile: (kc) => kubeconfigTokenFile(files, kc.getCurrentUser()?.name) ?? authProviderTokenFile(kc),
      source: `KUBECONFIG=${kubeconfig}`,
    };
  }
  if (existsSync(home)) {
    return {
      load: () => {
        const kc = new KubeConfig();
        kc.loadFromFile(home);
        return resolveExecCommand(kc, [home]);
      },
      tokenFile: (kc) => kubeconfigTokenFile([home], kc.getCurrentUser()?.name) ?? authProviderTokenFile(kc),
      source: home,
    };
  }
  if (inCluster()) return inClusterLoader();
  throw new StartupError(
    "no Kubernetes configuration: set KUBECONFIG, create ~/.kube/config, or run in a pod with a service account",
  );
}

function inClusterLoader(): ConfigLoader {
  return {
    load: () => {
      const kc = new KubeConfig();
      kc.loadFromCluster();
      return kc;
    },
    tokenFile: authProviderTokenFile,
    source: IN_CLUSTER,
  };
}

function namespaceFor(cfg: Config, kc: KubeConfig, source: string): string {
  if (cfg.kubernetes.namespace) return cfg.kubernetes.namespace;
  if (source === IN_CLUSTER) {
    try {
      const ns = readFileSync(join(SA_DIR, "namespace"), "utf8").trim();
      if (ns) return ns;
    } catch {
      // fall through to the context's namespace
    }
  }
  const ctx = kc.getContextObject(kc.getCurrentContext());
  return ctx?.namespace || "default";
}

function loadFailed(loader: ConfigLoader, e: unknown): StartupError {
  return new StartupError(`cannot load the Kubernetes configuration (${loader.source}): ${e instanceof Error ? e.message : String(e)}`);
}

/** Loads the configuration; start-up problems are one-line StartupErrors. */
export function createKubeClient(cfg: Config, log: Logger): KubeClient {
  let loader = configLoader();
  let kc: KubeConfig;
  try {
    kc = loader.load();
  } catch (e) {
    // In a pod, a kubeconfig that cannot be read (a stale KUBECONFIG in the image or the
    // Deployment) falls back to the service account, as the reference's client does.
    if (loader.source === IN_CLUSTER || !inCluster()) throw loadFailed(loader, e);
    log.warn("cannot load the Kubernetes configuration; using the in-cluster service account (unset KUBECONFIG to silence this)", {
      source: loader.source,
      error: firstLineOf(e instanceof Error ? e.message : String(e)),
    });
    loader = inClusterLoader();
    try {
      kc = loader.load();
    } catch (e2) {
      throw loadFailed(loader, e2);
    }
  }
  const { source } = loader;
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new StartupError(`the Kubernetes configuration (${source}) has no current cluster`);
  let server: URL;
  try {
    server = new URL(cluster.server);
  } catch {
    throw new StartupError(`the Kubernetes configuration (${source}) names an invalid server: ${cluster.server}`);
  }
  const namespace = namespaceFor(cfg, kc, source);
  log.debug("kubernetes configuration loaded", { source, server: server.origin, namespace });
  return new KubeClient(loader, kc, server, namespace, cfg, log, source);
}
