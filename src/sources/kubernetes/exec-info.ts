// KUBERNETES_EXEC_INFO, which kubectl gives every exec credential plugin and
// client-node does not: plugins read the apiVersion to answer in from it
// (aws eks get-token), whether they may prompt, and with provideClusterInfo
// the cluster they authenticate to.
import { readFileSync } from "node:fs";
import type { KubeConfig } from "@kubernetes/client-node";

interface ExecInfo {
  apiVersion: string;
  kind: "ExecCredential";
  spec: { interactive: false; cluster?: Record<string, string | boolean> };
}

/** The value for the current user's exec plugin, or undefined when it has none. */
export function execInfo(kc: KubeConfig): string | undefined {
  const exec: unknown = kc.getCurrentUser()?.exec;
  if (exec === null || typeof exec !== "object") return undefined;
  const e = exec as { apiVersion?: unknown; provideClusterInfo?: unknown };
  const info: ExecInfo = {
    apiVersion: typeof e.apiVersion === "string" && e.apiVersion !== "" ? e.apiVersion : "client.authentication.k8s.io/v1",
    kind: "ExecCredential",
    // The relay runs unattended: a plugin must never wait for a prompt.
    spec: { interactive: false },
  };
  const cluster = kc.getCurrentCluster();
  if (e.provideClusterInfo === true && cluster) {
    let caData = cluster.caData;
    if (caData === undefined && cluster.caFile !== undefined) {
      try {
        caData = readFileSync(cluster.caFile).toString("base64");
      } catch {
        // unreadable: reported when the TLS settings are derived
      }
    }
    info.spec.cluster = {
      server: cluster.server,
      ...(cluster.tlsServerName ? { "tls-server-name": cluster.tlsServerName } : {}),
      ...(cluster.skipTLSVerify ? { "insecure-skip-tls-verify": true } : {}),
      ...(caData ? { "certificate-authority-data": caData } : {}),
    };
  }
  return JSON.stringify(info);
}
