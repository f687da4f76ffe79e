// IP literal checks without node:net: loading node:net (and node:tls, node:stream)
// costs the compiled binary several ms of start-up, and these are the only uses.

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** 4 or 6 for an IP literal (IPv6 without brackets), 0 otherwise; like node:net's isIP. */
export function ipVersion(s: string): 0 | 4 | 6 {
  if (IPV4.test(s)) return 4;
  if (!s.includes(":") || /[^0-9a-fA-F:.%]/.test(s.split("%")[0] ?? "")) return 0;
  // The WHATWG URL parser implements the IPv6 grammar (incl. an embedded IPv4 tail);
  // a zone id (fe80::1%eth0) is not part of it, so it is checked without one.
  try {
    new URL(`http://[${s.split("%")[0]}]/`);
    return 6;
  } catch {
    return 0;
  }
}
