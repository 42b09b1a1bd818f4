/**
 * Keeping an inspected range in step with edits. Offsets are UTF-16 document offsets.
 * An edit wholly before the range shifts it; an edit that touches it makes it stale (token
 * offsets no longer hold) and the outline grows or shrinks with the edit.
 */
export interface TrackedRange {
  readonly start: number;
  readonly length: number;
  readonly stale: boolean;
}

export interface TextEdit {
  /** Offset of the replaced text, in the document before the edit. */
  readonly offset: number;
  readonly removedLength: number;
  readonly insertedLength: number;
}

export function trackEdit(range: TrackedRange, edit: TextEdit): TrackedRange {
  const end = range.start + range.length;
  const editEnd = edit.offset + edit.removedLength;
  const delta = edit.insertedLength - edit.removedLength;
  // Typing right before or right after the range leaves the inspected text as it was.
  if (editEnd <= range.start) return { ...range, start: range.start + delta };
  if (edit.offset >= end) return range;
  const start = Math.min(range.start, edit.offset);
  const newEnd = editEnd <= end ? end + delta : edit.offset + edit.insertedLength;
  return { start, length: Math.max(0, newEnd - start), stale: true };
}
