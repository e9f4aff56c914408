/** Shared helpers for the record-layer tests (not a test file). */
import { expect } from 'vitest';
import type { PqmcpError } from '../../src/errors.js';

/** mulberry32: a small seeded PRNG, so random splits are reproducible. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

export function randomBytes(rand: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rand() * 256);
  return out;
}

export const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** Run `fn`, expect it to throw an instance of exactly `cls` with `code`; return the error. */
export function expectError<E extends PqmcpError>(fn: () => unknown, cls: abstract new (...args: never[]) => E, code: string): E {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, `expected ${cls.name}`).toBeInstanceOf(cls);
  expect((thrown as Error).constructor).toBe(cls);
  expect((thrown as PqmcpError).code).toBe(code);
  return thrown as E;
}
