/** Assertions on the library's typed errors. */
import { expect } from 'vitest';
import type { ErrorCode, PqmcpError } from '../../src/errors.js';

/** Run `fn`, require it to throw exactly `cls` (not a subclass) with `code`; return the error. */
export function expectError<T extends PqmcpError>(fn: () => unknown, cls: abstract new (...args: never[]) => T, code: ErrorCode): T {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  if (caught === undefined) throw new Error(`expected ${cls.name} (${code}), but nothing was thrown`);
  expect(caught).toBeInstanceOf(cls);
  expect(Object.getPrototypeOf(caught)).toBe(cls.prototype);
  expect((caught as T).code).toBe(code);
  return caught as T;
}

/** Await `promise`, require it to reject with exactly `cls` (not a subclass) and `code`; return the error. */
export async function expectRejection<T extends PqmcpError>(promise: Promise<unknown>, cls: abstract new (...args: never[]) => T, code: ErrorCode): Promise<T> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  if (caught === undefined) throw new Error(`expected ${cls.name} (${code}), but the promise resolved`);
  expect(caught).toBeInstanceOf(cls);
  expect(Object.getPrototypeOf(caught)).toBe(cls.prototype);
  expect((caught as T).code).toBe(code);
  return caught as T;
}
