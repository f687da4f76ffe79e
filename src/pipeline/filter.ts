// --include / --exclude: a line passes when it matches any include (or there
// are none) and matches no exclude. Regexes search anywhere in the line.
import type { FilterConfig } from "../config.ts";

export type FilterVerdict = "pass" | "include" | "exclude";

export class LineFilter {
  private readonly include: RegExp[];
  private readonly exclude: RegExp[];

  constructor(cfg: FilterConfig) {
    // Drop the g/y flags, whose lastIndex state would make test() alternate.
    const clean = (r: RegExp) => (r.global || r.sticky ? new RegExp(r.source, r.flags.replace(/[gy]/g, "")) : r);
    this.include = cfg.include.map(clean);
    this.exclude = cfg.exclude.map(clean);
  }

  /** True when there is nothing to filter: callers then skip decoding lines to text. */
  get empty(): boolean {
    return this.include.length === 0 && this.exclude.length === 0;
  }

  /** "pass", or which filter rejected the line. */
  check(text: string): FilterVerdict {
    if (this.include.length > 0) {
      let hit = false;
      for (const r of this.include) {
        if (r.test(text)) {
          hit = true;
          break;
        }
      }
      if (!hit) return "include";
    }
    for (const r of this.exclude) if (r.test(text)) return "exclude";
    return "pass";
  }
}
