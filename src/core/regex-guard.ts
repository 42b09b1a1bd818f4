/**
 * Regular expressions Loupe did not write (a hint-pattern setting, a Split pre-tokenizer in a
 * downloaded tokenizer.json) run on the prompt in a backtracking engine, where `(a+)+$` takes
 * exponential time. JavaScript cannot interrupt a running match, so patterns are checked before
 * use instead: refused when longer than MAX_PATTERN_LENGTH, when they hold a backreference, or when
 * a repeated group holds a quantifier or an alternation (the shapes behind catastrophic
 * backtracking: `(a+)+`, `(a|a)*`, `(\w*\s?)*`). What remains backtracks at most polynomially,
 * and the texts are bounded (loupe.maxTokens, the 1 MB prompt cap).
 */
import { LoupeError } from "./errors";

export const MAX_PATTERN_LENGTH = 1000;

/** Why `source` could take exponential time, or undefined when it is safe by the rules above. */
export function unsafePatternReason(source: string): string | undefined {
  if (source.length > MAX_PATTERN_LENGTH) return `it is ${source.length} characters long (at most ${MAX_PATTERN_LENGTH})`;
  interface Group {
    quantified: boolean;
    alternation: boolean;
  }
  const stack: Group[] = [{ quantified: false, alternation: false }];
  const top = () => stack[stack.length - 1];
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === "\\") {
      const next = source[i + 1] ?? "";
      if (/[1-9]/.test(next) || (next === "k" && source[i + 2] === "<")) return "it holds a backreference";
      i++; // The escaped character, whatever it is, is a literal or a class.
      if (next === "u" && source[i + 1] === "{") i = Math.max(i, source.indexOf("}", i));
      else if ((next === "p" || next === "P") && source[i + 1] === "{") i = Math.max(i, source.indexOf("}", i));
      continue;
    }
    if (c === "[") {
      // Skip the character class: its metacharacters are literals.
      for (i++; i < source.length && source[i] !== "]"; i++) if (source[i] === "\\") i++;
      continue;
    }
    if (c === "(") {
      stack.push({ quantified: false, alternation: false });
      // Skip a group's kind ("?:", "?=", "?<!", "?<name>", "?i:"): its "?" is not a quantifier.
      const kind = /^\?(?:[:=!]|<[=!]|<[A-Za-z_$][\w$]*>|[a-z-]+:)/.exec(source.slice(i + 1));
      if (kind) i += kind[0].length;
      continue;
    }
    if (c === "|") {
      top().alternation = true;
      continue;
    }
    if (c === ")") {
      if (stack.length === 1) continue; // Unbalanced: new RegExp reports it.
      const group = stack.pop()!;
      const quantifier = quantifierAt(source, i + 1);
      if (quantifier) {
        if (quantifier.repeats && (group.quantified || group.alternation)) {
          return `the group ending at character ${i + 1} is repeated and itself holds ${group.quantified ? "a quantifier" : "alternatives"} (nested repetition backtracks exponentially)`;
        }
        if (quantifier.variable) top().quantified = true;
        i += quantifier.length;
      }
      if (group.quantified) top().quantified = true;
      continue;
    }
    const quantifier = quantifierAt(source, i);
    if (quantifier) {
      if (quantifier.variable) top().quantified = true;
      i += quantifier.length - 1;
    }
  }
  return undefined;
}

/**
 * The quantifier starting at `at` (with its lazy suffix), if any: whether it repeats (allows more
 * than one) and whether it is variable (allows more than one count, so a match can be split many ways).
 */
function quantifierAt(source: string, at: number): { length: number; repeats: boolean; variable: boolean } | undefined {
  const c = source[at];
  let length: number;
  let repeats: boolean;
  let variable = true;
  if (c === "*" || c === "+") [length, repeats] = [1, true];
  else if (c === "?") [length, repeats] = [1, false];
  else if (c === "{") {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(source.slice(at));
    if (!m) return undefined;
    length = m[0].length;
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === "" ? Infinity : Number(m[3]);
    [repeats, variable] = [max > 1, max > min];
  } else return undefined;
  if (source[at + length] === "?") length++;
  return { length, repeats, variable };
}

/**
 * Compile a pattern that came from a setting or a file, refusing unsafe ones with a message that
 * says where it came from (`what`, e.g. "The setting loupe.faithfulness.hintPattern") and the fix.
 */
export function compileGuardedPattern(source: string, flags: string, what: string, file?: string): RegExp {
  const unsafe = unsafePatternReason(source);
  if (unsafe) {
    throw new LoupeError("unsafe-pattern", `${what} /${shorten(source)}/ is refused: ${unsafe}. Rewrite it without nested repetition or backreferences (e.g. "(a+)+" as "a+").`, file);
  }
  try {
    return new RegExp(source, flags);
  } catch (error) {
    throw new LoupeError("bad-argument", `${what} /${shorten(source)}/ is not a valid regular expression: ${(error as Error).message}`, file);
  }
}

function shorten(source: string): string {
  return source.length > 80 ? `${source.slice(0, 77)}…` : source;
}
