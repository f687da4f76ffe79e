// The parts of a Pod the relay needs, read defensively from the API's JSON.

export type ContainerKind = "init" | "regular" | "ephemeral";
export type ContainerStateName = "waiting" | "running" | "terminated" | "unknown";

export interface ContainerInfo {
  name: string;
  kind: ContainerKind;
  /** The current instance ("containerd://…"); absent before the first start. */
  containerID?: string;
  state: ContainerStateName;
  restartCount: number;
  /** The previous instance, when the container has restarted. */
  lastContainerID?: string;
}

export interface PodInfo {
  uid: string;
  name: string;
  namespace: string;
  phase: string;
  resourceVersion: string;
  deleting: boolean;
  nodeName?: string;
  containers: ContainerInfo[];
}

type Json = Record<string, unknown>;

function obj(v: unknown): Json {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Json) : {};
}
function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

function stateOf(state: Json): ContainerStateName {
  // A key with a null/undefined value (typed client objects) is not that state.
  if (state.running != null) return "running";
  if (state.terminated != null) return "terminated";
  if (state.waiting != null) return "waiting";
  return "unknown";
}

function containers(specList: unknown, statusList: unknown, kind: ContainerKind): ContainerInfo[] {
  const statuses = new Map<string, Json>();
  for (const s of arr(statusList)) {
    const name = str(obj(s).name);
    if (name) statuses.set(name, obj(s));
  }
  const out: ContainerInfo[] = [];
  for (const c of arr(specList)) {
    const name = str(obj(c).name);
    if (!name) continue;
    const st = statuses.get(name) ?? {};
    const id = str(st.containerID);
    const lastTerminated = obj(obj(st.lastState).terminated);
    const lastId = str(lastTerminated.containerID);
    out.push({
      name,
      kind,
      ...(id ? { containerID: id } : {}),
      state: stateOf(obj(st.state)),
      restartCount: typeof st.restartCount === "number" ? st.restartCount : 0,
      ...(lastId ? { lastContainerID: lastId } : {}),
    });
  }
  return out;
}

/** Reads a Pod object; null when it lacks a name or uid. */
export function podInfo(v: unknown): PodInfo | null {
  const p = obj(v);
  const meta = obj(p.metadata);
  const spec = obj(p.spec);
  const status = obj(p.status);
  const name = str(meta.name);
  const uid = str(meta.uid);
  if (!name || !uid) return null;
  const nodeName = str(spec.nodeName);
  return {
    uid,
    name,
    namespace: str(meta.namespace) ?? "",
    phase: str(status.phase) ?? "Unknown",
    resourceVersion: str(meta.resourceVersion) ?? "",
    deleting: typeof meta.deletionTimestamp === "string",
    ...(nodeName ? { nodeName } : {}),
    containers: [
      ...containers(spec.initContainers, status.initContainerStatuses, "init"),
      ...containers(spec.containers, status.containerStatuses, "regular"),
      ...containers(spec.ephemeralContainers, status.ephemeralContainerStatuses, "ephemeral"),
    ],
  };
}
