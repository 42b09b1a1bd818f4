/** Checks on text before it is sent to the model, with messages a user can act on. */

/** Characters per token we allow before even tokenizing: generous, since code and Unicode tokenize densely. */
const MAX_CHARS_PER_TOKEN = 16;

export type SelectionProblem = { readonly kind: "empty" | "binary" | "too-long"; readonly message: string };

export function checkInspectable(text: string, maxTokens: number, wholeDocument: boolean): SelectionProblem | undefined {
  if (text.trim().length === 0) {
    return {
      kind: "empty",
      message: wholeDocument ? "Loupe: the document is empty; there is nothing to inspect." : "Loupe: the selection is empty or only whitespace; select some text to inspect.",
    };
  }
  if (text.includes("\u0000")) {
    return { kind: "binary", message: "Loupe: this text contains NUL characters and looks like a binary file; Loupe inspects text only." };
  }
  if (text.length > maxTokens * MAX_CHARS_PER_TOKEN) {
    return {
      kind: "too-long",
      message: `Loupe: the ${wholeDocument ? "document" : "selection"} has ${text.length.toLocaleString("en-US")} characters, far more than ${maxTokens} tokens (setting loupe.maxTokens). Select a shorter passage.`,
    };
  }
  return undefined;
}
