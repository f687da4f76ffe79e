/**
 * The README's install and deployment instructions stay true: every deploy/
 * file it names exists, the vigild layer it shows is the one shipped, and the
 * release names and commands it gives are the release script's.
 */
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { TARGETS, artifactName } from "../../scripts/release.ts";
import { ROOT, obj, readText, yamlFile } from "./helpers.ts";

const readme = readText("README.md");

test("every deploy/ path the README names exists", () => {
  // (deploy/vigil-log-relay… is kubectl's name of the Deployment, not a path)
  const paths = new Set([...readme.matchAll(/\bdeploy\/(?!vigil-log-relay)[A-Za-z0-9_./*-]*[A-Za-z0-9_/*]/g)].map((m) => m[0]));
  expect(paths.size).toBeGreaterThan(10);
  const exists = (p: string): boolean => (p.includes("*") ? [...new Bun.Glob(p).scanSync({ cwd: ROOT })].length > 0 : existsSync(join(ROOT, p)));
  for (const p of paths) expect(exists(p) ? p : `${p} (missing)`).toBe(p);
});

test("the vigild layer in the README is the shipped one (services and check)", () => {
  const block = /```yaml\n(services:\n[\s\S]*?)```/.exec(readme)?.[1];
  expect(block).toBeDefined();
  const shown = obj(Bun.YAML.parse(block ?? ""), "README layer");
  const shipped = obj(yamlFile("deploy/vigild/layers/001-vigil-log-relay.yaml"), "layer");
  const withoutSummaries = (services: unknown): unknown =>
    Object.fromEntries(Object.entries(obj(services, "services")).map(([k, v]) => [k, { ...obj(v, k), summary: undefined }]));
  expect(withoutSummaries(shown.services)).toEqual(withoutSummaries(shipped.services));
  expect(shown.checks).toEqual(shipped.checks);
});

test("the README's release names, checksum check and build commands", () => {
  for (const t of TARGETS) expect(readme).toContain(`\`vigil-log-relay-VERSION-${t.name}\``);
  expect(readme).toContain(`sha256sum -c --ignore-missing SHA256SUMS    # ${artifactName(pkg.version, TARGETS[0]!)}: OK`);
  expect(readme).toContain("make release");
  expect(readme).toContain("podman build -f deploy/Containerfile");
  expect(readme).toContain("docker build -f deploy/Containerfile");
  expect(readme).toContain("kubectl apply -k deploy/kubernetes");
  expect(readme).toContain("<!-- metrics:begin -->");
  expect(readme).toContain("<!-- metrics:end -->");
});
