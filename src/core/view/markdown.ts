/** Small Markdown helpers for hovers built from text the user or the corpus wrote. */

/**
 * `text` as an inline code span that no backtick inside it can close early: the fence is one
 * backtick longer than the longest run inside, padded with spaces when the text touches a backtick.
 */
export function codeSpan(text: string): string {
  const longest = Math.max(0, ...Array.from(text.matchAll(/`+/g), (m) => m[0].length));
  const fence = "`".repeat(longest + 1);
  const pad = text.startsWith("`") || text.endsWith("`") ? " " : "";
  return `${fence}${pad}${text}${pad}${fence}`;
}
