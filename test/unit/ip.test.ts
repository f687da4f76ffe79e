import { expect, test } from "bun:test";
import { isIP } from "node:net";
import { ipVersion } from "../../src/http/ip.ts";

test("ipVersion agrees with node:net's isIP (which the relay no longer loads at start-up)", () => {
  const cases = [
    "1.2.3.4", "0.0.0.0", "255.255.255.255", "256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.4:80",
    "::", "::1", "2001:db8::1", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "2001:db8:::1", "::ffff:1.2.3.4",
    "fe80::1%eth0", "[::1]", "g::1", "", "localhost", "example.com", "api.cluster.local",
  ];
  for (const c of cases) expect([c, ipVersion(c)]).toEqual([c, isIP(c) as 0 | 4 | 6]);
});
