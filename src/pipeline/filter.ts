// --include / --exclude: a line passes when it matches any include (or there
// are none) and matches no exclude. Regexes search anywhere in the line.
//
// Most real filters are plain words or alternatives of words (`/healthz`,
// `"level":"(INFO|WARN|ERROR)"`). Those are also compiled to byte literals
// (LiteralMatcher), so the HTTP framer can test a line's UTF-8 bytes with
// Buffer#indexOf instead of decoding every line to a string and running a
// regex over it: the same answer (see literalAlternatives) at a fraction of
// the cost. Any other regex keeps the string path (check()).
import type { FilterConfig } from "../config.ts";

export type FilterVerdict = "pass" | "include" | "exclude";

export class LineFilter {
  private readonly include: RegExp[];
  private readonly exclude: RegExp[];
  /**
   * Byte matchers equivalent to the regexes, when every regex is literal-only;
   * null when any is not (then callers use check() on text). Each is null when
   * its list is empty.
   */
  readonly bytes: { include: LiteralMatcher | null; exclude: LiteralMatcher | null } | null;

  constructor(cfg: FilterConfig) {
    // Drop the g/y flags, whose lastIndex state would make test() alternate.
    const clean = (r: RegExp) => (r.global || r.sticky ? new RegExp(r.source, r.flags.replace(/[gy]/g, "")) : r);
    this.include = cfg.include.map(clean);
    this.exclude = cfg.exclude.map(clean);
    const inc = literalsOf(this.include);
    const exc = literalsOf(this.exclude);
    this.bytes =
      inc !== null && exc !== null
        ? { include: this.include.length > 0 ? new LiteralMatcher(inc) : null, exclude: this.exclude.length > 0 ? new LiteralMatcher(exc) : null }
        : null;
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

  /**
   * check() for a line given as valid UTF-8 bytes buf[start, end); only when
   * `bytes` is not null. Lines of one buffer must come in increasing order
   * between resets (see LiteralMatcher).
   */
  checkBytes(buf: Buffer, start: number, end: number): FilterVerdict {
    const b = this.bytes;
    if (b === null) throw new Error("checkBytes() needs literal-only filters");
    if (b.include !== null && !b.include.matches(buf, start, end)) return "include";
    if (b.exclude !== null && b.exclude.matches(buf, start, end)) return "exclude";
    return "pass";
  }

  /** Forgets what the byte matchers remember of the previous buffer (call before each new chunk). */
  resetBytes(): void {
    this.bytes?.include?.reset();
    this.bytes?.exclude?.reset();
  }
}

/** All literals of a list of regexes (a line matches any of them), or null when one regex is not literal-only. */
function literalsOf(regexes: RegExp[]): string[] | null {
  const all: string[] = [];
  for (const r of regexes) {
    const lits = literalAlternatives(r);
    if (lits === null) return null;
    all.push(...lits);
  }
  return all;
}

/** Most alternatives one regex may expand to (a cross product of groups grows fast). */
const MAX_ALTERNATIVES = 64;

/**
 * The strings a regex matches, when its pattern is only literal characters,
 * groups and `|` (e.g. `/healthz`, `"level":"(INFO|WARN)"`, `a(?:b|c)d`):
 * then "the regex matches somewhere in a line" is exactly "one of these
 * strings occurs in it". Null for anything else: classes, `.`, quantifiers,
 * anchors, lookaround, backreferences, the `i` and `v` flags, escapes other
 * than the literal ones, strings with lone surrogates (their UTF-8 form would
 * not be the line's), or more than MAX_ALTERNATIVES strings. The flags `m`
 * and `s` only change `^`, `$` and `.`, which are refused anyway.
 */
export function literalAlternatives(re: RegExp): string[] | null {
  for (const f of re.flags) if (!"gyusmd".includes(f)) return null;
  const src = re.source;
  const unicode = re.unicode;
  let i = 0;

  /** One escape after the backslash at src[i - 1]; the character, or null. */
  const escape = (): string | null => {
    const c = src[i];
    if (c === undefined) return null;
    i++;
    if ("^$\\.*+?()[]{}|/".includes(c)) return c;
    switch (c) {
      case "t":
        return "\t";
      case "n":
        return "\n";
      case "r":
        return "\r";
      case "v":
        return "\v";
      case "f":
        return "\f";
      case "x": {
        const h = src.slice(i, i + 2);
        if (!/^[0-9a-fA-F]{2}$/.test(h)) return null;
        i += 2;
        return String.fromCharCode(parseInt(h, 16));
      }
      case "u": {
        if (unicode && src[i] === "{") {
          const close = src.indexOf("}", i);
          const h = close < 0 ? "" : src.slice(i + 1, close);
          if (!/^[0-9a-fA-F]{1,6}$/.test(h)) return null;
          const cp = parseInt(h, 16);
          if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return null;
          i = close + 1;
          return String.fromCodePoint(cp);
        }
        const h = src.slice(i, i + 4);
        if (!/^[0-9a-fA-F]{4}$/.test(h)) return null;
        const cu = parseInt(h, 16);
        i += 4;
        if (cu < 0xd800 || cu > 0xdfff) return String.fromCharCode(cu);
        // A pair of surrogate escapes is one character (Bun's transpiler writes regex
        // literals' astral characters so); a lone surrogate is refused.
        const low = /^\\u([dD][c-fC-F][0-9a-fA-F]{2})/.exec(src.slice(i, i + 6));
        if (cu > 0xdbff || low === null) return null;
        i += 6;
        return String.fromCharCode(cu, parseInt(low[1] as string, 16));
      }
      default:
        return null;
    }
  };

  /** Cross product of the alternatives so far with the next atom's; null when too many. */
  const append = (cur: string[], next: string[]): string[] | null => {
    if (cur.length * next.length > MAX_ALTERNATIVES) return null;
    const out: string[] = [];
    for (const a of cur) for (const b of next) out.push(a + b);
    return out;
  };

  /** A quantifier after an atom changes what it matches: refused. */
  const quantified = (): boolean => {
    const c = src[i];
    return c === "*" || c === "+" || c === "?" || c === "{";
  };

  /** Alternatives up to the end or an unmatched ")". */
  const alternation = (): string[] | null => {
    const alts: string[] = [];
    let cur: string[] = [""];
    while (i < src.length) {
      const c = src[i] as string;
      if (c === ")") break;
      if (c === "|") {
        alts.push(...cur);
        if (alts.length > MAX_ALTERNATIVES) return null;
        cur = [""];
        i++;
        continue;
      }
      let atom: string[] | null;
      if (c === "(") {
        i++;
        if (src.startsWith("?:", i)) {
          i += 2;
        } else if (src.startsWith("?<", i) && src[i + 2] !== "=" && src[i + 2] !== "!") {
          // A named group only captures, which a test does not see.
          const close = src.indexOf(">", i);
          if (close < 0) return null;
          i = close + 1;
        } else if (src[i] === "?") {
          return null; // lookaround, modifiers
        }
        atom = alternation();
        if (atom === null || src[i] !== ")") return null;
        i++;
      } else if (c === "\\") {
        i++;
        const e = escape();
        if (e === null) return null;
        atom = [e];
      } else if ("^$.*+?[]{}".includes(c)) {
        return null;
      } else {
        atom = [c];
        i++;
      }
      if (quantified()) return null;
      const next = append(cur, atom);
      if (next === null) return null;
      cur = next;
    }
    alts.push(...cur);
    return alts.length > MAX_ALTERNATIVES ? null : alts;
  };

  const alts = alternation();
  if (alts === null || i !== src.length) return null;
  for (const a of alts) if (!a.isWellFormed()) return null;
  return alts;
}

interface Group {
  /** Every literal of the group starts with it (a Buffer: Buffer#indexOf takes it as the needle), and its length. */
  prefix: Buffer;
  plen: number;
  /** What follows the prefix in each literal, end to end (tail k is tails[tailAt[k], tailAt[k + 1])). */
  tails: Uint8Array;
  tailAt: Int32Array;
  /** A literal is the prefix itself: a prefix that fits is a match. */
  bare: boolean;
  /** First occurrence of `prefix` at or after `from` in the cached buffer (-1: none); `from` -1: unknown. */
  from: number;
  next: number;
}

function group(prefix: Buffer, tails: Buffer[]): Group {
  const tailAt = new Int32Array(tails.length + 1);
  for (let k = 0; k < tails.length; k++) tailAt[k + 1] = (tailAt[k] as number) + (tails[k] as Buffer).length;
  // A plain Uint8Array: reading a Buffer's length goes through a slow getter in Bun's JIT.
  const joined = new Uint8Array(Buffer.concat(tails));
  return { prefix, plen: prefix.length, tails: joined, tailAt, bare: tails.some((t) => t.length === 0), from: -1, next: -1 };
}

/**
 * Does any of a set of literals occur in buf[start, end)? The literals are
 * searched as UTF-8 bytes: for valid UTF-8 that is the same as searching the
 * decoded text (an encoded character never starts inside another one). When
 * all literals share a prefix, one Buffer#indexOf finds the candidates.
 *
 * Lines of one buffer are usually tested in order, so the next occurrence
 * found for one line is remembered for the following ones: a literal that
 * occurs in one line of a hundred costs one search per occurrence, not one
 * per line.
 */
export class LiteralMatcher {
  private readonly groups: Group[];
  /** Some literal is empty: every line matches. */
  private readonly always: boolean;
  private cacheBuf: Buffer | null = null;

  constructor(literals: string[]) {
    const encoded = literals.map((l) => Buffer.from(l, "utf8"));
    this.always = encoded.some((l) => l.length === 0);
    const first = encoded[0];
    let common = first !== undefined ? first.length : 0;
    for (const l of encoded) {
      let k = 0;
      while (k < common && k < l.length && l[k] === (first as Buffer)[k]) k++;
      common = k;
    }
    if (encoded.length > 1 && common > 0) {
      this.groups = [group((first as Buffer).subarray(0, common), encoded.map((l) => l.subarray(common)))];
    } else {
      this.groups = encoded.map((l) => group(l, [Buffer.alloc(0)]));
    }
  }

  /** Forgets the remembered occurrences (the next buffer may be the same object with new bytes). */
  reset(): void {
    this.cacheBuf = null;
  }

  matches(buf: Buffer, start: number, end: number): boolean {
    if (this.always) return true;
    const groups = this.groups;
    if (buf !== this.cacheBuf) {
      this.cacheBuf = buf;
      for (let gi = 0; gi < groups.length; gi++) (groups[gi] as Group).from = -1;
    }
    for (let gi = 0; gi < groups.length; gi++) {
      const g = groups[gi] as Group;
      const plen = g.plen;
      let q = g.next;
      if (g.from < 0 || g.from > start || (q >= 0 && q < start)) {
        q = buf.indexOf(g.prefix, start);
        g.from = start;
        g.next = q;
      }
      while (q >= 0 && q + plen <= end) {
        if (g.bare || this.tailAt(g, buf, q + plen, end)) return true;
        // No literal at q: the next candidate, still inside this line.
        g.from = q + 1;
        q = buf.indexOf(g.prefix, q + 1);
        g.next = q;
      }
    }
    return false;
  }

  /** Does one of the group's tails follow at buf[at], ending by `end`? */
  private tailAt(g: Group, buf: Buffer, at: number, end: number): boolean {
    const tails = g.tails;
    const bounds = g.tailAt;
    for (let k = 0; k + 1 < bounds.length; k++) {
      const t0 = bounds[k] as number;
      const tl = (bounds[k + 1] as number) - t0;
      if (at + tl > end) continue;
      let j = 0;
      while (j < tl && buf[at + j] === tails[t0 + j]) j++;
      if (j === tl) return true;
    }
    return false;
  }
}
