import { describe, expect, test } from "bun:test";
import { podInfo } from "../../src/sources/kubernetes/pod-model.ts";

/** A Pod as the API returns it (trimmed, but with the real field names and shapes). */
function realPod(): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: "api-7d9c6b5f4-x2kqz",
      namespace: "prod",
      uid: "0f6a8c1e-3b2d-4e5f-9a7b-1c2d3e4f5a6b",
      resourceVersion: "123456",
      labels: { app: "api" },
      creationTimestamp: "2026-03-19T10:00:00Z",
    },
    spec: {
      nodeName: "node-1",
      initContainers: [{ name: "migrate", image: "migrate:1" }],
      containers: [
        { name: "app", image: "api:1" },
        { name: "sidecar", image: "proxy:1" },
        { name: "never-started", image: "x:1" },
      ],
      ephemeralContainers: [{ name: "debugger-abcde", image: "busybox", targetContainerName: "app" }],
    },
    status: {
      phase: "Running",
      initContainerStatuses: [
        {
          name: "migrate",
          containerID: "containerd://init111",
          restartCount: 0,
          ready: true,
          state: { terminated: { exitCode: 0, reason: "Completed", containerID: "containerd://init111" } },
          lastState: {},
        },
      ],
      containerStatuses: [
        {
          name: "sidecar",
          containerID: "containerd://side222",
          restartCount: 0,
          ready: true,
          started: true,
          state: { running: { startedAt: "2026-03-19T10:00:05Z" } },
          lastState: {},
        },
        {
          name: "app",
          containerID: "containerd://app333",
          restartCount: 2,
          ready: true,
          started: true,
          state: { running: { startedAt: "2026-03-19T10:05:00Z" } },
          lastState: { terminated: { exitCode: 137, reason: "OOMKilled", containerID: "containerd://app222" } },
        },
        {
          name: "never-started",
          restartCount: 0,
          ready: false,
          state: { waiting: { reason: "ImagePullBackOff" } },
          lastState: {},
        },
      ],
      ephemeralContainerStatuses: [
        {
          name: "debugger-abcde",
          containerID: "containerd://dbg444",
          restartCount: 0,
          state: { running: { startedAt: "2026-03-19T10:06:00Z" } },
          lastState: {},
        },
      ],
    },
  };
}

describe("podInfo", () => {
  test("a realistic running pod: all container kinds, spec order, statuses matched by name", () => {
    expect(podInfo(realPod())).toEqual({
      uid: "0f6a8c1e-3b2d-4e5f-9a7b-1c2d3e4f5a6b",
      name: "api-7d9c6b5f4-x2kqz",
      namespace: "prod",
      phase: "Running",
      resourceVersion: "123456",
      deleting: false,
      nodeName: "node-1",
      containers: [
        { name: "migrate", kind: "init", containerID: "containerd://init111", state: "terminated", restartCount: 0 },
        {
          name: "app",
          kind: "regular",
          containerID: "containerd://app333",
          state: "running",
          restartCount: 2,
          lastContainerID: "containerd://app222",
        },
        { name: "sidecar", kind: "regular", containerID: "containerd://side222", state: "running", restartCount: 0 },
        { name: "never-started", kind: "regular", state: "waiting", restartCount: 0 },
        { name: "debugger-abcde", kind: "ephemeral", containerID: "containerd://dbg444", state: "running", restartCount: 0 },
      ],
    });
  });

  test("a pending pod with a running init container", () => {
    const p = realPod();
    p.status = {
      phase: "Pending",
      initContainerStatuses: [{ name: "migrate", containerID: "containerd://i1", restartCount: 0, state: { running: {} } }],
      containerStatuses: [{ name: "app", restartCount: 0, state: { waiting: { reason: "PodInitializing" } } }],
    };
    const info = podInfo(p);
    expect(info?.phase).toBe("Pending");
    expect(info?.containers.map((c) => [c.name, c.kind, c.state, c.containerID])).toEqual([
      ["migrate", "init", "running", "containerd://i1"],
      ["app", "regular", "waiting", undefined],
      ["sidecar", "regular", "unknown", undefined],
      ["never-started", "regular", "unknown", undefined],
      ["debugger-abcde", "ephemeral", "unknown", undefined],
    ]);
  });

  test("deletionTimestamp means deleting", () => {
    const p = realPod();
    (p.metadata as Record<string, unknown>).deletionTimestamp = "2026-03-19T11:00:00Z";
    (p.metadata as Record<string, unknown>).deletionGracePeriodSeconds = 30;
    expect(podInfo(p)?.deleting).toBe(true);
  });

  test("a pod without status (just created)", () => {
    const p = realPod();
    delete p.status;
    const info = podInfo(p);
    expect(info?.phase).toBe("Unknown");
    expect(info?.containers.length).toBe(5);
    for (const c of info?.containers ?? []) {
      expect(c.state).toBe("unknown");
      expect(c.restartCount).toBe(0);
      expect(c.containerID).toBeUndefined();
      expect(c.lastContainerID).toBeUndefined();
    }
  });

  test("a terminated container with a previous instance", () => {
    const p = realPod();
    p.spec = { containers: [{ name: "job" }] };
    p.status = {
      phase: "Failed",
      containerStatuses: [
        {
          name: "job",
          containerID: "containerd://new",
          restartCount: 3,
          state: { terminated: { exitCode: 1, containerID: "containerd://new" } },
          lastState: { terminated: { exitCode: 1, containerID: "containerd://old" } },
        },
      ],
    };
    expect(podInfo(p)?.containers).toEqual([
      { name: "job", kind: "regular", containerID: "containerd://new", state: "terminated", restartCount: 3, lastContainerID: "containerd://old" },
    ]);
    expect(podInfo(p)?.nodeName).toBeUndefined();
  });

  test("state keys with null values (typed client objects) are not that state", () => {
    const p = realPod();
    p.spec = { containers: [{ name: "a" }, { name: "b" }] };
    p.status = {
      phase: "Running",
      containerStatuses: [
        { name: "a", containerID: "containerd://a", restartCount: 0, state: { running: { startedAt: "x" }, terminated: null, waiting: null } },
        { name: "b", containerID: "containerd://b", restartCount: 0, state: { running: null, terminated: { exitCode: 0 }, waiting: undefined } },
      ],
    };
    expect(podInfo(p)?.containers.map((c) => c.state)).toEqual(["running", "terminated"]);
  });

  test("malformed input: null without name or uid", () => {
    for (const v of [null, undefined, 0, "pod", [], [realPod()], {}, { metadata: null }, { metadata: { name: "x" } }, { metadata: { uid: "u" } }]) {
      expect(podInfo(v)).toBeNull();
    }
    expect(podInfo({ metadata: { name: 5, uid: "u" } })).toBeNull();
    expect(podInfo({ metadata: { name: "", uid: "u" } })).toBeNull();
  });

  test("malformed input: safe defaults for everything else", () => {
    const info = podInfo({
      metadata: { name: "p", uid: "u", namespace: 7, resourceVersion: null, deletionTimestamp: 12 },
      spec: { containers: "app", initContainers: [null, 3, { name: 4 }, { image: "no-name" }, { name: "ok" }], ephemeralContainers: {} },
      status: {
        phase: ["Running"],
        initContainerStatuses: [null, { name: "ok", containerID: 5, restartCount: "2", state: "running", lastState: { terminated: "x" } }],
        containerStatuses: "nope",
      },
    });
    expect(info).toEqual({
      uid: "u",
      name: "p",
      namespace: "",
      phase: "Unknown",
      resourceVersion: "",
      deleting: false,
      containers: [{ name: "ok", kind: "init", state: "unknown", restartCount: 0 }],
    });
  });

  test("empty containerID strings are treated as absent", () => {
    const p = realPod();
    p.spec = { containers: [{ name: "a" }] };
    p.status = { phase: "Pending", containerStatuses: [{ name: "a", containerID: "", restartCount: 0, state: { waiting: {} }, lastState: { terminated: { containerID: "" } } }] };
    expect(podInfo(p)?.containers).toEqual([{ name: "a", kind: "regular", state: "waiting", restartCount: 0 }]);
  });
});
