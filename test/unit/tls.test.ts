import { describe, expect, test } from "bun:test";
import { pemBlocks } from "../../src/sources/tls.ts";

const block = (body: string) => `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----`;

describe("pemBlocks", () => {
  test("nothing for undefined, empty or text without blocks", () => {
    expect(pemBlocks(undefined)).toEqual([]);
    expect(pemBlocks("")).toEqual([]);
    expect(pemBlocks("hello, not a certificate\n")).toEqual([]);
    expect(pemBlocks("-----BEGIN CERTIFICATE-----\nMIIB\n")).toEqual([]);
  });

  test("one block", () => {
    expect(pemBlocks(block("MIIBAAA") + "\n")).toEqual([block("MIIBAAA")]);
  });

  test("several blocks in order, with junk, comments and other PEM types between", () => {
    const a = block("AAAA\nAAAA");
    const b = block("BBBB");
    const c = block("CCCC");
    const text = [
      "# Issuer: CN=Root",
      a,
      "subject=/CN=intermediate",
      "-----BEGIN PRIVATE KEY-----\nKKKK\n-----END PRIVATE KEY-----",
      b,
      "",
      "junk between",
      c,
      "trailing junk",
    ].join("\n");
    expect(pemBlocks(text)).toEqual([a, b, c]);
  });

  test("blocks back to back and CRLF line ends", () => {
    const a = "-----BEGIN CERTIFICATE-----\r\nAAAA\r\n-----END CERTIFICATE-----";
    const b = "-----BEGIN CERTIFICATE-----\r\nBBBB\r\n-----END CERTIFICATE-----";
    expect(pemBlocks(a + b + "\r\n")).toEqual([a, b]);
    expect(pemBlocks(`${a}\r\n${b}\r\n`)).toEqual([a, b]);
  });

  test("calling twice gives the same result (no regex state carried over)", () => {
    const text = block("X") + "\n" + block("Y");
    expect(pemBlocks(text)).toEqual(pemBlocks(text));
    expect(pemBlocks(text).length).toBe(2);
  });
});
