/**
 * deploy/systemd/: the relay's unit (user, KUBECONFIG, restart with backoff,
 * hardening, the state file in its StateDirectory), the oneshot health check
 * and its 30 s timer, and the env file. The ExecStart flags together with the
 * env file are accepted by the relay's own parser; every env file key is one
 * of the relay's variables. `systemd-analyze verify` checks the three units
 * where it is installed (skipped with a message otherwise).
 */
import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FLAGS } from "../../src/cli.ts";
import { ROOT, parseUnit, readText, relayConfig, splitCommand } from "./helpers.ts";

const UNIT = "deploy/systemd/vigil-log-relay.service";
const CHECK = "deploy/systemd/vigil-log-relay-healthcheck.service";
const TIMER = "deploy/systemd/vigil-log-relay-healthcheck.timer";
const ENV = "deploy/systemd/vigil-log-relay.env";

const unit = parseUnit(readText(UNIT));
const service = unit.get("Service") ?? new Map<string, string[]>();
const one = (key: string): string | undefined => service.get(key)?.at(-1);

/** The env file as systemd reads it: KEY=value lines, comments skipped. */
function envFile(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of parseUnit(readText(ENV)).get("") ?? []) out[k] = v.at(-1) ?? "";
  return out;
}

describe("vigil-log-relay.service", () => {
  test("runs as its own user with a kubeconfig and the example env file", () => {
    expect(one("User")).toBe("vigil-log-relay");
    expect(service.get("Environment")).toContain("KUBECONFIG=/etc/vigil-log-relay/kubeconfig");
    expect(one("EnvironmentFile")).toBe("-/etc/vigil-log-relay/vigil-log-relay.env");
    expect(unit.get("Install")?.get("WantedBy")).toEqual(["multi-user.target"]);
  });

  test("restarts on failure with a backoff from 5 s to 60 s", () => {
    expect(one("Restart")).toBe("on-failure");
    expect(one("RestartSec")).toBe("5s");
    expect(one("RestartSteps")).toBe("4");
    expect(one("RestartMaxDelaySec")).toBe("60s");
  });

  test("hardening: NoNewPrivileges, ProtectSystem=strict, ProtectHome, PrivateTmp, no capabilities", () => {
    expect(one("NoNewPrivileges")).toBe("yes");
    expect(one("ProtectSystem")).toBe("strict");
    expect(one("ProtectHome")).toBe("yes");
    expect(one("PrivateTmp")).toBe("yes");
    expect(one("CapabilityBoundingSet")).toBe("");
    // the JIT needs W+X pages: this one would kill the relay at start
    expect(service.has("MemoryDenyWriteExecute")).toBe(false);
  });

  test("ExecStart with the env file is accepted by the relay; --state-file is in the StateDirectory", () => {
    const [bin, ...argv] = splitCommand(one("ExecStart") ?? "");
    expect(bin).toBe("/usr/local/bin/vigil-log-relay");
    const cfg = relayConfig(argv, envFile());
    expect(cfg.source).toBe("kubernetes");
    expect(cfg.kubernetes.namespace).toBe("prod");
    expect(cfg.tcp).toMatchObject({ host: "10.4.5.6", port: 5170 });
    expect(one("StateDirectory")).toBe("vigil-log-relay");
    expect(cfg.kubernetes.stateFile).toBe(`/var/lib/${one("StateDirectory")}/state.json`);
  });
});

describe("vigil-log-relay.env", () => {
  test("every key is an environment variable of the relay (or KUBECONFIG)", () => {
    const known = new Set(FLAGS.flatMap((f) => (f.env ? [f.env] : [])));
    const keys = Object.keys(envFile());
    expect(keys.length).toBeGreaterThan(3);
    for (const k of keys) expect(known.has(k) || k === "KUBECONFIG" ? k : `${k} (not a relay variable)`).toBe(k);
  });
});

describe("the health check timer", () => {
  const check = parseUnit(readText(CHECK));
  const timer = parseUnit(readText(TIMER));

  test("a oneshot that curls /healthz on the relay's address and restarts it when that fails", () => {
    const svc = check.get("Service");
    expect(svc?.get("Type")).toEqual(["oneshot"]);
    const exec = svc?.get("ExecStart")?.[0] ?? "";
    expect(exec).toContain("curl -sfg --max-time 5");
    expect(exec).toContain("/healthz");
    expect(exec).toContain("systemctl try-restart vigil-log-relay.service");
    // reads HEALTHCHECK from the same env file as the relay; the default is the relay's
    expect(svc?.get("EnvironmentFile")).toEqual(["-/etc/vigil-log-relay/vigil-log-relay.env"]);
    expect(exec).toContain("$${HEALTHCHECK:-127.0.0.1:9091}");
    expect(FLAGS.find((f) => f.name === "healthcheck")?.defaultText).toBe("127.0.0.1:9091");
  });

  test("every 30 s, first 45 s after boot, activating the health check service", () => {
    const t = timer.get("Timer");
    expect(t?.get("OnUnitActiveSec")).toEqual(["30s"]);
    expect(t?.get("OnBootSec")).toEqual(["45s"]);
    expect(t?.get("AccuracySec")).toEqual(["1s"]);
    // no Unit=: a timer activates the service of its own name
    expect(t?.has("Unit")).toBe(false);
    expect(timer.get("Install")?.get("WantedBy")).toEqual(["timers.target"]);
  });
});

describe("systemd-analyze verify", () => {
  test("the three units verify (ExecStart pointed at an existing executable)", () => {
    const analyze = Bun.which("systemd-analyze");
    if (!analyze) {
      console.warn("systemd-analyze not installed: unit verification skipped");
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), "vigil-units-"));
    try {
      // verify insists that ExecStart's binary exists; the relay is not
      // installed here, so the unit names an executable that is.
      writeFileSync(join(dir, "vigil-log-relay.service"), readText(UNIT).replaceAll("/usr/local/bin/vigil-log-relay", process.execPath));
      copyFileSync(join(ROOT, CHECK), join(dir, "vigil-log-relay-healthcheck.service"));
      copyFileSync(join(ROOT, TIMER), join(dir, "vigil-log-relay-healthcheck.timer"));
      const units = ["vigil-log-relay.service", "vigil-log-relay-healthcheck.service", "vigil-log-relay-healthcheck.timer"].map((u) => join(dir, u));
      const r = Bun.spawnSync([analyze, "verify", "--man=no", ...units], { cwd: dir, stdout: "pipe", stderr: "pipe" });
      const version = Number(/systemd (\d+)/.exec(Bun.spawnSync([analyze, "--version"], { stdout: "pipe" }).stdout.toString())?.[1] ?? 0);
      // RestartSteps/RestartMaxDelaySec arrived in systemd 254: older ones warn and keep RestartSec.
      const tolerated = version < 254 ? /Unknown key '(RestartSteps|RestartMaxDelaySec)' in section \[Service\], ignoring\./ : /^$/;
      const complaints = `${r.stdout.toString()}${r.stderr.toString()}`
        .split("\n")
        .filter((l) => l.trim() !== "" && !tolerated.test(l));
      expect(complaints).toEqual([]);
      expect(r.exitCode).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
