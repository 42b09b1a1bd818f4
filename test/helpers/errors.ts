import { strict as assert } from "node:assert";
import { LoupeError } from "../../src/core/errors";

/** Assert a LoupeError with this code and a message matching `pattern`: the user-facing contract. */
function isLoupeError(error: unknown, code: string, pattern: RegExp): true {
  assert.ok(error instanceof LoupeError, `expected a LoupeError, got ${String(error)}`);
  assert.equal(error.code, code);
  assert.match(error.message, pattern);
  return true;
}

export async function rejectsWith(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => isLoupeError(error, code, pattern));
}

export function throwsWith(fn: () => unknown, code: string, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => isLoupeError(error, code, pattern));
}
