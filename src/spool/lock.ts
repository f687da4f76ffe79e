// One relay per --buffer-dir: two writing the same segments would interleave
// and resend each other's lines. The lock is a file holding the owner's pid; a
// lock whose process is gone (SIGKILL, a container restart) is taken over.
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";

const LOCK_FILE = "lock";

export class SpoolLockedError extends Error {}

/** Takes the lock or throws SpoolLockedError naming the owner; returns the release function. */
export function lockSpoolDir(dir: string): () => void {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx", 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => {
        try {
          unlinkSync(path);
        } catch {
          // Gone already: nothing to release.
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const owner = Number.parseInt(readText(path), 10);
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && relayAlive(owner)) {
      throw new SpoolLockedError(`in use by another relay (pid ${owner}); give each relay its own --buffer-dir`);
    }
    // Stale: its owner is gone (or is us, after a restart in a fresh PID namespace).
    unlinkSync(path);
  }
  throw new SpoolLockedError("cannot take the lock file");
}

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** True when `pid` runs and looks like a relay (a reused pid of another program does not count). */
function relayAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: it exists but belongs to someone else, so it is not a stale lock of ours to take.
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return true; // cannot tell: assume the owner is alive
  }
  return /vigil-log-relay|main\.ts|--buffer-dir/.test(cmdline);
}
