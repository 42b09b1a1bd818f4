/** Small Markdown helpers for hovers built from text the user or the corpus wrote. */

/**
 * `text` as an inline code span that no backtick inside it can close early: the fence is one
 * backtick longer than the longest run inside, padded with spaces when the text touches a backtick.
 */
export function codeSpan(text: string): string {
  text = oneLine(text);
  const longest = Math.max(0, ...Array.from(text.matchAll(/`+/g), (m) => m[0].length));
  const fence = "`".repeat(longest + 1);
  const pad = text.startsWith("`") || text.endsWith("`") ? " " : "";
  return `${fence}${pad}${text}${pad}${fence}`;
}

/** Every line break Markdown or a table row would honour (CR, LF, CRLF, U+2028, U+2029), as one space. */
export function oneLine(text: string): string {
  return text.replace(/\r\n|[\r\n\u2028\u2029]/g, " ");
}

/**
 * `text` as literal Markdown on one line: every punctuation mark Markdown reads is escaped, ":" and
 * "@" included so that no bare autolink (https://…, www.…, user@host) forms, and line breaks
 * become spaces so a label cannot end a table row or start a block.
 */
export function escapeMarkdown(text: string): string {
  return oneLine(text).replace(/[\\`*_{}[\]()#+\-.!|<>~:@&]/g, (c) => `\\${c}`);
}
