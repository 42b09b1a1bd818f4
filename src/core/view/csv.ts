/**
 * CSV cells for files a spreadsheet will open. Text cells hold token text, which the prompt's author
 * chose: one starting with "=", "+", "-", "@", a tab or a carriage return would be read as a formula
 * (OWASP's CSV injection), so it gets a leading apostrophe, which spreadsheets show as plain text.
 * Numbers are written as numbers.
 */
const FORMULA_START = /^[=+\-@\t\r]/;

export function csvCell(value: string | number): string {
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "";
  const text = FORMULA_START.test(value) ? `'${value}` : value;
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
