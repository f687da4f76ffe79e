// Pod discovery: list, then watch from the list's resourceVersion with
// bookmarks and a timeout; re-watch on a clean end, relist on 410 Expired,
// back off (0.8 s doubling to 30 s) on errors, restart a watch that has gone
// silent. Every state change goes to the listener; a relist reports the
// whole set so that vanished pods are noticed.
import type { Config } from "../../config.ts";
import type { Logger } from "../../log.ts";
import type { Metrics } from "../../metrics.ts";
import { Backoff, sleep } from "../../backoff.ts";
import { LineSplitter } from "../../pipeline/lines.ts";
import { StartupError } from "../../startup-error.ts";
import { HttpConnectError } from "../../http/errors.ts";
import type { RawResponse } from "../../http/raw-client.ts";
import type { KubeClient } from "./client.ts";
import { readStatus } from "./client.ts";
import { CREDENTIALS_RETRY_WARNING, CredentialsError } from "./credentials-error.ts";
import { podInfo, type PodInfo } from "./pod-model.ts";

export interface PodListener {
  /** The complete set after a (re)list. */
  resync(pods: PodInfo[]): void;
  /** A pod was added or changed. */
  upsert(pod: PodInfo): void;
  /** A pod was deleted. */
  remove(pod: PodInfo): void;
}

/** Server-side watch timeout; the watch is restarted when it ends. */
const WATCH_TIMEOUT_S = 290;
/** A watch with no event or bookmark for this long past its timeout is restarted. */
const SILENCE_MARGIN_MS = 30_000;

class WatchExpired extends Error {}
/** 401 on a list or watch (the credentials are reloaded before the next attempt). */
class Unauthorized extends Error {}
/** The watch was aborted because it went silent (counted and warned once, by the watchdog). */
class WatchSilent extends Error {}

/** The server's certificate failed verification: a configuration problem, not a passing one. */
function isCertificateRefused(e: unknown): e is HttpConnectError {
  return e instanceof HttpConnectError && e.kind === "tls" && /CERT|VERIFY|SELF_SIGNED|ALTNAME|HOSTNAME|ISSUER|EXPIRED/i.test(e.code ?? "");
}

export class PodWatcher {
  private resourceVersion = "";
  private readonly backoff = new Backoff(800, 30_000);
  /**
   * Last time the watch loop did anything: progress (a list, an event, a
   * bookmark), a new attempt, or a failure it is backing off from. An API
   * server that is down keeps the loop busy (and /healthz fresh, as in the
   * reference: restarting the relay would not bring the API back); a loop
   * that hangs stops moving it.
   */
  lastActivity = Date.now();
  established = false;
  /** No list has succeeded yet: a 401/403 now is a start-up error. */
  private startup = true;
  /** The list is current (the first list done, no 410 since). */
  private listed = false;
  /** A 401 was answered by reloading the credentials and retrying at once (once). */
  private reauthenticated = false;
  private readonly excluded: RegExp[];

  constructor(
    private readonly client: KubeClient,
    private readonly cfg: Config,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly listener: PodListener,
    private readonly onProgress: () => void,
  ) {
    this.excluded = cfg.kubernetes.excludePods;
  }

  private wanted(pod: PodInfo): boolean {
    return !this.excluded.some((r) => r.test(pod.name));
  }

  private basePath(): string {
    return `/api/v1/namespaces/${encodeURIComponent(this.client.namespace)}/pods`;
  }

  private selectorQuery(q: URLSearchParams): URLSearchParams {
    if (this.cfg.kubernetes.podSelector) q.set("labelSelector", this.cfg.kubernetes.podSelector);
    return q;
  }

  private progress(): void {
    this.lastActivity = Date.now();
    this.onProgress();
  }

  /** The start-up list (before the relay reports itself started); a 401/403 is a StartupError. */
  async firstList(signal: AbortSignal): Promise<void> {
    await this.list(signal);
  }

  /** Runs until the signal aborts. The first list's 401/403 is a StartupError. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      this.lastActivity = Date.now();
      try {
        if (!this.listed) await this.list(signal);
        await this.watch(signal);
        this.backoff.reset();
      } catch (e) {
        if (signal.aborted) return;
        if (e instanceof StartupError) throw e;
        this.established = false;
        if (e instanceof WatchExpired) {
          this.metrics.watchRelists.inc(1);
          this.log.info("watch history expired, relisting pods", { namespace: this.client.namespace });
          this.listed = false;
          continue;
        }
        if (e instanceof WatchSilent) continue;
        if (e instanceof Unauthorized && !this.reauthenticated) {
          // Refreshed credentials (a rotated token) get one immediate try.
          this.reauthenticated = true;
          continue;
        }
        this.lastActivity = Date.now();
        const delay = this.backoff.next();
        const fields = { namespace: this.client.namespace, error: e instanceof Error ? e.message : String(e), retry_in_ms: delay };
        if (e instanceof CredentialsError) this.log.warnLimited("credentials", CREDENTIALS_RETRY_WARNING, fields);
        else this.log.warnLimited("pod-watch", "pod list/watch failed, retrying; new and changed pods are not seen meanwhile (check that the API server is reachable and the Role grants list and watch on pods)", fields);
        this.metrics.watchRestarts.inc(1, { cause: "error" });
        await sleep(delay, signal);
      }
    }
  }

  /** A list request; credentials that cannot be had at start-up (a broken exec plugin) are a StartupError. */
  private async getList(path: string, signal: AbortSignal): Promise<RawResponse> {
    try {
      return await this.client.get(path, { signal, headersTimeoutMs: 60_000 });
    } catch (e) {
      if (this.startup && e instanceof CredentialsError) throw new StartupError(e.message);
      if (this.startup && isCertificateRefused(e)) {
        throw new StartupError(
          `cannot list pods in namespace "${this.client.namespace}": ${e.message} — check the certificate authority (and the server's address) in the Kubernetes configuration (${this.client.source})`,
        );
      }
      throw e;
    }
  }

  private async list(signal: AbortSignal): Promise<void> {
    const q = this.selectorQuery(new URLSearchParams());
    const path = `${this.basePath()}?${q}`;
    let res = await this.getList(path, signal);
    if (res.status === 401) {
      res.close();
      this.client.refreshCredentials();
      res = await this.getList(path, signal);
    }
    if (res.status !== 200) {
      const st = await readStatus(res);
      const msg = `cannot list pods in namespace "${this.client.namespace}": HTTP ${res.status}: ${st.message ?? ""}`;
      if (this.startup && (res.status === 401 || res.status === 403)) {
        throw new StartupError(
          `${msg}${res.status === 403 ? ` — the relay needs a Role in "${this.client.namespace}" granting get, list, watch on pods and get on pods/log, bound to its service account` : " — the credentials were refused"}`,
        );
      }
      if (res.status === 401) throw new Unauthorized(msg);
      throw new Error(msg);
    }
    const body: unknown = JSON.parse(await res.text(512 * 1024 * 1024));
    const b = body !== null && typeof body === "object" ? (body as Record<string, unknown>) : {};
    const meta = (b.metadata ?? {}) as Record<string, unknown>;
    this.resourceVersion = typeof meta.resourceVersion === "string" ? meta.resourceVersion : "";
    const pods: PodInfo[] = [];
    for (const item of Array.isArray(b.items) ? b.items : []) {
      const p = podInfo(item);
      if (p && this.wanted(p)) pods.push(p);
    }
    this.listener.resync(pods);
    this.listed = true;
    this.reauthenticated = false;
    this.progress();
    if (this.startup) {
      this.startup = false;
      this.log.info("watching pods", {
        namespace: this.client.namespace,
        server: this.client.server.origin,
        config: this.client.source,
        pods: pods.length,
      });
    } else {
      this.log.debug("pods listed", { namespace: this.client.namespace, pods: pods.length, resource_version: this.resourceVersion });
    }
  }

  private async watch(signal: AbortSignal): Promise<void> {
    const q = this.selectorQuery(
      new URLSearchParams({
        watch: "true",
        allowWatchBookmarks: "true",
        timeoutSeconds: String(WATCH_TIMEOUT_S),
        resourceVersion: this.resourceVersion,
      }),
    );
    const ac = new AbortController();
    const onStop = () => ac.abort();
    signal.addEventListener("abort", onStop, { once: true });
    let lastEvent = Date.now();
    let silent = false;
    const watchdog = setInterval(() => {
      if (!silent && Date.now() - lastEvent > WATCH_TIMEOUT_S * 1000 + SILENCE_MARGIN_MS) {
        silent = true;
        this.metrics.watchRestarts.inc(1, { cause: "silent" });
        // At most once per watch (one per WATCH_TIMEOUT_S + SILENCE_MARGIN_MS): limited by nature.
        this.log.warn("pod watch went silent, restarting it (if this repeats, check for a proxy or load balancer that holds idle connections)", {
          namespace: this.client.namespace,
        });
        ac.abort();
      }
    }, 5_000);
    try {
      const res = await this.client.get(`${this.basePath()}?${q}`, { signal: ac.signal, headersTimeoutMs: 60_000 });
      if (res.status !== 200) {
        const st = await readStatus(res);
        if (res.status === 410) throw new WatchExpired(st.message ?? "expired");
        if (res.status === 401) {
          this.client.refreshCredentials();
          throw new Unauthorized(`watch pods: HTTP 401: ${st.message ?? ""}`);
        }
        throw new Error(`watch pods: HTTP ${res.status}: ${st.message ?? ""}`);
      }
      this.established = true;
      this.metrics.sourceConnected.set(1);
      this.reauthenticated = false;
      this.progress();
      let expired: string | null = null;
      const splitter = new LineSplitter(64 * 1024 * 1024, () => {
        this.log.warnLimited("watch-oversized", "oversized watch event (over 64 MiB) skipped (a pod object that large is unusual: check the namespace's pods)", {
          namespace: this.client.namespace,
        });
      });
      const onLine = (buf: Buffer, start: number, end: number) => {
        if (expired !== null) return;
        lastEvent = Date.now();
        expired = this.event(buf.toString("utf8", start, end));
      };
      while (true) {
        const chunk = await res.read();
        if (chunk === null) break;
        splitter.push(chunk, onLine);
        if (expired !== null) {
          res.close();
          throw new WatchExpired(expired);
        }
      }
      splitter.finish(onLine);
      if (expired !== null) throw new WatchExpired(expired);
      if (silent) throw new WatchSilent("watch restarted after silence");
      this.metrics.watchRestarts.inc(1, { cause: "timeout" });
    } catch (e) {
      // The watchdog's abort surfaces as a read error: restart without counting it twice.
      if (silent && !signal.aborted) throw new WatchSilent("watch restarted after silence");
      throw e;
    } finally {
      clearInterval(watchdog);
      signal.removeEventListener("abort", onStop);
      this.established = false;
      this.metrics.sourceConnected.set(0);
    }
  }

  /** Handles one watch event line; returns the message of a 410 ERROR, else null. */
  private event(line: string): string | null {
    if (line.trim() === "") return null;
    let ev: { type?: unknown; object?: unknown };
    try {
      ev = JSON.parse(line) as { type?: unknown; object?: unknown };
    } catch {
      this.log.warnLimited("watch-json", "unparsable watch event skipped (check for a proxy between the relay and the API server that alters responses)", { namespace: this.client.namespace });
      return null;
    }
    const type = ev.type;
    const o = (ev.object ?? {}) as Record<string, unknown>;
    if (type === "ERROR") {
      const code = typeof o.code === "number" ? o.code : 0;
      const message = typeof o.message === "string" ? o.message : "watch error";
      if (code === 410 || o.reason === "Expired" || o.reason === "Gone") return message;
      throw new Error(`watch error event: ${message}`);
    }
    const rv = (o.metadata as Record<string, unknown> | undefined)?.resourceVersion;
    if (typeof rv === "string" && rv !== "") this.resourceVersion = rv;
    this.progress();
    if (type === "BOOKMARK") return null;
    const pod = podInfo(o);
    if (!pod) return null;
    if (type === "DELETED") this.listener.remove(pod);
    else if (type === "ADDED" || type === "MODIFIED") {
      if (this.wanted(pod)) this.listener.upsert(pod);
    }
    return null;
  }
}
