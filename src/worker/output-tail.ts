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

/** Turn a stream's chunks into whole lines (a chunk may end mid-line); blank lines are dropped. */
export function lineSink(onLine: (line: string) => void): (chunk: string) => void {
  let partial = "";
  return (chunk) => {
    const lines = (partial + chunk).split(/\r?\n/);
    partial = lines.pop() ?? "";
    for (const line of lines) if (line.trim() !== "") onLine(line);
  };
}
