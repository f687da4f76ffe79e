// Why the kubeconfig gave no credentials, in one line. client-node reports a
// failing exec plugin (aws eks get-token, gke-gcloud-auth-plugin, kubelogin)
// as the plugin's bare stderr, a spawn error or a JSON parse error, none of
// which names the plugin.
import type { KubeConfig } from "@kubernetes/client-node";
import { firstLineOf } from "../../startup-error.ts";

export class CredentialsError extends Error {}

/** The warning for credentials that fail after start-up (every request waits for them). */
export const CREDENTIALS_RETRY_WARNING =
  "getting credentials from the Kubernetes configuration failed, retrying (see error; kubectl with the same KUBECONFIG shows the same)";

/** The current user's exec plugin command, if it has one. */
function execCommand(kc: KubeConfig): string | undefined {
  const user: unknown = kc.getCurrentUser();
  if (user === null || typeof user !== "object") return undefined;
  const u = user as { exec?: unknown; authProvider?: unknown };
  const provider = u.authProvider as { config?: { exec?: unknown } } | undefined;
  const exec = u.exec ?? provider?.config?.exec;
  if (exec === null || typeof exec !== "object") return undefined;
  const command = (exec as { command?: unknown }).command;
  return typeof command === "string" ? command : "";
}

const FILE_ERRORS: Record<string, string> = { ENOENT: "no such file", EACCES: "permission denied", EISDIR: "a directory" };

export function credentialsError(e: unknown, kc: KubeConfig): CredentialsError {
  const message = e instanceof Error ? e.message : String(e);
  const err = e !== null && typeof e === "object" ? (e as { code?: unknown; path?: unknown; syscall?: unknown }) : {};
  const code = err.code;
  // A file the kubeconfig names (certificate-authority, client-certificate, client-key).
  const spawned = typeof err.syscall === "string" && err.syscall.startsWith("spawn");
  if (typeof err.path === "string" && !spawned && typeof code === "string" && code in FILE_ERRORS) {
    return new CredentialsError(`cannot read ${err.path}, named in the Kubernetes configuration: ${FILE_ERRORS[code]}`);
  }
  const command = execCommand(kc);
  if (command === undefined) return new CredentialsError(`cannot get credentials from the Kubernetes configuration: ${firstLineOf(message)}`);
  const plugin = `the exec credential plugin ${JSON.stringify(command)} of the Kubernetes configuration`;
  if (command === "") return new CredentialsError(`${plugin} names no command (users[].user.exec.command)`);
  if (code === "ENOENT") return new CredentialsError(`${plugin} was not found (install it, or give its full path in users[].user.exec.command)`);
  if (code === "EACCES") return new CredentialsError(`${plugin} cannot be run: permission denied`);
  if (e instanceof SyntaxError) return new CredentialsError(`${plugin} printed no ExecCredential JSON on stdout (${firstLineOf(message)})`);
  const said = firstLineOf(message);
  return new CredentialsError(`${plugin} failed: ${said === "" ? "it exited with an error and printed nothing on stderr" : said}`);
}
