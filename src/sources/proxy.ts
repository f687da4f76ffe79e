// Which proxy a source request goes through: --source-proxy, else HTTP(S)_PROXY;
// bypassed for hosts in --source-no-proxy, else NO_PROXY (hosts, ".suffix"
// domains, "*", IPv4 and IPv6 addresses and CIDRs). Decided here, so Bun's own
// environment handling never second-guesses it.
import { ipVersion } from "../http/ip.ts";
import type { ProxyConfig } from "../config.ts";
import type { ProxySettings, TlsSettings } from "../http/raw-client.ts";
import { pemBlocks, withDefaultRoots } from "./tls.ts";

type Env = Record<string, string | undefined>;

/** NAME, else name: the first one set and not blank (an empty HTTP_PROXY does not hide http_proxy). */
function envValue(env: Env, name: string): string | undefined {
  for (const n of [name, name.toLowerCase()]) {
    const v = env[n]?.trim();
    if (v) return v;
  }
  return undefined;
}

function parseIPv4(s: string): bigint | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  let v = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return null;
    v = (v << 8n) | BigInt(p);
  }
  return v;
}

function parseIPv6(s: string): bigint | null {
  if (ipVersion(s) !== 6) return null;
  let text = s;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = parseIPv4(v4[1] as string);
    if (n === null) return null;
    text = text.slice(0, -(v4[1] as string).length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const h = head ? head.split(":").filter((x) => x !== "") : [];
  const t = tail ? tail.split(":").filter((x) => x !== "") : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  if (groups.length !== 8) return null;
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(parseInt(g, 16));
  return v;
}

type Ip = { bits: number; value: bigint };

function parseIp(s: string): Ip | null {
  const v4 = parseIPv4(s);
  if (v4 !== null) return { bits: 32, value: v4 };
  const v6 = parseIPv6(s);
  if (v6 !== null) return { bits: 128, value: v6 };
  return null;
}

function stripBrackets(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

/** ::ffff:a.b.c.d is the IPv4 address a.b.c.d: compared as such. */
function unmap(ip: Ip): Ip {
  return ip.bits === 128 && ip.value >> 32n === 0xffffn ? { bits: 32, value: ip.value & 0xffffffffn } : ip;
}

/** True when `host` matches one NO_PROXY entry. */
export function matchesNoProxy(host: string, entry: string): boolean {
  const h = stripBrackets(host.toLowerCase()).replace(/\.$/, "");
  let e = entry.trim().toLowerCase();
  if (e === "") return false;
  if (e === "*") return true;
  if (e.includes("/")) {
    const [addr, lenText, extra] = e.split("/");
    let net = parseIp(stripBrackets(addr ?? ""));
    const hostIp = parseIp(h);
    if (!net || !hostIp || extra !== undefined || !/^\d{1,3}$/.test(lenText ?? "")) return false;
    let len = Number(lenText);
    if (len > net.bits) return false;
    // An IPv4-mapped network (::ffff:10.0.0.0/104) is the IPv4 one (10.0.0.0/8).
    const v4net = unmap(net);
    if (v4net.bits === 32 && len >= 96) {
      net = v4net;
      len -= 96;
    }
    // Mixed families never match (as in the reference); a mapped host counts as IPv4.
    const ip = unmap(hostIp);
    if (ip.bits !== net.bits) return false;
    const shift = BigInt(net.bits - len);
    return net.value >> shift === ip.value >> shift;
  }
  // "host:port" and "[v6]:port" entries: the port is ignored (bare IPv6 entries have several colons).
  if (e.startsWith("[")) {
    const close = e.indexOf("]");
    if (close > 0) e = e.slice(1, close);
  } else if ((e.match(/:/g) ?? []).length === 1) e = e.slice(0, e.indexOf(":"));
  e = e.replace(/\.$/, "");
  const ipEntry = parseIp(e);
  if (ipEntry) {
    const ip = parseIp(h);
    if (ip === null) return false;
    const a = unmap(ip);
    const b = unmap(ipEntry);
    return a.bits === b.bits && a.value === b.value;
  }
  if (e.startsWith("*.")) e = e.slice(1);
  if (e.startsWith(".")) return h.endsWith(e) || h === e.slice(1);
  return h === e || h.endsWith("." + e);
}

/** The proxy URL for a request to `target`, or undefined to connect directly. */
export function proxyFor(target: URL, cfg: ProxyConfig, env: Env = process.env): string | undefined {
  const proxy =
    cfg.url ??
    (target.protocol === "https:" ? envValue(env, "HTTPS_PROXY") : envValue(env, "HTTP_PROXY")) ??
    envValue(env, "ALL_PROXY");
  if (!proxy) return undefined;
  const noProxy =
    cfg.noProxy.length > 0
      ? cfg.noProxy
      : (envValue(env, "NO_PROXY") ?? "")
          .split(",")
          .map((s) => s.trim())
          .filter((s) => s !== "");
  if (noProxy.some((entry) => matchesNoProxy(target.hostname, entry))) return undefined;
  return proxy;
}

/** The proxy settings for a request to `target`, or undefined when it goes direct. */
export function proxyTo(target: URL, cfg: ProxyConfig): ProxySettings | undefined {
  const proxy = proxyFor(target, cfg);
  return proxy ? proxySettings(proxy, cfg) : undefined;
}

/** The raw client's settings for a proxy URL: an https proxy is verified with --source-proxy-cacert / --source-proxy-insecure. */
export function proxySettings(proxyUrl: string, cfg: ProxyConfig): ProxySettings {
  const url = new URL(proxyUrl);
  if (url.protocol !== "https:") return { url };
  const ca = withDefaultRoots(pemBlocks(cfg.caPem));
  return { url, tls: { ...(ca !== undefined ? { ca } : {}), rejectUnauthorized: !cfg.insecure } };
}

/**
 * The TLS settings for a target reached through the proxy. A TLS-intercepting
 * proxy re-signs the target's certificate with its own CA: the reference
 * trusts --source-proxy-cacert for every connection and --source-proxy-insecure
 * skips every verification; here both apply to connections through the proxy
 * only, never to direct ones.
 */
export function throughProxy(target: TlsSettings, cfg: ProxyConfig): TlsSettings {
  const proxyCa = pemBlocks(cfg.caPem);
  if (proxyCa.length === 0 && !cfg.insecure) return target;
  const out: TlsSettings = { ...target };
  if (cfg.insecure) out.rejectUnauthorized = false;
  if (proxyCa.length > 0) {
    const given = target.ca === undefined ? [] : Array.isArray(target.ca) ? target.ca : [target.ca];
    out.ca = given.length > 0 ? [...given, ...proxyCa] : withDefaultRoots(proxyCa);
  }
  return out;
}
