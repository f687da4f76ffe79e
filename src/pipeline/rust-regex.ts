// The reference's patterns (--include, --exclude, --exclude-pod) are Rust
// `regex` syntax. JavaScript reads most of it the same; what it reads
// differently is rewritten here, so a filter that worked there matches the
// same lines here instead of failing to start or, worse, silently matching
// something else:
//   (?flags) anywhere      -> modifier groups up to the end of its group,
//                             alternatives included (i, m, s; x and U are
//                             applied here; u and R are accepted)
//   (?flags:...)           -> (?ims-ims:...), x and U applied here
//   (?P<name>...)          -> (?<name>...)
//   \A  \z                 -> start and end of the text
//   \<  \>                 -> start and end of a word
//   \x{HHHH}               -> the code point
//   \pL \p{..} \PL \P{..}  -> the same, with the `u` flag
//   [[:alpha:]] (POSIX)    -> the ASCII ranges
//   \: \" \- (escaped punctuation JavaScript does not know) -> the character
//   []...]                 -> a class starting with "]"
// Not rewritten: \d \w \s \b stay ASCII (Rust's are Unicode-aware), and
// nested classes / class set operations are not supported.

export interface JsPattern {
  source: string;
  flags: string;
}

const SYNTAX = new Set([..."^$\\.*+?()[]{}|/"]);
const POSIX: Record<string, string> = {
  alnum: "0-9A-Za-z",
  alpha: "A-Za-z",
  ascii: "\\x00-\\x7F",
  blank: "\\t ",
  cntrl: "\\x00-\\x1F\\x7F",
  digit: "0-9",
  graph: "!-~",
  lower: "a-z",
  print: " -~",
  punct: "!-/:-@\\[-`{-~",
  space: "\\t\\n\\v\\f\\r ",
  upper: "A-Z",
  word: "0-9A-Za-z_",
  xdigit: "0-9A-Fa-f",
};

interface Scope {
  /** modifier groups opened by (?flags) in this group, re-opened for each later alternative */
  wrappers: string[];
  /** how many of them are open in the current alternative */
  open: number;
  /** verbose mode: whitespace and # comments are ignored */
  x: boolean;
  /** swap greed: a+ is lazy, a+? greedy */
  U: boolean;
}

function codePointEscape(cp: number): string {
  if (cp > 0x10ffff) throw new SyntaxError(`invalid code point \\x{${cp.toString(16)}}`);
  const text = String.fromCodePoint(cp);
  let out = "";
  for (let i = 0; i < text.length; i++) out += `\\u${text.charCodeAt(i).toString(16).padStart(4, "0")}`;
  return out;
}

export function translateRustRegex(pattern: string): JsPattern {
  let out = "";
  let unicode = false;
  const stack: Scope[] = [{ wrappers: [], open: 0, x: false, U: false }];
  const top = (): Scope => stack[stack.length - 1] as Scope;
  let i = 0;
  const n = pattern.length;

  /** Parses "ims-x" (up to ")" or ":"): the JS modifiers, and applies x/U to `scope`. */
  const flags = (text: string, scope: Scope): string => {
    let on = "";
    let off = "";
    let negate = false;
    for (const f of text) {
      if (f === "-") {
        if (negate) throw new SyntaxError(`invalid flags (?${text})`);
        negate = true;
      } else if (f === "i" || f === "m" || f === "s") {
        if (negate) off += f;
        else on += f;
      } else if (f === "x") scope.x = !negate;
      else if (f === "U") scope.U = !negate;
      else if (f !== "u" && f !== "R") throw new SyntaxError(`unknown flag ${f} in (?${text})`);
    }
    if (on === "" && off === "") return "";
    return `(?${on}${off === "" ? "" : `-${off}`}:`;
  };

  const escape = (inClass: boolean): string => {
    const c = pattern[i + 1];
    if (c === undefined) throw new SyntaxError("trailing backslash");
    i += 2;
    switch (c) {
      case "A":
        return "(?<![\\s\\S])";
      case "z":
        return "(?![\\s\\S])";
      case "<":
        return "\\b(?=\\w)";
      case ">":
        return "\\b(?<=\\w)";
      case "x": {
        if (pattern[i] !== "{") return "\\x";
        const end = pattern.indexOf("}", i);
        const hex = end < 0 ? "" : pattern.slice(i + 1, end);
        if (!/^[0-9A-Fa-f]{1,8}$/.test(hex)) throw new SyntaxError(`invalid \\x{...} escape`);
        i = end + 1;
        return codePointEscape(parseInt(hex, 16));
      }
      case "p":
      case "P": {
        unicode = true;
        if (pattern[i] === "{") {
          const end = pattern.indexOf("}", i);
          if (end < 0) throw new SyntaxError(`unclosed \\${c}{`);
          const name = pattern.slice(i, end + 1);
          i = end + 1;
          return `\\${c}${name}`;
        }
        const letter = pattern[i];
        if (letter === undefined) throw new SyntaxError(`\\${c} without a class`);
        i++;
        return `\\${c}{${letter}}`;
      }
      default:
        if (/[0-9A-Za-z]/.test(c)) return `\\${c}`;
        if (c === "-") return inClass ? "\\-" : "-";
        if (SYNTAX.has(c)) return `\\${c}`;
        // Punctuation, space or "#" escaped in Rust: the character itself.
        return c;
    }
  };

  const charClass = (): string => {
    const x = top().x;
    let body = "[";
    i++;
    if (pattern[i] === "^") {
      body += "^";
      i++;
    }
    // A "]" first is a literal in Rust; JavaScript would read "[]" as an empty class.
    if (pattern[i] === "]") {
      body += "\\]";
      i++;
    }
    while (i < n && pattern[i] !== "]") {
      const c = pattern[i] as string;
      if (c === "\\") {
        body += escape(true);
      } else if (c === "[") {
        const m = /^\[:(\^?)([a-z]+):\]/.exec(pattern.slice(i));
        if (m === null) throw new SyntaxError("nested character classes are not supported");
        const ranges = POSIX[m[2] as string];
        if (ranges === undefined) throw new SyntaxError(`unknown POSIX class [:${m[2]}:]`);
        if (m[1] === "^") throw new SyntaxError(`negated POSIX class [:^${m[2]}:] is not supported`);
        body += ranges;
        i += m[0].length;
      } else if (x && /\s/.test(c)) {
        i++;
      } else {
        body += c;
        i++;
      }
    }
    if (i >= n) throw new SyntaxError("unclosed character class");
    i++;
    return `${body}]`;
  };

  /** A quantifier at i, or null: applies U (swapped greed). */
  const quantifier = (): string | null => {
    const c = pattern[i] as string;
    let q: string;
    if (c === "*" || c === "+" || c === "?") {
      q = c;
      i++;
    } else if (c === "{") {
      const m = /^\{\s*\d+\s*(,\s*\d*\s*)?\}/.exec(pattern.slice(i));
      if (m === null) return null;
      q = m[0].replace(/\s+/g, "");
      i += m[0].length;
    } else return null;
    let lazy = false;
    if (pattern[i] === "?") {
      lazy = true;
      i++;
    }
    if (top().U) lazy = !lazy;
    return q + (lazy ? "?" : "");
  };

  while (i < n) {
    const scope = top();
    const c = pattern[i] as string;
    if (scope.x && /\s/.test(c)) {
      i++;
      continue;
    }
    if (scope.x && c === "#") {
      while (i < n && pattern[i] !== "\n") i++;
      continue;
    }
    if (c === "\\") {
      out += escape(false);
      continue;
    }
    if (c === "[") {
      out += charClass();
      continue;
    }
    if (c === "|") {
      out += `${")".repeat(scope.open)}|${scope.wrappers.join("")}`;
      scope.open = scope.wrappers.length;
      i++;
      continue;
    }
    if (c === ")") {
      if (stack.length === 1) throw new SyntaxError("unopened group");
      out += `${")".repeat(scope.open)})`;
      stack.pop();
      i++;
      continue;
    }
    if (c === "(") {
      const inner: Scope = { wrappers: [], open: 0, x: scope.x, U: scope.U };
      if (pattern[i + 1] === "?") {
        const rest = pattern.slice(i + 2);
        const named = /^P?<([A-Za-z_][A-Za-z0-9_]*)>/.exec(rest);
        if (named !== null) {
          out += `(?<${named[1]}>`;
          i += 2 + named[0].length;
        } else if (rest.startsWith(":")) {
          out += "(?:";
          i += 3;
        } else {
          const m = /^([A-Za-z-]*)([:)])/.exec(rest);
          if (m === null) throw new SyntaxError("unknown group syntax");
          i += 2 + m[0].length;
          if (m[2] === ")") {
            // (?flags): the rest of this group, all its later alternatives included.
            const mod = flags(m[1] as string, scope);
            if (mod !== "") {
              out += mod;
              scope.wrappers.push(mod);
              scope.open++;
            }
            continue;
          }
          out += flags(m[1] as string, inner) || "(?:";
        }
      } else {
        out += "(";
        i++;
      }
      stack.push(inner);
      continue;
    }
    // Atoms and quantifiers.
    const q = quantifier();
    if (q !== null) {
      out += q;
      continue;
    }
    // A brace or bracket that is not syntax here is a literal (escaped: the `u` flag insists).
    out += c === "{" || c === "}" || c === "]" ? `\\${c}` : c;
    i++;
  }
  if (stack.length > 1) throw new SyntaxError("unclosed group");
  out += ")".repeat(top().open);
  return { source: out, flags: unicode ? "u" : "" };
}
