// The bytes we send: the GET request head (origin form, or absolute form to an
// http proxy) and the CONNECT request for a tunnel through a proxy.
import { basicAuthorization } from "./userinfo.ts";

/** What the request head needs to know about a proxy. */
export interface ProxyHead {
  url: URL;
  headers?: Record<string, string>;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\r\n\0]/;
const encoder = new TextEncoder();

function headerLines(headers: Record<string, string> | undefined, skip: ReadonlySet<string>): string {
  let out = "";
  for (const [name, value] of Object.entries(headers ?? {})) {
    // reject rather than let a header smuggle in a second request
    if (!TOKEN.test(name)) throw new TypeError(`invalid header name ${JSON.stringify(name)}`);
    if (BAD_VALUE.test(value)) throw new TypeError(`invalid value for header ${name}`);
    if (skip.has(name.toLowerCase())) continue;
    out += `${name}: ${value}\r\n`;
  }
  return out;
}

function hasHeader(headers: Record<string, string> | undefined, lower: string): boolean {
  return Object.keys(headers ?? {}).some((k) => k.toLowerCase() === lower);
}

/** Proxy-Authorization (from proxy.headers, else Basic from the URL's user:pass) and the other proxy headers. */
function proxyHeaderLines(proxy: ProxyHead): string {
  let out = "";
  const auth = basicAuthorization(proxy.url);
  if (auth !== undefined && !hasHeader(proxy.headers, "proxy-authorization")) out += `Proxy-Authorization: ${auth}\r\n`;
  return out + headerLines(proxy.headers, new Set());
}

export function portOf(url: URL): number {
  if (url.port) return Number(url.port);
  return url.protocol === "https:" ? 443 : 80;
}

/** URL.hostname keeps IPv6 brackets; sockets want the bare address. */
export function bareHost(url: URL): string {
  const h = url.hostname;
  return h.startsWith("[") && h.endsWith("]") ? h.slice(1, -1) : h;
}

/** headers we set ourselves: one request per connection, no request body */
const OWN_HEADERS = new Set(["connection", "proxy-connection", "content-length", "transfer-encoding"]);

/**
 * `GET <path+query> HTTP/1.1` with Host (url.host: port only when not the
 * default, IPv6 in brackets), Accept-Encoding: identity (we do not decode
 * content codings), the caller's headers (theirs win for Host and
 * Accept-Encoding) and Connection: close. With `viaProxy` (an http target
 * through an http proxy): the absolute URI and the proxy's headers.
 * Throws TypeError for a header that would break the request.
 */
export function buildRequest(url: URL, headers: Record<string, string> | undefined, viaProxy?: ProxyHead): Uint8Array {
  const path = `${url.pathname || "/"}${url.search}`;
  const target = viaProxy ? `${url.protocol}//${url.host}${path}` : path;
  let head = `GET ${target} HTTP/1.1\r\n`;
  if (!hasHeader(headers, "host")) head += `Host: ${url.host}\r\n`;
  if (!hasHeader(headers, "accept-encoding")) head += "Accept-Encoding: identity\r\n";
  head += headerLines(headers, OWN_HEADERS);
  // one request per connection, so the end of a read-until-close body is the close
  head += "Connection: close\r\n";
  if (viaProxy) head += proxyHeaderLines(viaProxy);
  return encoder.encode(`${head}\r\n`);
}

/** `CONNECT host:port` (IPv6 in brackets) for a tunnel to an https target. */
export function buildConnect(url: URL, proxy: ProxyHead): Uint8Array {
  const authority = `${url.hostname}:${portOf(url)}`;
  return encoder.encode(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${proxyHeaderLines(proxy)}\r\n`);
}
