/**
 * Record padding (docs/protocol.md, section 3.2): TLS 1.3-style zero bytes after the inner
 * content type, inside the protected plaintext, so a record's length says only which bucket
 * its content falls in.
 *
 *   inner_plaintext = content || inner_type u8 || zeros[padding]     at most 65537 bytes
 *
 * Sharp edges:
 * - Padding never pushes a record past the protocol maximum: the padded inner plaintext is
 *   capped at 65537 bytes (MAX_CONTENT + 1), so the record limits stay what they were and a
 *   full 65536-byte fragment carries no padding (every full fragment has the same length).
 * - What to pad is the sender's policy, not the receiver's business: the receiver strips
 *   trailing zeros whatever their number. The policy here is pqmcp's: every Credential
 *   record to a multiple of CREDENTIAL_PADDING_BLOCK, application records only when asked.
 */
import { InvalidArgumentError } from '../errors.js';
import { MAX_CONTENT } from './constants.js';

/** The largest inner plaintext: the largest content plus its type byte. */
export const MAX_INNER_PLAINTEXT = MAX_CONTENT + 1;

/**
 * Credential records are padded so that their inner plaintext is a multiple of this: agents
 * of one issuer whose credentials differ by less (ids, display names, claims) send Credential
 * records of one length.
 */
export const CREDENTIAL_PADDING_BLOCK = 1024;

/** Zero bytes to add after the type byte so that `contentLength + 1 + padding` is a multiple of `block` (capped at 65537). */
export function paddingFor(contentLength: number, block: number): number {
  if (block <= 1) return 0;
  const inner = contentLength + 1;
  return Math.min(Math.ceil(inner / block) * block, MAX_INNER_PLAINTEXT) - inner;
}

/** Check an application padding block option: 0 (off) or 1..65537. */
export function checkPaddingBlock(value: unknown, name: string): number {
  if (value === undefined) return 0;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > MAX_INNER_PLAINTEXT) {
    throw new InvalidArgumentError(`${name} must be 0 (no padding) or a block size in bytes from 1 to ${MAX_INNER_PLAINTEXT}`);
  }
  return value;
}
