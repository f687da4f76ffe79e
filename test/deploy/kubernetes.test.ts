/**
 * deploy/kubernetes/ and deploy/vigild/: every manifest parses as YAML; the
 * Role grants exactly pods get/list/watch and pods/log get, and nothing is
 * cluster-wide; the Deployments' probes reach the relay's /readyz and /healthz
 * on the port it listens on (not loopback); the relay's args and env are
 * accepted by its own parser; Filebeat listens where the relay sends; the
 * vigild layer's relay command and check fit together; the Containerfiles copy
 * what exists. Where kubectl is installed, kustomize renders both variants.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { DEPLOY, ROOT, arr, obj, readText, relayConfig, splitCommand, str, yamlAll, yamlFile, type Obj } from "./helpers.ts";

function yamlFilesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...yamlFilesUnder(p));
    else if (/\.ya?ml$/.test(e)) out.push(relative(ROOT, p));
  }
  return out.sort();
}

const CLUSTER_WIDE = ["ClusterRole", "ClusterRoleBinding", "Namespace", "PersistentVolume", "CustomResourceDefinition"];

interface Container {
  name: string;
  image: string;
  args: string[];
  env: Record<string, string>;
  spec: Obj;
}

function deployment(rel: string): { spec: Obj; pod: Obj; containers: Container[] } {
  const d = obj(yamlFile(rel), rel);
  expect(d.kind).toBe("Deployment");
  const spec = obj(d.spec, "spec");
  const pod = obj(obj(spec.template, "template").spec, "template.spec");
  const containers = arr(pod.containers, "containers").map((c): Container => {
    const o = obj(c, "container");
    const env: Record<string, string> = {};
    for (const e of (o.env as unknown[] | undefined) ?? []) {
      const v = obj(e, "env entry");
      // valueFrom entries (downward API, secrets) have no literal value to check.
      if (v.value !== undefined) env[str(v.name, "env name")] = str(v.value, `env ${String(v.name)}`);
    }
    const args = ((o.args as unknown[] | undefined) ?? []).map((a) => str(a, "arg"));
    return { name: str(o.name, "name"), image: str(o.image, "image"), args, env, spec: o };
  });
  return { spec, pod, containers };
}

function container(cs: Container[], name: string): Container {
  const c = cs.find((x) => x.name === name);
  if (!c) throw new Error(`no container ${name}`);
  return c;
}

/** The container port a probe's httpGet names (by name or number). */
function probeTarget(c: Container, probe: string): { path: string; port: number } {
  const get = obj(obj(c.spec[probe], probe).httpGet, `${probe}.httpGet`);
  const ports = arr(c.spec.ports, "ports").map((p) => obj(p, "port"));
  const port = typeof get.port === "number" ? get.port : (ports.find((p) => p.name === get.port)?.containerPort as number | undefined);
  if (port === undefined) throw new Error(`${probe}: port ${String(get.port)} is not a container port`);
  return { path: str(get.path, "path"), port };
}

function expectLockedDown(c: Container): void {
  const sc = obj(c.spec.securityContext, `${c.name}.securityContext`);
  expect(sc.allowPrivilegeEscalation).toBe(false);
  expect(sc.readOnlyRootFilesystem).toBe(true);
  expect(obj(sc.capabilities, "capabilities").drop).toEqual(["ALL"]);
  expect(sc.privileged).toBeUndefined();
  const res = obj(c.spec.resources, `${c.name}.resources`);
  for (const k of ["requests", "limits"]) {
    const r = obj(res[k], k);
    expect(r.cpu).toBeDefined();
    expect(r.memory).toBeDefined();
  }
}

function expectNoHostAccess(pod: Obj): void {
  expect(obj(pod.securityContext, "pod securityContext").runAsNonRoot).toBe(true);
  for (const v of (pod.volumes as unknown[] | undefined) ?? []) expect(obj(v, "volume").hostPath).toBeUndefined();
  for (const k of ["hostNetwork", "hostPID", "hostIPC"]) expect(pod[k]).toBeUndefined();
}

describe("deploy/ YAML", () => {
  const files = yamlFilesUnder(DEPLOY);

  test("every file parses, and none is cluster-wide", () => {
    expect(files.length).toBeGreaterThanOrEqual(10);
    for (const f of files) {
      const docs = yamlAll(readText(f));
      expect(docs.length).toBeGreaterThan(0);
      for (const d of docs) {
        const kind = obj(d, f).kind;
        if (typeof kind === "string") expect(CLUSTER_WIDE).not.toContain(kind);
      }
    }
  });

  test("the Role: exactly pods get/list/watch and pods/log get", () => {
    const role = obj(yamlFile("deploy/kubernetes/rbac/role.yaml"), "role");
    expect(role.kind).toBe("Role");
    expect(role.rules).toEqual([
      { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
      { apiGroups: [""], resources: ["pods/log"], verbs: ["get"] },
    ]);
  });

  test("the RoleBinding binds that Role to the relay's ServiceAccount", () => {
    const sa = obj(yamlFile("deploy/kubernetes/rbac/serviceaccount.yaml"), "sa");
    const rb = obj(yamlFile("deploy/kubernetes/rbac/rolebinding.yaml"), "rb");
    expect(sa.kind).toBe("ServiceAccount");
    expect(rb.kind).toBe("RoleBinding");
    expect(rb.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "vigil-log-relay" });
    expect(rb.subjects).toEqual([{ kind: "ServiceAccount", name: obj(sa.metadata, "metadata").name }]);
    const k = obj(yamlFile("deploy/kubernetes/rbac/kustomization.yaml"), "k");
    expect(k.resources).toEqual(["serviceaccount.yaml", "role.yaml", "rolebinding.yaml"]);
  });
});

describe("deploy/kubernetes: the relay with a Filebeat sidecar", () => {
  const { spec, pod, containers } = deployment("deploy/kubernetes/deployment.yaml");
  const relay = container(containers, "relay");
  const filebeat = container(containers, "filebeat");

  test("one replica, no overlap, the relay's ServiceAccount, no host access", () => {
    expect(spec.replicas).toBe(1);
    expect(obj(spec.strategy, "strategy").type).toBe("Recreate");
    expect(pod.serviceAccountName).toBe("vigil-log-relay");
    expectNoHostAccess(pod);
  });

  test("the relay's args and env are accepted by its parser", () => {
    const cfg = relayConfig(relay.args, relay.env);
    expect(cfg.source).toBe("kubernetes");
    expect(cfg.kubernetes.stateFile).toBe("/var/lib/vigil-log-relay/state.json");
    // Its own pod (Filebeat prints every record) is never read back.
    expect(cfg.kubernetes.podSelector).toContain("app.kubernetes.io/name!=vigil-log-relay");
    const labels = obj(obj(obj(spec.template, "template").metadata, "metadata").labels, "labels");
    expect(labels["app.kubernetes.io/name"]).toBe("vigil-log-relay");
  });

  test("probes: /readyz and /healthz on the port the relay listens on, reachable from the kubelet", () => {
    const cfg = relayConfig(relay.args, relay.env);
    expect(cfg.health.host).toBe("0.0.0.0");
    expect(probeTarget(relay, "readinessProbe")).toEqual({ path: "/readyz", port: cfg.health.port });
    expect(probeTarget(relay, "livenessProbe")).toEqual({ path: "/healthz", port: cfg.health.port });
  });

  test("both containers: no privilege escalation, read-only root, capabilities dropped, resources set", () => {
    expectLockedDown(relay);
    expectLockedDown(filebeat);
    // the state file's directory is a volume, as the root filesystem is read-only
    const mounts = arr(relay.spec.volumeMounts, "mounts").map((m) => str(obj(m, "mount").mountPath, "mountPath"));
    expect(mounts).toContain("/var/lib/vigil-log-relay");
  });

  test("Filebeat's tcp input is where the relay sends, and decodes the JSON", () => {
    const cfg = relayConfig(relay.args, relay.env);
    const fb = obj(yamlFile("deploy/kubernetes/filebeat.yml"), "filebeat.yml");
    const inputs = arr(fb["filebeat.inputs"], "inputs").map((i) => obj(i, "input"));
    expect(inputs).toHaveLength(1);
    expect(inputs[0]?.type).toBe("tcp");
    expect(inputs[0]?.host).toBe(`${cfg.tcp.host}:${cfg.tcp.port}`);
    expect(cfg.tcp.port).toBe(5170);
    const processors = arr(fb.processors, "processors").map((p) => obj(p, "processor"));
    const decode = processors.find((p) => p.decode_json_fields !== undefined);
    expect(obj(decode?.decode_json_fields, "decode_json_fields").fields).toEqual(["message"]);
  });

  test("both Filebeat configs move namespace, pod and container to their ECS names (a top-level container string clashes with ECS)", () => {
    for (const file of ["deploy/kubernetes/filebeat.yml", "deploy/vigild/filebeat.yml"]) {
      const processors = arr(obj(yamlFile(file), file).processors, "processors").map((p) => obj(p, "processor"));
      const names = processors.map((p) => Object.keys(p)[0]);
      // decoded first, renamed after
      expect(names.indexOf("decode_json_fields")).toBeLessThan(names.indexOf("rename"));
      const rename = obj(processors.find((p) => p.rename !== undefined)?.rename, "rename");
      expect(arr(rename.fields, "fields")).toEqual([
        { from: "namespace", to: "kubernetes.namespace" },
        { from: "pod", to: "kubernetes.pod.name" },
        { from: "container", to: "kubernetes.container.name" },
      ]);
    }
  });

  test("the kustomization: the ConfigMap Filebeat mounts, the RBAC, the image of deploy/Containerfile", () => {
    const k = obj(yamlFile("deploy/kubernetes/kustomization.yaml"), "kustomization");
    expect(k.resources).toEqual(["rbac", "deployment.yaml"]);
    expect(typeof k.namespace).toBe("string");
    const gen = arr(k.configMapGenerator, "configMapGenerator").map((g) => obj(g, "generator"));
    const volumes = arr(pod.volumes, "volumes").map((v) => obj(v, "volume"));
    const cmVolume = volumes.find((v) => v.configMap !== undefined);
    expect(gen.map((g) => g.name)).toContain(obj(cmVolume?.configMap, "configMap").name);
    expect(gen[0]?.files).toEqual(["filebeat.yml"]);
    const images = arr(k.images, "images").map((i) => obj(i, "image"));
    expect(images.map((i) => i.name)).toEqual([relay.image]);
    expect(images[0]?.newTag).toBe(pkg.version);
  });
});

describe("deploy/vigild: vigild supervising the relay and Filebeat", () => {
  const layer = obj(yamlFile("deploy/vigild/layers/001-vigil-log-relay.yaml"), "layer");
  const services = obj(layer.services, "services");
  const relaySvc = obj(services.relay, "relay service");
  const { pod, containers } = deployment("deploy/vigild/kubernetes/deployment.yaml");
  const vigil = container(containers, "vigil");

  test("the layer: both services restart on failure; relay-alive restarts the relay", () => {
    expect(Object.keys(services).sort()).toEqual(["filebeat", "relay"]);
    for (const s of Object.values(services)) {
      const svc = obj(s, "service");
      expect(svc.startup).toBe("enabled");
      expect(svc["on-failure"]).toBe("restart");
    }
    expect(relaySvc["on-check-failure"]).toEqual({ "relay-alive": "restart" });
    expect(relaySvc["logs-forward"]).toBe("disabled");
    expect(obj(services.filebeat, "filebeat")["logs-forward"]).toBe("passthrough");
    const check = obj(obj(layer.checks, "checks")["relay-alive"], "relay-alive");
    expect(check.level).toBe("alive");
    expect(check.threshold).toBe(2);
  });

  test("the relay's command (with the Deployment's env) is accepted, and the check reaches its /healthz", () => {
    const [bin, ...argv] = splitCommand(str(relaySvc.command, "command"));
    expect(bin).toBe("/usr/local/bin/vigil-log-relay");
    const cfg = relayConfig(argv, vigil.env);
    expect(cfg.source).toBe("kubernetes");
    expect(cfg.kubernetes.podSelector).toContain("app.kubernetes.io/name!=vigil-log-relay");
    const url = new URL(str(obj(obj(obj(layer.checks, "checks")["relay-alive"], "check").http, "http").url, "url"));
    expect(url.pathname).toBe("/healthz");
    expect(Number(url.port)).toBe(cfg.health.port);
    // 0.0.0.0 serves 127.0.0.1 too, and the pod IP for the readiness probe
    expect(["0.0.0.0", url.hostname]).toContain(cfg.health.host);
    expect(probeTarget(vigil, "readinessProbe")).toEqual({ path: "/readyz", port: cfg.health.port });
    // Filebeat's input is where the relay sends
    const fb = obj(yamlFile("deploy/vigild/filebeat.yml"), "filebeat.yml");
    expect(obj(arr(fb["filebeat.inputs"], "inputs")[0], "input").host).toBe(`${cfg.tcp.host}:${cfg.tcp.port}`);
    expect(str(obj(services.filebeat, "filebeat").command, "command")).toContain("/usr/share/filebeat/vigil-filebeat.yml");
  });

  test("the Deployment: one replica, the shared RBAC, no host access, locked down", () => {
    expectNoHostAccess(pod);
    expectLockedDown(vigil);
    expect(pod.serviceAccountName).toBe("vigil-log-relay");
    const k = obj(yamlFile("deploy/vigild/kubernetes/kustomization.yaml"), "kustomization");
    expect(k.resources).toEqual(["../../kubernetes/rbac", "deployment.yaml"]);
    expect(arr(k.images, "images").map((i) => obj(i, "image").name)).toEqual([vigil.image]);
  });
});

describe("Containerfiles", () => {
  /** COPY sources that come from the build context (not --from=stage). */
  function contextCopies(text: string): string[] {
    const out: string[] = [];
    for (const line of text.split("\n")) {
      const m = /^COPY\s+(?!--from)(.+)$/.exec(line.trim());
      if (!m) continue;
      const words = splitCommand(m[1] as string).filter((w) => !w.startsWith("--"));
      out.push(...words.slice(0, -1));
    }
    return out;
  }

  test("deploy/Containerfile: pinned Bun from .bun-version, distroless cc, non-root, WORKDIR /tmp, ENTRYPOINT the relay", () => {
    const cf = readText("deploy/Containerfile");
    expect(cf).toMatch(/npm install [^\n]*"bun@\$\(cat \/src\/\.bun-version\)"/);
    expect(cf).toMatch(/^COPY \.bun-version /m);
    expect(cf).toMatch(/^ARG RUNTIME_IMAGE=gcr\.io\/distroless\/cc-debian12:nonroot$/m);
    const final = cf.slice(cf.lastIndexOf("\nFROM "));
    expect(final).toMatch(/^USER 65532:65532$/m);
    expect(final).toMatch(/^WORKDIR \/tmp$/m);
    expect(final).toMatch(/^ENTRYPOINT \["\/usr\/local\/bin\/vigil-log-relay"\]$/m);
    // the image's default health address is reachable from outside the container, and valid
    const env = /^ENV HEALTHCHECK=(\S+)$/m.exec(final)?.[1];
    expect(relayConfig(["--kubernetes"], { HEALTHCHECK: env ?? "" }).health.host).toBe("0.0.0.0");
    for (const src of contextCopies(cf)) expect(existsSync(join(ROOT, src))).toBe(true);
    // the build runs the same script as `make build`
    expect(cf).toContain("bun scripts/build.ts --out /out/vigil-log-relay");
  });

  test("deploy/vigild/Containerfile: vigild as entrypoint, this relay, the layer and filebeat.yml", () => {
    const cf = readText("deploy/vigild/Containerfile");
    expect(cf).toMatch(/^COPY --from=relay \/usr\/local\/bin\/vigil-log-relay \/usr\/local\/bin\/vigil-log-relay$/m);
    expect(cf).toMatch(/^ENTRYPOINT \["\/usr\/local\/bin\/vigild"\]$/m);
    expect(cf).toMatch(/^USER 1001$/m);
    expect(cf).toMatch(/^WORKDIR \/tmp$/m);
    expect(cf).toContain(`ARG RELAY_IMAGE=vigil-log-relay:${pkg.version}`);
    const copies = contextCopies(cf);
    expect(copies).toEqual(["deploy/vigild/filebeat.yml", "deploy/vigild/layers/"]);
    for (const src of copies) expect(existsSync(join(ROOT, src))).toBe(true);
  });

  test("the .dockerignore files keep every context COPY", () => {
    const ignore = readText("deploy/Containerfile.dockerignore");
    for (const src of contextCopies(readText("deploy/Containerfile"))) {
      expect(ignore).toContain(`!${src === "src" ? "src/" : src}`);
    }
  });
});

describe("kustomize", () => {
  const kubectl = Bun.which("kubectl");

  for (const dir of ["deploy/kubernetes", "deploy/vigild/kubernetes"]) {
    test(`kubectl kustomize ${dir}: every object namespaced into one namespace, the ConfigMap wired`, () => {
      if (!kubectl) {
        console.warn(`kubectl not installed: kustomize rendering of ${dir} skipped`);
        return;
      }
      const r = Bun.spawnSync([kubectl, "kustomize", join(ROOT, dir)], { stdout: "pipe", stderr: "pipe" });
      if (r.exitCode !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${r.stderr.toString()}`);
      const docs = yamlAll(r.stdout.toString()).map((d) => obj(d, "rendered"));
      const ns = str(obj(yamlFile(`${dir}/kustomization.yaml`), "k").namespace, "namespace");
      const kinds = docs.map((d) => d.kind).sort();
      expect(kinds).toEqual(dir.includes("vigild") ? ["Deployment", "Role", "RoleBinding", "ServiceAccount"] : ["ConfigMap", "Deployment", "Role", "RoleBinding", "ServiceAccount"]);
      for (const d of docs) expect(obj(d.metadata, "metadata").namespace).toBe(ns);
      const rb = docs.find((d) => d.kind === "RoleBinding");
      expect(rb?.subjects).toEqual([{ kind: "ServiceAccount", name: "vigil-log-relay", namespace: ns }]);
      const dep = docs.find((d) => d.kind === "Deployment");
      const podSpec = obj(obj(obj(dep?.spec, "spec").template, "template").spec, "pod");
      const cm = docs.find((d) => d.kind === "ConfigMap");
      if (cm) {
        const vol = arr(podSpec.volumes, "volumes").map((v) => obj(v, "v")).find((v) => v.configMap !== undefined);
        expect(obj(vol?.configMap, "configMap").name).toBe(obj(cm.metadata, "metadata").name);
      }
      for (const c of arr(podSpec.containers, "containers")) expect(str(obj(c, "c").image, "image")).toMatch(/[:@]/);
    });
  }
});
