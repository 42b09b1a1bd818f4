/** The last few lines a process wrote, so a crash report can say what the worker said as it died. */
export class OutputTail {
  private text = "";

  constructor(private readonly maxChars = 2000) {}

  push(chunk: string): void {
    this.text = (this.text + chunk).slice(-this.maxChars);
  }

  /** The last `lines` non-empty lines, or "" when the process said nothing. */
  lastLines(lines = 5): string {
    return this.text
      .split(/\r?\n/)
      .filter((line) => line.trim() !== "")
      .slice(-lines)
      .join("\n");
  }
}
