// Tests of the fake Kubernetes API server (test/fixtures/fake-kube): every client of it
// relies on these behaviours matching the real apiserver + kubelet.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { startFakeKube, type FakeKube } from "./fixtures/fake-kube/index.ts";

const TS_LINE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z) (.*)$/;

function api(kube: FakeKube, path: string, token: string | null = kube.token, init: RequestInit = {}): Promise<Response> {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  return fetch(`${kube.url}${path}`, { ...init, headers, tls: { ca: kube.caPem } });
}

async function json<T>(r: Response): Promise<T> {
  return (await r.json()) as T;
}

interface Status {
  kind: string;
  apiVersion: string;
  status: string;
  message: string;
  reason: string;
  code: number;
  details?: Record<string, unknown>;
}

/** Reads a streamed body line by line; await take(n) / end() instead of sleeping. */
class LineStream {
  readonly lines: string[] = [];
  /** text after the last newline, once the stream ended */
  rest = "";
  ended = false;
  error: Error | null = null;
  private partial = "";
  private wakers: (() => void)[] = [];
  private cancelBody: (() => Promise<void>) | null = null;

  constructor(readonly res: Response) {
    void this.run();
  }

  private async run(): Promise<void> {
    const reader = this.res.body ? this.res.body.getReader() : null;
    if (reader) {
      this.cancelBody = () => reader.cancel();
      const dec = new TextDecoder();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          this.partial += dec.decode(value, { stream: true });
          let i = this.partial.indexOf("\n");
          while (i >= 0) {
            this.lines.push(this.partial.slice(0, i));
            this.partial = this.partial.slice(i + 1);
            i = this.partial.indexOf("\n");
          }
          this.wake();
        }
      } catch (err) {
        this.error = err instanceof Error ? err : new Error(String(err));
      }
    }
    this.rest = this.partial;
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    const w = this.wakers;
    this.wakers = [];
    for (const f of w) f();
  }

  until(pred: () => boolean, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (pred()) resolve();
        else if (this.ended) reject(new Error(`stream ended before ${what}; lines: ${JSON.stringify(this.lines.slice(-5))} error: ${this.error?.message ?? "none"}`));
        else this.wakers.push(check);
      };
      check();
    });
  }

  async take(n: number): Promise<string[]> {
    await this.until(() => this.lines.length >= n, `${n} lines`);
    return this.lines.slice(0, n);
  }

  async end(): Promise<string[]> {
    await this.until(() => this.ended, "end");
    return this.lines;
  }

  cancel(): void {
    void this.cancelBody?.().catch(() => {});
  }
}

interface WatchEvent {
  type: string;
  object: {
    kind?: string;
    apiVersion?: string;
    metadata: { name?: string; resourceVersion: string; annotations?: Record<string, string> };
    spec?: { containers: unknown };
    status?: Record<string, unknown>;
    code?: number;
    reason?: string;
    message?: string;
  };
}

function events(s: LineStream): WatchEvent[] {
  return s.lines.map((l) => JSON.parse(l) as WatchEvent);
}

function texts(lines: string[]): string[] {
  return lines.map((l) => {
    const m = TS_LINE.exec(l);
    if (!m) throw new Error(`not a timestamped line: ${JSON.stringify(l)}`);
    return m[2]!;
  });
}

function stamps(lines: string[]): string[] {
  return lines.map((l) => TS_LINE.exec(l)![1]!);
}

// A minimal HTTP/1.1 client on Bun.connect: Bun's fetch runs at most 256 requests at once.
function rawGet(kube: FakeKube, path: string, token: string): Promise<{ status: number; body: string }> {
  const port = Number(new URL(kube.url).port);
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    let status = 0;
    let pos = -1;
    let contentLength = -1;
    const parts: Buffer[] = [];
    let finished = false;
    const finish = (): void => {
      finished = true;
      resolve({ status, body: Buffer.concat(parts).toString("utf8") });
    };
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      tls: { ca: kube.caPem },
      socket: {
        open(s) {
          s.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n\r\n`);
        },
        data(s, d) {
          buf = Buffer.concat([buf, d]);
          if (pos < 0) {
            const i = buf.indexOf("\r\n\r\n");
            if (i < 0) return;
            const head = buf.subarray(0, i).toString("latin1");
            status = Number(head.slice(9, 12));
            const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
            contentLength = cl ? Number(cl[1]) : -1;
            pos = i + 4;
          }
          if (contentLength >= 0) {
            if (buf.byteLength - pos >= contentLength) {
              parts.push(buf.subarray(pos, pos + contentLength));
              s.end();
              finish();
            }
            return;
          }
          for (;;) {
            const le = buf.indexOf("\r\n", pos);
            if (le < 0) return;
            const size = parseInt(buf.subarray(pos, le).toString("latin1"), 16);
            if (buf.byteLength < le + 2 + size + 2) return;
            if (size === 0) {
              s.end();
              finish();
              return;
            }
            parts.push(Buffer.from(buf.subarray(le + 2, le + 2 + size)));
            pos = le + 2 + size + 2;
          }
        },
        close() {
          if (!finished) reject(new Error(`connection closed before the response ended (${path})`));
        },
        error(_s, err) {
          if (!finished) reject(err);
        },
        connectError(_s, err) {
          reject(err);
        },
      },
    }).catch(reject);
  });
}

let kube: FakeKube;
const tmp = mkdtempSync(join(tmpdir(), "fake-kube-test-"));

beforeAll(async () => {
  kube = await startFakeKube({
    bookmarkIntervalMs: 50,
    tokens: [
      { token: "relay-token", user: "system:serviceaccount:prod:relay", namespaces: ["prod"], allow: ["list", "watch", "get", "log"], denyPods: ["secret-pod"] },
      { token: "lister-token", user: "system:serviceaccount:prod:lister", namespaces: ["prod"], allow: ["list"] },
    ],
  });
});

afterAll(async () => {
  await kube.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe("auth", () => {
  test("/version is public; gitVersion configurable", async () => {
    const r = await api(kube, "/version", null);
    expect(r.status).toBe(200);
    const v = await json<{ gitVersion: string; major: string; minor: string }>(r);
    expect(v).toMatchObject({ gitVersion: "v1.33.1", major: "1", minor: "33" });
    const k2 = await startFakeKube({ gitVersion: "v1.35.0", tls: false });
    try {
      expect(k2.url.startsWith("http://127.0.0.1:")).toBe(true);
      expect((await json<{ gitVersion: string }>(await api(k2, "/version"))).gitVersion).toBe("v1.35.0");
      // plain HTTP serves everything else the same
      k2.addPod({ namespace: "default", name: "p", containers: [{ name: "c" }] });
      const list = await json<{ items: unknown[] }>(await api(k2, "/api/v1/namespaces/default/pods"));
      expect(list.items.length).toBe(1);
    } finally {
      await k2.stop();
    }
  });

  test("401 Status without a token or with a wrong one", async () => {
    for (const token of [null, "nope"]) {
      const r = await api(kube, "/api/v1/namespaces/prod/pods", token);
      expect(r.status).toBe(401);
      expect(await r.json()).toEqual({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message: "Unauthorized", reason: "Unauthorized", code: 401 });
    }
  });

  test("403 Status bodies of namespaced RBAC", async () => {
    kube.addPod({ namespace: "other", name: "p", containers: [{ name: "c" }] });
    kube.addPod({ namespace: "prod", name: "secret-pod", containers: [{ name: "c" }] });
    const u = "system:serviceaccount:prod:relay";
    const cases: [string, string, string, Record<string, unknown>][] = [
      ["relay-token", "/api/v1/namespaces/other/pods", `pods is forbidden: User "${u}" cannot list resource "pods" in API group "" in the namespace "other"`, { kind: "pods" }],
      ["relay-token", "/api/v1/namespaces/other/pods?watch=true", `pods is forbidden: User "${u}" cannot watch resource "pods" in API group "" in the namespace "other"`, { kind: "pods" }],
      ["relay-token", "/api/v1/namespaces/other/pods/p", `pods "p" is forbidden: User "${u}" cannot get resource "pods" in API group "" in the namespace "other"`, { name: "p", kind: "pods" }],
      ["relay-token", "/api/v1/namespaces/other/pods/p/log", `pods "p" is forbidden: User "${u}" cannot get resource "pods/log" in API group "" in the namespace "other"`, { name: "p", kind: "pods" }],
      ["relay-token", "/api/v1/pods", `pods is forbidden: User "${u}" cannot list resource "pods" in API group "" at the cluster scope`, { kind: "pods" }],
      ["relay-token", "/api/v1/namespaces/prod/pods/secret-pod/log", `pods "secret-pod" is forbidden: User "${u}" cannot get resource "pods/log" in API group "" in the namespace "prod"`, { name: "secret-pod", kind: "pods" }],
      ["lister-token", "/api/v1/namespaces/prod/pods?watch=1", `pods is forbidden: User "system:serviceaccount:prod:lister" cannot watch resource "pods" in API group "" in the namespace "prod"`, { kind: "pods" }],
    ];
    for (const [token, path, message, details] of cases) {
      const r = await api(kube, path, token);
      expect(r.status).toBe(403);
      expect(await r.json()).toEqual({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason: "Forbidden", details, code: 403 });
    }
    expect((await api(kube, "/api/v1/namespaces/prod/pods", "relay-token")).status).toBe(200);
    expect((await api(kube, "/api/v1/namespaces/prod/pods", "lister-token")).status).toBe(200);
  });

  test("rotateToken: the old token gets 401, the new one works, token files are rewritten", async () => {
    kube.addToken({ token: "rot-1", user: "system:serviceaccount:rot:relay", namespaces: ["rot"], allow: ["list"] });
    const kc = join(tmp, "rot", "kubeconfig");
    const tf = join(tmp, "rot", "token");
    kube.writeKubeconfig(kc, { namespace: "rot", token: "rot-1", tokenFile: tf });
    expect(readFileSync(kc, "utf8")).toContain(`tokenFile: "${tf}"`);
    expect(readFileSync(tf, "utf8")).toBe("rot-1");
    const sa = kube.writeServiceAccount(join(tmp, "rot", "sa"), { namespace: "rot", token: "rot-1" });
    expect(readFileSync(join(sa.dir, "token"), "utf8")).toBe("rot-1");
    expect(readFileSync(join(sa.dir, "namespace"), "utf8")).toBe("rot");
    expect(sa.env.KUBERNETES_SERVICE_PORT).toBe(String(kube.port));

    expect((await api(kube, "/api/v1/namespaces/rot/pods", "rot-1")).status).toBe(200);
    const next = kube.rotateToken("rot-1");
    expect(next).not.toBe("rot-1");
    expect((await api(kube, "/api/v1/namespaces/rot/pods", "rot-1")).status).toBe(401);
    expect((await api(kube, "/api/v1/namespaces/rot/pods", next)).status).toBe(200);
    expect(readFileSync(tf, "utf8")).toBe(next);
    expect(readFileSync(join(sa.dir, "token"), "utf8")).toBe(next);
    expect(readFileSync(join(sa.dir, "ca.crt"), "utf8")).toBe(kube.caPem);
  });
});

describe("pods", () => {
  test("list: PodList shape, label and field selectors, limit/continue", async () => {
    const ns = "sel";
    const mk = (name: string, labels: Record<string, string>): void => {
      kube.addPod({ namespace: ns, name, labels, containers: [{ name: "c" }] });
    };
    mk("a", { app: "web", tier: "front" });
    mk("b", { app: "web", tier: "back" });
    mk("c", { app: "db" });
    mk("d", {});
    const names = async (sel: string): Promise<string[]> => {
      const r = await api(kube, `/api/v1/namespaces/${ns}/pods?labelSelector=${encodeURIComponent(sel)}`);
      expect(r.status).toBe(200);
      const l = await json<{ kind: string; apiVersion: string; metadata: { resourceVersion: string }; items: { metadata: { name: string } }[] }>(r);
      expect(l.kind).toBe("PodList");
      expect(l.apiVersion).toBe("v1");
      expect(l.metadata.resourceVersion).toBe(kube.resourceVersion);
      return l.items.map((i) => i.metadata.name);
    };
    expect(await names("")).toEqual(["a", "b", "c", "d"]);
    expect(await names("app=web")).toEqual(["a", "b"]);
    expect(await names("app==web,tier=back")).toEqual(["b"]);
    expect(await names("app!=web")).toEqual(["c", "d"]);
    expect(await names("app in (web, db)")).toEqual(["a", "b", "c"]);
    expect(await names("app notin (web)")).toEqual(["c", "d"]);
    expect(await names("tier")).toEqual(["a", "b"]);
    expect(await names("!tier")).toEqual(["c", "d"]);
    expect(await names("app in (web),!tier")).toEqual([]);
    const bad = await api(kube, `/api/v1/namespaces/${ns}/pods?labelSelector=${encodeURIComponent("app in web")}`);
    expect(bad.status).toBe(400);
    expect((await json<Status>(bad)).reason).toBe("BadRequest");

    const byField = await json<{ items: { metadata: { name: string } }[] }>(await api(kube, `/api/v1/namespaces/${ns}/pods?fieldSelector=metadata.name%3Dc`));
    expect(byField.items.map((i) => i.metadata.name)).toEqual(["c"]);

    const p1 = await json<{ metadata: { continue?: string; remainingItemCount?: number }; items: { metadata: { name: string } }[] }>(
      await api(kube, `/api/v1/namespaces/${ns}/pods?limit=3`),
    );
    expect(p1.items.map((i) => i.metadata.name)).toEqual(["a", "b", "c"]);
    expect(p1.metadata.remainingItemCount).toBe(1);
    const p2 = await json<{ metadata: { continue?: string }; items: { metadata: { name: string } }[] }>(
      await api(kube, `/api/v1/namespaces/${ns}/pods?limit=3&continue=${encodeURIComponent(p1.metadata.continue!)}`),
    );
    expect(p2.items.map((i) => i.metadata.name)).toEqual(["d"]);
    expect(p2.metadata.continue).toBeUndefined();
  });

  test("get: real-looking Pod JSON; 404 Status", async () => {
    kube.addPod({
      namespace: "shape",
      name: "p",
      labels: { app: "x" },
      initContainers: [{ name: "init" }],
      containers: [{ name: "app" }, { name: "side", state: "waiting" }],
    });
    const r = await api(kube, "/api/v1/namespaces/shape/pods/p");
    expect(r.status).toBe(200);
    const p = await json<{
      kind: string;
      apiVersion: string;
      metadata: { name: string; namespace: string; uid: string; resourceVersion: string; creationTimestamp: string; labels: Record<string, string> };
      spec: { containers: { name: string; image: string }[]; initContainers: { name: string }[]; nodeName: string };
      status: {
        phase: string;
        containerStatuses: { name: string; containerID?: string; restartCount: number; ready: boolean; started: boolean; state: Record<string, Record<string, unknown>>; lastState: Record<string, unknown> }[];
        initContainerStatuses: { name: string; state: { terminated?: { exitCode: number; reason: string } } }[];
      };
    }>(r);
    expect(p.kind).toBe("Pod");
    expect(p.apiVersion).toBe("v1");
    expect(p.metadata).toMatchObject({ name: "p", namespace: "shape", labels: { app: "x" } });
    expect(p.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(p.metadata.resourceVersion).toMatch(/^\d+$/);
    expect(p.metadata.creationTimestamp).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    expect(p.spec.containers.map((c) => c.name)).toEqual(["app", "side"]);
    expect(p.spec.initContainers.map((c) => c.name)).toEqual(["init"]);
    expect(p.spec.nodeName).toBe("fake-node-1");
    expect(p.status.phase).toBe("Running");
    const [app, side] = p.status.containerStatuses;
    expect(app!.containerID).toMatch(/^containerd:\/\/[0-9a-f]{64}$/);
    expect(app).toMatchObject({ name: "app", restartCount: 0, ready: true, started: true, lastState: {} });
    expect(typeof app!.state.running!.startedAt).toBe("string");
    expect(side!.containerID).toBeUndefined();
    expect(side!.state).toEqual({ waiting: { reason: "ContainerCreating" } });
    expect(p.status.initContainerStatuses[0]!.state.terminated).toMatchObject({ exitCode: 0, reason: "Completed" });

    const nf = await api(kube, "/api/v1/namespaces/shape/pods/nope");
    expect(nf.status).toBe(404);
    expect(await nf.json()).toEqual({
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: 'pods "nope" not found',
      reason: "NotFound",
      details: { name: "nope", kind: "pods" },
      code: 404,
    });
  });
});

describe("watch", () => {
  test("headers at once, replay after resourceVersion, live events, bookmarks, replay equals live", async () => {
    const ns = "w1";
    const rv0 = kube.resourceVersion;
    const res = await api(kube, `/api/v1/namespaces/${ns}/pods?watch=1&resourceVersion=${rv0}&allowWatchBookmarks=true&timeoutSeconds=60`);
    // fetch resolved with no event written: the apiserver flushes watch headers immediately
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    const s = new LineStream(res);
    kube.addPod({ namespace: ns, name: "p", labels: { app: "w" }, containers: [{ name: "c" }] });
    kube.addPod({ namespace: "elsewhere", name: "q", containers: [{ name: "c" }] });
    kube.restartContainer(ns, "p", "c");
    kube.deletePod(ns, "p");
    const nonBookmark = (): WatchEvent[] => events(s).filter((e) => e.type !== "BOOKMARK");
    await s.until(() => nonBookmark().length >= 6, "6 events");
    const live = nonBookmark();
    expect(live.map((e) => e.type)).toEqual(["ADDED", "MODIFIED", "MODIFIED", "MODIFIED", "MODIFIED", "DELETED"]);
    const rvs = live.map((e) => Number(e.object.metadata.resourceVersion));
    expect([...rvs].sort((a, b) => a - b)).toEqual(rvs);
    expect(new Set(rvs).size).toBe(rvs.length);
    expect(live.every((e) => e.object.kind === "Pod" && e.object.metadata.name === "p")).toBe(true);

    await s.until(() => events(s).some((e) => e.type === "BOOKMARK"), "a bookmark");
    const bm = events(s).find((e) => e.type === "BOOKMARK")!;
    expect(bm.object).toEqual({ kind: "Pod", apiVersion: "v1", metadata: { resourceVersion: bm.object.metadata.resourceVersion, creationTimestamp: null } as unknown as WatchEvent["object"]["metadata"], spec: { containers: null }, status: {} });
    expect(Number(bm.object.metadata.resourceVersion)).toBeGreaterThanOrEqual(rvs[rvs.length - 1]!);

    // a second watch from the same resourceVersion replays exactly the same events
    const replay = new LineStream(await api(kube, `/api/v1/namespaces/${ns}/pods?watch=true&resourceVersion=${rv0}`));
    await replay.take(6);
    expect(events(replay).map((e) => e.object.metadata.resourceVersion)).toEqual(live.map((e) => e.object.metadata.resourceVersion));
    expect(kube.activeWatches()).toBe(2);
    expect(kube.closeAllWatches()).toBe(2);
    await s.end();
    await replay.end();
    expect(s.error).toBeNull();
    expect(kube.activeWatches()).toBe(0);
  });

  test("without resourceVersion: synthetic ADDED for existing pods; label selector transitions", async () => {
    const ns = "w2";
    kube.addPod({ namespace: ns, name: "a", labels: { app: "web" }, containers: [{ name: "c" }] });
    kube.addPod({ namespace: ns, name: "b", labels: { app: "db" }, containers: [{ name: "c" }] });
    const s = new LineStream(await api(kube, `/api/v1/namespaces/${ns}/pods?watch=1&labelSelector=app%3Dweb`));
    await s.take(1);
    expect(events(s).map((e) => [e.type, e.object.metadata.name])).toEqual([["ADDED", "a"]]);
    kube.setLabels(ns, "a", { app: "other" }); // leaves the selection
    kube.setLabels(ns, "b", { app: "web" }); // enters it
    await s.take(3);
    expect(events(s).map((e) => [e.type, e.object.metadata.name])).toEqual([
      ["ADDED", "a"],
      ["DELETED", "a"],
      ["ADDED", "b"],
    ]);
    s.cancel();
    // streaming list: initial ADDED events, then a BOOKMARK marking their end
    const sl = new LineStream(
      await api(kube, `/api/v1/namespaces/${ns}/pods?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true`),
    );
    await sl.take(3);
    const ev = events(sl);
    expect(ev.slice(0, 2).map((e) => [e.type, e.object.metadata.name])).toEqual([
      ["ADDED", "a"],
      ["ADDED", "b"],
    ]);
    expect(ev[2]!.type).toBe("BOOKMARK");
    expect(ev[2]!.object.metadata.annotations).toEqual({ "k8s.io/initial-events-end": "true" });
    sl.cancel();
  });

  test("timeoutSeconds ends the watch cleanly", async () => {
    const s = new LineStream(await api(kube, `/api/v1/namespaces/w3/pods?watch=1&resourceVersion=${kube.resourceVersion}&timeoutSeconds=1`));
    const t0 = performance.now();
    await s.end();
    expect(s.error).toBeNull();
    expect(performance.now() - t0).toBeGreaterThan(800);
  });

  test("410 Expired ERROR event: old resourceVersion past the history, and after expireHistory()", async () => {
    const k = await startFakeKube({ historyLimit: 5 });
    try {
      const rv0 = Number(k.resourceVersion);
      for (let i = 0; i < 8; i++) k.addPod({ namespace: "x", name: `p${i}`, containers: [{ name: "c" }] });
      const oldest = Number(k.resourceVersion) - 5;
      const r = await api(k, `/api/v1/namespaces/x/pods?watch=1&resourceVersion=${rv0}`);
      expect(r.status).toBe(200);
      const lines = (await r.text()).split("\n").filter((l) => l !== "");
      expect(lines.length).toBe(1);
      expect(JSON.parse(lines[0]!)).toEqual({
        type: "ERROR",
        object: { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message: `too old resource version: ${rv0} (${oldest})`, reason: "Expired", code: 410 },
      });
      // still within the history: fine
      const ok = new LineStream(await api(k, `/api/v1/namespaces/x/pods?watch=1&resourceVersion=${oldest}`));
      await ok.take(5);
      expect(events(ok).every((e) => e.type === "ADDED")).toBe(true);

      const rv1 = k.resourceVersion;
      k.addPod({ namespace: "x", name: "late", containers: [{ name: "c" }] });
      k.expireHistory({ closeWatches: true });
      await ok.end();
      const e2 = JSON.parse((await (await api(k, `/api/v1/namespaces/x/pods?watch=1&resourceVersion=${rv1}`)).text()).trim()) as WatchEvent;
      expect(e2.type).toBe("ERROR");
      expect(e2.object.code).toBe(410);
      expect(e2.object.message).toBe(`too old resource version: ${rv1} (${k.resourceVersion})`);
    } finally {
      await k.stop();
    }
  });
});

describe("logs", () => {
  test("timestamps: 9 fractional digits, strictly increasing; follow streams new lines and ends at exit", async () => {
    const ns = "l1";
    kube.addPod({ namespace: ns, name: "p", restartPolicy: "Never", containers: [{ name: "c" }] });
    kube.appendLog(ns, "p", "c", ["one", "two"]);
    const plain = await (await api(kube, `/api/v1/namespaces/${ns}/pods/p/log`)).text();
    expect(plain).toBe("one\ntwo\n");

    const res = await api(kube, `/api/v1/namespaces/${ns}/pods/p/log?follow=true&timestamps=true`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain");
    const s = new LineStream(res);
    await s.take(2);
    kube.appendLog(ns, "p", "c", ["three", "four\nfive"], { stream: "stderr" });
    await s.take(5);
    kube.terminateContainer(ns, "p", "c", { exitCode: 0 });
    const lines = await s.end();
    expect(s.error).toBeNull();
    expect(texts(lines)).toEqual(["one", "two", "three", "four", "five"]);
    const ts = stamps(lines);
    expect([...ts].sort()).toEqual(ts);
    expect(new Set(ts).size).toBe(ts.length);
    // a terminated container still serves its log, and follow ends at once
    const after = await (await api(kube, `/api/v1/namespaces/${ns}/pods/p/log?follow=true`)).text();
    expect(after).toBe("one\ntwo\nthree\nfour\nfive\n");
    expect(kube.getPod(ns, "p")!.status.phase).toBe("Succeeded");
    kube.setPhase(ns, "p", "Unknown");
    expect(kube.getPod(ns, "p")!.status.phase).toBe("Unknown");
    kube.setPhase(ns, "p", null);
    expect(kube.getPod(ns, "p")!.status.phase).toBe("Succeeded");
  });

  test("sinceTime is cut to whole seconds; tailLines; limitBytes; identical timestamps; 422 for sinceSeconds+sinceTime", async () => {
    const ns = "l2";
    kube.addPod({ namespace: ns, name: "p", containers: [{ name: "c" }] });
    const at = (t: string, line: string): void => {
      kube.appendLog(ns, "p", "c", [line], { timestamp: `2026-03-19T10:00:${t}Z` });
    };
    at("00.500000000", "a");
    at("01.200000000", "b");
    at("01.700000000", "c");
    at("02.100000000", "d");
    const since = async (t: string): Promise<string[]> => {
      const r = await api(kube, `/api/v1/namespaces/${ns}/pods/p/log?timestamps=true&sinceTime=${encodeURIComponent(t)}`);
      expect(r.status).toBe(200);
      return texts((await r.text()).split("\n").filter((l) => l !== ""));
    };
    expect(await since("2026-03-19T10:00:01.900000000Z")).toEqual(["b", "c", "d"]);
    expect(await since("2026-03-19T10:00:01Z")).toEqual(["b", "c", "d"]);
    expect(await since("2026-03-19T10:00:02Z")).toEqual(["d"]);
    expect(await since("2026-03-19T11:00:01.5+01:00")).toEqual(["b", "c", "d"]);

    // runs of identical timestamps are kept as they are
    const same = "2026-03-19T10:00:03.000000000Z";
    kube.appendLog(ns, "p", "c", Array.from({ length: 300 }, (_, i) => `same-${i}`), { timestamp: same });
    const tail = (await (await api(kube, `/api/v1/namespaces/${ns}/pods/p/log?timestamps=true&tailLines=300`)).text()).split("\n").filter((l) => l);
    expect(tail.length).toBe(300);
    expect(new Set(stamps(tail))).toEqual(new Set([same]));
    expect(texts(tail)[299]).toBe("same-299");
    const t2 = await (await api(kube, `/api/v1/namespaces/${ns}/pods/p/log?tailLines=2`)).text();
    expect(t2).toBe("same-298\nsame-299\n");
    const lb = await (await api(kube, `/api/v1/namespaces/${ns}/pods/p/log?limitBytes=5`)).text();
    expect(lb).toBe("a\nb\nc");

    const both = await api(kube, `/api/v1/namespaces/${ns}/pods/p/log?sinceSeconds=10&sinceTime=2026-03-19T10:00:01Z`);
    expect(both.status).toBe(422);
    const st = await json<Status>(both);
    expect(st.reason).toBe("Invalid");
    expect(st.message).toBe('PodLogOptions "p" is invalid: : Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified');
    // sinceSeconds filters by the wall clock: these lines are from March
    expect(await (await api(kube, `/api/v1/namespaces/${ns}/pods/p/log?sinceSeconds=5`)).text()).toBe("");
  });

  test("container errors: must specify, not valid, waiting, previous, unscheduled (204), pod not found", async () => {
    const ns = "l3";
    kube.addPod({ namespace: ns, name: "multi", initContainers: [{ name: "init", state: "running" }], containers: [{ name: "a" }, { name: "b" }], ephemeralContainers: [{ name: "dbg" }] });
    kube.addPod({ namespace: ns, name: "wait", containers: [{ name: "c", state: "waiting" }] });
    kube.addPod({ namespace: ns, name: "pending", scheduled: false, containers: [{ name: "c" }] });
    const err = async (path: string): Promise<[number, string, string]> => {
      const r = await api(kube, `/api/v1/namespaces/${ns}/pods/${path}`);
      const s = await json<Status>(r);
      return [r.status, s.reason, s.message];
    };
    expect(await err("multi/log")).toEqual([400, "BadRequest", "a container name must be specified for pod multi, choose one of: [init a b dbg]"]);
    expect(await err("multi/log?container=zzz")).toEqual([400, "BadRequest", "container zzz is not valid for pod multi"]);
    expect(await err("wait/log")).toEqual([400, "BadRequest", 'container "c" in pod "wait" is waiting to start: ContainerCreating']);
    expect(await err("multi/log?container=a&previous=true")).toEqual([400, "BadRequest", 'previous terminated container "a" in pod "multi" not found']);
    expect(await err("nope/log")).toEqual([404, "NotFound", 'pods "nope" not found']);
    const un = await api(kube, `/api/v1/namespaces/${ns}/pods/pending/log`);
    expect(un.status).toBe(204);
    expect(await un.text()).toBe("");
    expect(kube.getPod(ns, "pending")!.status.phase).toBe("Pending");

    // init and ephemeral containers have logs of their own
    kube.appendLog(ns, "multi", "init", ["migrating"]);
    kube.terminateContainer(ns, "multi", "init");
    kube.appendLog(ns, "multi", "dbg", ["debugging"]);
    expect(await (await api(kube, `/api/v1/namespaces/${ns}/pods/multi/log?container=init`)).text()).toBe("migrating\n");
    expect(await (await api(kube, `/api/v1/namespaces/${ns}/pods/multi/log?container=dbg`)).text()).toBe("debugging\n");

    // an unscheduled pod gets scheduled and its container starts
    kube.schedulePod(ns, "pending");
    expect(await err("pending/log")).toEqual([400, "BadRequest", 'container "c" in pod "pending" is waiting to start: ContainerCreating']);
    kube.startContainer(ns, "pending", "c");
    kube.appendLog(ns, "pending", "c", ["up"]);
    expect(await (await api(kube, `/api/v1/namespaces/${ns}/pods/pending/log`)).text()).toBe("up\n");

    const k204 = await startFakeKube({ unscheduledLogStatus: 200 });
    try {
      k204.addPod({ namespace: "x", name: "p", scheduled: false, containers: [{ name: "c" }] });
      const r = await api(k204, "/api/v1/namespaces/x/pods/p/log?follow=true");
      expect(r.status).toBe(200);
      expect(await r.text()).toBe("");
    } finally {
      await k204.stop();
    }
  });

  test("stream= behind the feature gate: off-reject (422), off-ignore (combined), on (filtered)", async () => {
    const ns = "l4";
    kube.addPod({ namespace: ns, name: "p", containers: [{ name: "c" }] });
    kube.appendLog(ns, "p", "c", ["out-1"]);
    kube.appendLog(ns, "p", "c", ["err-1"], { stream: "stderr" });
    kube.appendLog(ns, "p", "c", ["out-2"]);
    const get = (q: string): Promise<Response> => api(kube, `/api/v1/namespaces/${ns}/pods/p/log?${q}`);
    try {
      kube.setStreamGate("off-reject");
      const r = await get("stream=Stdout");
      expect(r.status).toBe(422);
      expect(await r.json()).toEqual({
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message: 'PodLogOptions "p" is invalid: stream: Forbidden: may not be specified',
        reason: "Invalid",
        details: { name: "p", kind: "PodLogOptions", causes: [{ reason: "FieldValueForbidden", message: "Forbidden: may not be specified", field: "stream" }] },
        code: 422,
      });
      expect(await (await get("")).text()).toBe("out-1\nerr-1\nout-2\n");

      kube.setStreamGate("off-ignore");
      expect(await (await get("stream=Stdout")).text()).toBe("out-1\nerr-1\nout-2\n");
      expect(await (await get("stream=Stderr")).text()).toBe("out-1\nerr-1\nout-2\n");

      kube.setStreamGate("on");
      expect(await (await get("stream=Stdout")).text()).toBe("out-1\nout-2\n");
      expect(await (await get("stream=Stderr")).text()).toBe("err-1\n");
      expect(await (await get("stream=All")).text()).toBe("out-1\nerr-1\nout-2\n");
      const mixed = await get("stream=Stdout&tailLines=1");
      expect(mixed.status).toBe(422);
      expect((await json<Status>(mixed)).message).toBe('PodLogOptions "p" is invalid: : Forbidden: `tailLines` and specific `stream` are mutually exclusive for now');
    } finally {
      kube.setStreamGate("off-reject");
    }
  });

  test("restartContainer: the stream of the old instance ends, previous=true serves it, the new one starts empty", async () => {
    const ns = "l5";
    kube.addPod({ namespace: ns, name: "p", containers: [{ name: "c" }] });
    kube.appendLog(ns, "p", "c", ["old-1", "old-2"]);
    const oldId = kube.containerId(ns, "p", "c");
    const s = new LineStream(await api(kube, `/api/v1/namespaces/${ns}/pods/p/log?follow=true&timestamps=true`));
    await s.take(2);
    kube.restartContainer(ns, "p", "c", { exitCode: 137 });
    expect(texts(await s.end())).toEqual(["old-1", "old-2"]);
    expect(s.error).toBeNull();

    const pod = kube.getPod(ns, "p")!;
    const cs = pod.status.containerStatuses![0]!;
    expect(cs.restartCount).toBe(1);
    expect(cs.containerID).not.toBe(oldId);
    expect(cs.containerID).toMatch(/^containerd:\/\/[0-9a-f]{64}$/);
    expect(cs.lastState.terminated).toMatchObject({ exitCode: 137, reason: "Error", containerID: oldId! });
    expect(cs.state.running).toBeDefined();

    expect(await (await api(kube, `/api/v1/namespaces/${ns}/pods/p/log?previous=true`)).text()).toBe("old-1\nold-2\n");
    expect(await (await api(kube, `/api/v1/namespaces/${ns}/pods/p/log`)).text()).toBe("");
    const pending = api(kube, `/api/v1/namespaces/${ns}/pods/p/log?follow=true`);
    await kube.waitFor(() => kube.activeLogStreams({ namespace: ns }) === 1);
    kube.appendLog(ns, "p", "c", ["new-1"]);
    const s2 = new LineStream(await pending);
    expect(await s2.take(1)).toEqual(["new-1"]);
    s2.cancel();
    await kube.waitFor(() => kube.activeLogStreams({ namespace: ns }) === 0);

    // CrashLoopBackOff: waiting, and a plain request serves the last instance
    kube.waitContainer(ns, "p", "c");
    expect(kube.getPod(ns, "p")!.status.containerStatuses![0]!.state.waiting!.reason).toBe("CrashLoopBackOff");
    expect(await (await api(kube, `/api/v1/namespaces/${ns}/pods/p/log`)).text()).toBe("new-1\n");
  });

  test("closeAllLogStreams: clean EOF while the container keeps running; resume with sinceTime", async () => {
    const ns = "l6";
    kube.addPod({ namespace: ns, name: "p", containers: [{ name: "c" }] });
    kube.appendLog(ns, "p", "c", ["x1"]);
    const s = new LineStream(await api(kube, `/api/v1/namespaces/${ns}/pods/p/log?follow=true&timestamps=true`));
    await s.take(1);
    expect(kube.closeAllLogStreams({ namespace: ns })).toBe(1);
    await s.end();
    expect(s.error).toBeNull();
    expect(kube.getPod(ns, "p")!.status.containerStatuses![0]!.state.running).toBeDefined();
    kube.appendLog(ns, "p", "c", ["x2"]);
    const again = new LineStream(await api(kube, `/api/v1/namespaces/${ns}/pods/p/log?follow=true&timestamps=true&sinceTime=${encodeURIComponent(stamps(s.lines)[0]!)}`));
    expect(texts(await again.take(2))).toEqual(["x1", "x2"]);
    // resetAllLogStreams cuts the connection instead
    expect(kube.resetAllLogStreams({ namespace: ns })).toBe(1);
    await again.end();
    expect(again.error).not.toBeNull();
  });

  test("deletePod: follow streams end with EOF, watch sees DELETED, then 404", async () => {
    const ns = "l7";
    kube.addPod({ namespace: ns, name: "p", containers: [{ name: "c" }] });
    const w = new LineStream(await api(kube, `/api/v1/namespaces/${ns}/pods?watch=1&resourceVersion=${kube.resourceVersion}`));
    kube.appendLog(ns, "p", "c", ["last-1", "last-2"]);
    const s = new LineStream(await api(kube, `/api/v1/namespaces/${ns}/pods/p/log?follow=true`));
    kube.deletePod(ns, "p");
    expect(await s.end()).toEqual(["last-1", "last-2"]);
    expect(s.error).toBeNull();
    await w.until(() => events(w).some((e) => e.type === "DELETED"), "DELETED");
    const ev = events(w);
    expect(ev.map((e) => e.type)).toEqual(["MODIFIED", "MODIFIED", "DELETED"]);
    expect(ev[0]!.object.metadata).toHaveProperty("deletionTimestamp");
    w.cancel();
    expect((await api(kube, `/api/v1/namespaces/${ns}/pods/p/log`)).status).toBe(404);
    expect((await api(kube, `/api/v1/namespaces/${ns}/pods/p`)).status).toBe(404);
  });

  test("errors after the stream started, and log faults (text in a 200, Status, hang)", async () => {
    const ns = "l8";
    kube.addPod({ namespace: ns, name: "p", containers: [{ name: "c" }] });
    kube.appendLog(ns, "p", "c", ["fine"]);
    const s = new LineStream(await api(kube, `/api/v1/namespaces/${ns}/pods/p/log?follow=true&timestamps=true`));
    await s.take(1);
    expect(kube.injectLogError(ns, "p", "c", "unable to retrieve container logs for containerd://abc")).toBe(1);
    await s.end();
    expect(s.error).toBeNull();
    expect(texts(s.lines)).toEqual(["fine"]);
    expect(s.rest).toBe("unable to retrieve container logs for containerd://abc");

    kube.setLogFault(ns, "p", "c", { type: "text", text: "failed to try resolving symlinks in path \"/var/log/pods/x\": no such file\n" }, { times: 1 });
    const t = await api(kube, `/api/v1/namespaces/${ns}/pods/p/log?follow=true`);
    expect(t.status).toBe(200);
    expect(await t.text()).toStartWith("failed to try resolving symlinks");
    expect(await (await api(kube, `/api/v1/namespaces/${ns}/pods/p/log`)).text()).toBe("fine\n");

    kube.setLogFault(ns, "p", null, { type: "status", code: 403, message: "denied for this pod" }, { times: 1 });
    const f = await api(kube, `/api/v1/namespaces/${ns}/pods/p/log`);
    expect(f.status).toBe(403);
    expect((await json<Status>(f)).reason).toBe("Forbidden");

    kube.setLogFault(ns, "p", "c", { type: "hang" }, { times: 1 });
    const hung = api(kube, `/api/v1/namespaces/${ns}/pods/p/log?follow=true`);
    await kube.waitFor(() => kube.activeLogStreams({ namespace: ns }) === 1);
    // closing a request that got no answer yet: 200 with an empty body
    expect(kube.closeAllLogStreams({ namespace: ns })).toBe(1);
    const hr = await hung;
    expect(hr.status).toBe(200);
    expect(await hr.text()).toBe("");
  });

  test("generators number their lines; follow delivers every one exactly once", async () => {
    const ns = "l9";
    kube.addPod({ namespace: ns, name: "g", containers: [{ name: "c" }] });
    const gen = kube.startGenerator(ns, "g", "c", { linesPerSecond: 2000, prefix: "g", stderrEvery: 10 });
    await kube.waitFor(() => gen.emitted >= 50);
    const s = new LineStream(await api(kube, `/api/v1/namespaces/${ns}/pods/g/log?follow=true&timestamps=true`));
    await kube.waitFor(() => gen.emitted >= 400);
    gen.stop();
    kube.terminateContainer(ns, "g", "c");
    const lines = texts(await s.end());
    expect(lines.length).toBe(gen.seq);
    expect(lines).toEqual(Array.from({ length: gen.seq }, (_, i) => `g-${i + 1}`));
    const ts = stamps(await s.end());
    expect(new Set(ts).size).toBe(ts.length);
  });

  test("300 concurrent follow streams", async () => {
    const ns = "many";
    const N = 300;
    for (let i = 0; i < N; i++) kube.addPod({ namespace: ns, name: `p${i}`, labels: { app: "many" }, containers: [{ name: "c" }] });
    const done = Array.from({ length: N }, (_, i) => rawGet(kube, `/api/v1/namespaces/${ns}/pods/p${i}/log?follow=true&timestamps=true`, kube.token));
    await kube.waitFor(() => kube.activeLogStreams({ namespace: ns }) === N, { message: "300 streams open" });
    for (let i = 0; i < N; i++) kube.appendLog(ns, `p${i}`, "c", [`p${i}-1`, `p${i}-2`]);
    for (let i = 0; i < N; i++) kube.appendLog(ns, `p${i}`, "c", [`p${i}-3`]);
    for (let i = 0; i < N; i++) kube.terminateContainer(ns, `p${i}`, "c");
    const results = await Promise.all(done);
    for (let i = 0; i < N; i++) {
      expect(results[i]!.status).toBe(200);
      expect(texts(results[i]!.body.split("\n").filter((l) => l))).toEqual([`p${i}-1`, `p${i}-2`, `p${i}-3`]);
    }
    await kube.waitFor(() => kube.activeLogStreams({ namespace: ns }) === 0);
  });

  test("requests are recorded", async () => {
    const before = kube.requestCount("version");
    await api(kube, "/version?x=1");
    expect(kube.requestCount("version")).toBe(before + 1);
    const last = kube.requests[kube.requests.length - 1]!;
    expect(last).toMatchObject({ method: "GET", path: "/version", endpoint: "version", status: 200 });
    expect(last.query.get("x")).toBe("1");
  });
});

test("a kubeconfig written by the fake works with @kubernetes/client-node and Bun's fetch", async () => {
  kube.addPod({ namespace: "kc", name: "only", containers: [{ name: "c" }] });
  const path = kube.writeKubeconfig(join(tmp, "kc", "config"), { namespace: "kc" });
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  expect(kc.getContextObject(kc.getCurrentContext())?.namespace).toBe("kc");
  const cluster = kc.getCurrentCluster()!;
  expect(cluster.server).toBe(kube.url);
  const opts: { ca?: Buffer | string; headers?: Record<string, string> } = {};
  await kc.applyToHTTPSOptions(opts);
  expect(opts.ca).toBeDefined();
  const r = await fetch(`${cluster.server}/api/v1/namespaces/kc/pods`, {
    headers: opts.headers ?? {},
    tls: { ca: opts.ca!.toString() },
  });
  expect(r.status).toBe(200);
  const list = await json<{ items: { metadata: { name: string } }[] }>(r);
  expect(list.items.map((i) => i.metadata.name)).toEqual(["only"]);
});
