/** Input checks shared by the backends. Public lengths only; nothing secret-dependent. */
import { InvalidArgumentError } from '../errors.js';

export function checkLength(b: Uint8Array, n: number, what: string): Uint8Array {
  if (!(b instanceof Uint8Array)) throw new InvalidArgumentError(`${what} must be a Uint8Array`);
  if (b.length !== n) throw new InvalidArgumentError(`${what} must be ${n} bytes, got ${b.length}`);
  return b;
}

/** Constant-time all-zero test (for X25519 outputs). */
export function isAllZero(b: Uint8Array): boolean {
  let acc = 0;
  for (const x of b) acc |= x;
  return acc === 0;
}
