import { describe, expect, test } from "bun:test";
import type { ProxyConfig } from "../../src/config.ts";
import { matchesNoProxy, proxyFor } from "../../src/sources/proxy.ts";

/** As proxyFor sees a target: URL.hostname (IPv6 in brackets, IPv4-mapped in hex). */
const host = (url: string) => new URL(url).hostname;

describe("matchesNoProxy: names", () => {
  test("a plain host matches itself and its subdomains, case-insensitively", () => {
    expect(matchesNoProxy("example.com", "example.com")).toBe(true);
    expect(matchesNoProxy("api.example.com", "example.com")).toBe(true);
    expect(matchesNoProxy("API.Example.COM", "example.com")).toBe(true);
    expect(matchesNoProxy("api.example.com", " EXAMPLE.com ")).toBe(true);
    expect(matchesNoProxy("badexample.com", "example.com")).toBe(false);
    expect(matchesNoProxy("example.com.evil", "example.com")).toBe(false);
    expect(matchesNoProxy("example.org", "example.com")).toBe(false);
  });

  test(".suffix and *.suffix match the domain and its subdomains", () => {
    for (const e of [".example.com", "*.example.com"]) {
      expect(matchesNoProxy("a.example.com", e)).toBe(true);
      expect(matchesNoProxy("a.b.example.com", e)).toBe(true);
      expect(matchesNoProxy("example.com", e)).toBe(true);
      expect(matchesNoProxy("badexample.com", e)).toBe(false);
      expect(matchesNoProxy("example.com.au", e)).toBe(false);
    }
  });

  test('"*" matches everything; an empty entry nothing', () => {
    expect(matchesNoProxy("anything.at.all", "*")).toBe(true);
    expect(matchesNoProxy("10.1.2.3", " * ")).toBe(true);
    expect(matchesNoProxy("[::1]", "*")).toBe(true);
    expect(matchesNoProxy("example.com", "")).toBe(false);
    expect(matchesNoProxy("example.com", "  ")).toBe(false);
  });

  test("host:port entries match the host (the port is ignored)", () => {
    expect(matchesNoProxy("example.com", "example.com:8080")).toBe(true);
    expect(matchesNoProxy("a.example.com", "example.com:443")).toBe(true);
    expect(matchesNoProxy("10.0.0.1", "10.0.0.1:8080")).toBe(true);
    expect(matchesNoProxy("10.0.0.2", "10.0.0.1:8080")).toBe(false);
    expect(matchesNoProxy(host("http://[::1]:9/"), "[::1]:8080")).toBe(true);
    expect(matchesNoProxy(host("http://[::2]:9/"), "[::1]:8080")).toBe(false);
  });

  test("a trailing dot (fully qualified name) does not defeat a match", () => {
    expect(matchesNoProxy(host("http://api.example.com./"), "example.com")).toBe(true);
    expect(matchesNoProxy("api.example.com", "example.com.")).toBe(true);
    expect(matchesNoProxy("api.example.com", ".example.com.")).toBe(true);
  });

  test("names never match IP entries and vice versa", () => {
    expect(matchesNoProxy("localhost", "127.0.0.1")).toBe(false);
    expect(matchesNoProxy("localhost", "127.0.0.0/8")).toBe(false);
    expect(matchesNoProxy("127.0.0.1", "localhost")).toBe(false);
  });
});

describe("matchesNoProxy: IPv4", () => {
  test("exact addresses", () => {
    expect(matchesNoProxy("10.1.2.3", "10.1.2.3")).toBe(true);
    expect(matchesNoProxy("10.1.2.4", "10.1.2.3")).toBe(false);
    // Not a suffix match on the text.
    expect(matchesNoProxy("110.1.2.3", "10.1.2.3")).toBe(false);
    expect(matchesNoProxy("1.10.1.2.3", "10.1.2.3")).toBe(false);
  });

  test("CIDRs /8, /16, /24, /32, /0", () => {
    expect(matchesNoProxy("10.200.3.4", "10.0.0.0/8")).toBe(true);
    expect(matchesNoProxy("11.0.0.0", "10.0.0.0/8")).toBe(false);
    expect(matchesNoProxy("9.255.255.255", "10.0.0.0/8")).toBe(false);
    expect(matchesNoProxy("172.16.9.9", "172.16.0.0/12")).toBe(true);
    expect(matchesNoProxy("172.32.0.1", "172.16.0.0/12")).toBe(false);
    expect(matchesNoProxy("192.168.1.77", "192.168.1.0/24")).toBe(true);
    expect(matchesNoProxy("192.168.2.77", "192.168.1.0/24")).toBe(false);
    expect(matchesNoProxy("192.168.1.1", "192.168.1.1/32")).toBe(true);
    expect(matchesNoProxy("192.168.1.2", "192.168.1.1/32")).toBe(false);
    expect(matchesNoProxy("8.8.8.8", "0.0.0.0/0")).toBe(true);
    // A network written with host bits set still means the network.
    expect(matchesNoProxy("10.9.9.9", "10.1.2.3/8")).toBe(true);
  });

  test("malformed CIDRs match nothing", () => {
    for (const e of ["10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/8/8", "10.0.0.0/x", "10.0.0/8", "256.0.0.0/8", "example.com/8"]) {
      expect([e, matchesNoProxy("10.1.2.3", e)]).toEqual([e, false]);
    }
  });

  test("an IPv4 CIDR does not match IPv6 hosts (except IPv4-mapped ones)", () => {
    expect(matchesNoProxy("[::1]", "0.0.0.0/0")).toBe(false);
    expect(matchesNoProxy("[fd00::1]", "10.0.0.0/8")).toBe(false);
  });
});

describe("matchesNoProxy: IPv6", () => {
  test("exact addresses, with or without brackets, in any spelling", () => {
    expect(matchesNoProxy(host("http://[::1]/"), "::1")).toBe(true);
    expect(matchesNoProxy(host("http://[::1]/"), "[::1]")).toBe(true);
    expect(matchesNoProxy("::1", "[::1]")).toBe(true);
    expect(matchesNoProxy("[0:0:0:0:0:0:0:1]", "::1")).toBe(true);
    expect(matchesNoProxy("[::2]", "::1")).toBe(false);
    expect(matchesNoProxy("[2001:DB8::1]", "2001:db8:0::1")).toBe(true);
    expect(matchesNoProxy("[2001:db8::1]", "2001:db8::")).toBe(false);
  });

  test("CIDRs", () => {
    expect(matchesNoProxy("[fd00::1]", "fd00::/8")).toBe(true);
    expect(matchesNoProxy("[fdff:1:2::3]", "fd00::/8")).toBe(true);
    expect(matchesNoProxy("[fe00::1]", "fd00::/8")).toBe(false);
    expect(matchesNoProxy("[fc00::1]", "fd00::/8")).toBe(false);
    expect(matchesNoProxy("[2001:db8:1::5]", "2001:db8::/32")).toBe(true);
    expect(matchesNoProxy("[2001:db9::5]", "2001:db8::/32")).toBe(false);
    expect(matchesNoProxy("[::1]", "::1/128")).toBe(true);
    expect(matchesNoProxy("[::2]", "::1/128")).toBe(false);
    expect(matchesNoProxy("[2001:db8::1]", "::/0")).toBe(true);
    expect(matchesNoProxy("[fd00::1]", "[fd00::]/8")).toBe(true);
    expect(matchesNoProxy("[fd00::1]", "fd00::/129")).toBe(false);
    expect(matchesNoProxy("10.0.0.1", "::/0")).toBe(false);
  });

  test("IPv4-mapped addresses compare as their IPv4 address", () => {
    const mapped = host("http://[::ffff:10.1.2.3]/"); // "[::ffff:a01:203]"
    expect(matchesNoProxy(mapped, "10.1.2.3")).toBe(true);
    expect(matchesNoProxy(mapped, "10.0.0.0/8")).toBe(true);
    expect(matchesNoProxy(mapped, "11.0.0.0/8")).toBe(false);
    expect(matchesNoProxy(mapped, "::ffff:10.1.2.3")).toBe(true);
    expect(matchesNoProxy(mapped, "::ffff:0:0/96")).toBe(true);
    expect(matchesNoProxy("[::ffff:10.1.2.3]", "::ffff:a01:203")).toBe(true);
    expect(matchesNoProxy("10.1.2.3", "::ffff:10.1.2.3")).toBe(true);
    expect(matchesNoProxy("10.1.2.3", "::ffff:0:0/96")).toBe(true);
    expect(matchesNoProxy("10.1.2.3", "::ffff:10.0.0.0/104")).toBe(true);
    expect(matchesNoProxy("11.1.2.3", "::ffff:10.0.0.0/104")).toBe(false);
    expect(matchesNoProxy("[::10.1.2.3]", "10.1.2.3")).toBe(false);
  });
});

describe("proxyFor", () => {
  const cfg = (over: Partial<ProxyConfig> = {}): ProxyConfig => ({ insecure: false, noProxy: [], ...over });
  const http = new URL("http://logs.example.com/v1/logs");
  const https = new URL("https://logs.example.com/v1/logs");

  test("no proxy anywhere: direct", () => {
    expect(proxyFor(http, cfg(), {})).toBeUndefined();
    expect(proxyFor(https, cfg(), {})).toBeUndefined();
  });

  test("--source-proxy wins over the environment", () => {
    const env = { HTTP_PROXY: "http://env:1", HTTPS_PROXY: "http://env:2", ALL_PROXY: "http://env:3" };
    expect(proxyFor(http, cfg({ url: "http://flag:8" }), env)).toBe("http://flag:8");
    expect(proxyFor(https, cfg({ url: "http://flag:8" }), env)).toBe("http://flag:8");
  });

  test("HTTP_PROXY for http, HTTPS_PROXY for https", () => {
    const env = { HTTP_PROXY: "http://p-http:1", HTTPS_PROXY: "http://p-https:2" };
    expect(proxyFor(http, cfg(), env)).toBe("http://p-http:1");
    expect(proxyFor(https, cfg(), env)).toBe("http://p-https:2");
    expect(proxyFor(https, cfg(), { HTTP_PROXY: "http://p-http:1" })).toBeUndefined();
    expect(proxyFor(http, cfg(), { HTTPS_PROXY: "http://p-https:2" })).toBeUndefined();
  });

  test("lowercase variants, uppercase first; blank values do not count", () => {
    expect(proxyFor(http, cfg(), { http_proxy: "http://lower:1" })).toBe("http://lower:1");
    expect(proxyFor(https, cfg(), { https_proxy: "http://lower:2" })).toBe("http://lower:2");
    expect(proxyFor(http, cfg(), { HTTP_PROXY: "http://upper:1", http_proxy: "http://lower:1" })).toBe("http://upper:1");
    expect(proxyFor(http, cfg(), { HTTP_PROXY: "", http_proxy: "http://lower:1" })).toBe("http://lower:1");
    expect(proxyFor(http, cfg(), { HTTP_PROXY: "  ", ALL_PROXY: "http://all:1" })).toBe("http://all:1");
    expect(proxyFor(http, cfg(), { HTTP_PROXY: " http://trim:1 " })).toBe("http://trim:1");
  });

  test("ALL_PROXY / all_proxy as the fallback", () => {
    expect(proxyFor(http, cfg(), { ALL_PROXY: "http://all:1" })).toBe("http://all:1");
    expect(proxyFor(https, cfg(), { all_proxy: "http://all:2" })).toBe("http://all:2");
    expect(proxyFor(https, cfg(), { ALL_PROXY: "http://all:1", HTTPS_PROXY: "http://s:1" })).toBe("http://s:1");
  });

  test("--source-no-proxy bypasses, and then NO_PROXY is ignored", () => {
    const env = { HTTPS_PROXY: "http://p:1", NO_PROXY: "example.com" };
    expect(proxyFor(https, cfg({ noProxy: ["other.org"] }), env)).toBe("http://p:1");
    expect(proxyFor(https, cfg({ noProxy: ["other.org", ".example.com"] }), env)).toBeUndefined();
    expect(proxyFor(https, cfg({ url: "http://flag:1", noProxy: ["logs.example.com"] }), {})).toBeUndefined();
  });

  test("NO_PROXY / no_proxy apply when --source-no-proxy is empty", () => {
    expect(proxyFor(https, cfg(), { HTTPS_PROXY: "http://p:1", NO_PROXY: "foo, example.com ,bar" })).toBeUndefined();
    expect(proxyFor(https, cfg(), { HTTPS_PROXY: "http://p:1", no_proxy: "example.com" })).toBeUndefined();
    expect(proxyFor(https, cfg(), { HTTPS_PROXY: "http://p:1", NO_PROXY: "foo,,bar" })).toBe("http://p:1");
    expect(proxyFor(https, cfg({ url: "http://flag:1" }), { NO_PROXY: "*" })).toBeUndefined();
  });

  test("IP targets against CIDR entries", () => {
    const env = { HTTP_PROXY: "http://p:1", NO_PROXY: "10.0.0.0/8,fd00::/8" };
    expect(proxyFor(new URL("http://10.3.2.1:8080/"), cfg(), env)).toBeUndefined();
    expect(proxyFor(new URL("http://11.3.2.1:8080/"), cfg(), env)).toBe("http://p:1");
    expect(proxyFor(new URL("http://[fd00::5]:8080/"), cfg(), env)).toBeUndefined();
    expect(proxyFor(new URL("http://[::ffff:10.9.9.9]/"), cfg(), env)).toBeUndefined();
    expect(proxyFor(new URL("http://[fe80::1]/"), cfg(), env)).toBe("http://p:1");
  });
});
