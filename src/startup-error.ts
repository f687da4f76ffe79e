// A problem found while starting (listen address, kubeconfig, API refusal):
// reported as one line on stderr with exit code 2, like a bad flag.
export class StartupError extends Error {}

/**
 * The one line to print for an error message: its first non-blank line (a YAML
 * parser, for one, adds a code frame below its message).
 */
export function firstLineOf(message: string): string {
  for (const line of message.split("\n")) {
    const t = line.trim();
    if (t !== "") return t;
  }
  return "";
}
