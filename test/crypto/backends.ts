/**
 * The two backends every crypto test runs against, created once per test file.
 * `describe.each(BACKENDS)('$name backend', ({ backend }) => ...)`.
 */
import { createNativeBackend } from '../../src/crypto/native.js';
import { createNobleBackend } from '../../src/crypto/noble.js';
import type { CryptoBackend } from '../../src/crypto/types.js';

export interface NamedBackend {
  name: 'noble' | 'native';
  backend: CryptoBackend;
}

export const noble = createNobleBackend();
export const native = createNativeBackend();

export const BACKENDS: NamedBackend[] = [
  { name: 'noble', backend: noble },
  { name: 'native', backend: native },
];

/** Deterministic bytes for fixtures: byte i = (start + i * step) & 0xff. */
export function pattern(length: number, start = 0, step = 1): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (start + i * step) & 0xff);
}
