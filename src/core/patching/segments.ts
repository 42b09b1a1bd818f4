/**
 * Groups of prompt tokens that a prompt engineer thinks in: words and lines. Pure functions of the
 * text and the tokens' UTF-16 offsets.
 */

export interface Segment {
  readonly index: number;
  /** UTF-16 range of the segment in the text (a line without its newline). */
  readonly start: number;
  readonly end: number;
  readonly text: string;
  /** Token indices assigned to it, ascending. */
  readonly tokens: number[];
}

const SPACE = /\s/;

/** A token's anchor: its first non-space character, or its start if it is all space. */
function anchor(text: string, [start, end]: readonly [number, number]): number | undefined {
  for (let i = start; i < end; i++) if (!SPACE.test(text[i])) return i;
  return undefined;
}

/** Lines, each with the tokens anchored on it; a lone newline token stays with the line it ends. */
export function lineSegments(text: string, offsets: readonly (readonly [number, number])[]): Segment[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === "\n") starts.push(i + 1);
  const lineOf = (at: number) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= at) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const tokensOf = starts.map((): number[] => []);
  offsets.forEach((range, t) => tokensOf[lineOf(anchor(text, range) ?? range[0])].push(t));
  const out: Segment[] = [];
  starts.forEach((start, line) => {
    if (tokensOf[line].length === 0) return;
    const next = line + 1 < starts.length ? starts[line + 1] - 1 : text.length;
    const end = next > start && text[next - 1] === "\r" ? next - 1 : next;
    out.push({ index: line, start, end, text: text.slice(start, end), tokens: tokensOf[line] });
  });
  return out;
}

/**
 * Whitespace-separated words with their tokens. A token of spaces only joins the word after it
 * (GPT-2 writes " Mia" as " " + "M" + "ia" when the name splits), or the last word at the end.
 */
export function wordSegments(text: string, offsets: readonly (readonly [number, number])[]): Segment[] {
  const words: Array<{ start: number; end: number; tokens: number[] }> = [];
  for (const m of text.matchAll(/\S+/g)) words.push({ start: m.index, end: m.index + m[0].length, tokens: [] });
  if (words.length === 0) return [];
  const wordAt = (at: number) => {
    const i = words.findIndex((w) => w.end > at);
    return i < 0 ? words.length - 1 : i;
  };
  offsets.forEach((range, t) => {
    const a = anchor(text, range);
    words[a === undefined ? wordAt(range[1]) : wordAt(a)].tokens.push(t);
  });
  return words
    .map((w, index) => ({ index, start: w.start, end: w.end, text: text.slice(w.start, w.end), tokens: w.tokens.sort((x, y) => x - y) }))
    .filter((w) => w.tokens.length > 0);
}
