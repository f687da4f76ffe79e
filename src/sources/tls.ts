// PEM helpers: a CA file may hold a chain of several certificate blocks.

const BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Each certificate block of a PEM text, in order (none for undefined). */
export function pemBlocks(pem: string | undefined): string[] {
  if (!pem) return [];
  return pem.match(BLOCK) ?? [];
}

/**
 * CA blocks from --source-cacert / --source-proxy-cacert trusted in addition to
 * the runtime's default roots (its bundled ones and the system store), as the
 * reference's client adds a root certificate; undefined when none were given
 * (the defaults then apply by themselves).
 */
export function withDefaultRoots(blocks: string[]): string[] | undefined {
  if (blocks.length === 0) return undefined;
  return [...blocks, ...defaultRoots()];
}

/** Read once (~8 ms): the system store and the bundle do not change while the relay runs. */
let defaults: string[] | null = null;

function defaultRoots(): string[] {
  if (defaults === null) {
    // Loaded here, only when a CA file is given: importing node:tls costs every start a few ms.
    const tls = require("node:tls") as typeof import("node:tls");
    // "system" honours SSL_CERT_FILE / SSL_CERT_DIR; Bun's "default" list does not include them.
    const tlsApi = tls as { getCACertificates?: (type: string) => string[] };
    const system = tlsApi.getCACertificates?.("system") ?? [];
    defaults = [...new Set([...system, ...tls.rootCertificates, ...extraCaBlocks()])];
  }
  return defaults;
}

/** NODE_EXTRA_CA_CERTS, which the runtime adds to its defaults only when no CA list is given. */
function extraCaBlocks(): string[] {
  const path = process.env.NODE_EXTRA_CA_CERTS;
  if (!path) return [];
  try {
    const { readFileSync } = require("node:fs") as typeof import("node:fs");
    return pemBlocks(readFileSync(path, "utf8"));
  } catch {
    return [];
  }
}
