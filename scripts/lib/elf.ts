// Just enough ELF to tell what a binary was built for: its machine and its
// program interpreter (the dynamic loader names the libc: ld-linux-* is glibc,
// ld-musl-* is musl). The release script uses it so that a binary can never be
// shipped under another target's name, and to find the host's own target.
import { closeSync, openSync, readSync } from "node:fs";

export interface ElfInfo {
  arch: "x64" | "arm64" | "other";
  /** The PT_INTERP path, e.g. /lib64/ld-linux-x86-64.so.2; null for a static binary. */
  interpreter: string | null;
  libc: "glibc" | "musl" | "none";
}

const EM_X86_64 = 62;
const EM_AARCH64 = 183;
const PT_INTERP = 3;

function readAt(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  const n = readSync(fd, buf, 0, length, offset);
  return buf.subarray(0, n);
}

/** Reads a 64-bit little-endian ELF header and its PT_INTERP; throws on anything else. */
export function readElf(path: string): ElfInfo {
  const fd = openSync(path, "r");
  try {
    const h = readAt(fd, 0, 64);
    if (h.length < 64 || h.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${path}: not an ELF file`);
    if (h[4] !== 2 || h[5] !== 1) throw new Error(`${path}: not a 64-bit little-endian ELF file`);
    const machine = h.readUInt16LE(18);
    const phoff = Number(h.readBigUInt64LE(32));
    const phentsize = h.readUInt16LE(54);
    const phnum = h.readUInt16LE(56);
    const table = readAt(fd, phoff, phentsize * phnum);
    let interpreter: string | null = null;
    for (let i = 0; i < phnum; i++) {
      const at = i * phentsize;
      if (table.readUInt32LE(at) !== PT_INTERP) continue;
      const offset = Number(table.readBigUInt64LE(at + 8));
      const size = Number(table.readBigUInt64LE(at + 32));
      interpreter = readAt(fd, offset, size).toString("latin1").replace(/\0+$/, "");
      break;
    }
    const arch = machine === EM_X86_64 ? "x64" : machine === EM_AARCH64 ? "arm64" : "other";
    const libc = interpreter === null ? "none" : interpreter.includes("musl") ? "musl" : "glibc";
    return { arch, interpreter, libc };
  } finally {
    closeSync(fd);
  }
}
