// PEM helpers: a CA file may hold a chain of several certificate blocks.
const BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Each certificate block of a PEM text, in order (none for undefined). */
export function pemBlocks(pem: string | undefined): string[] {
  if (!pem) return [];
  return pem.match(BLOCK) ?? [];
}
