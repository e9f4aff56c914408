/**
 * The entry point Jazzer.js fuzzes: `fuzz(data)` runs the target named by the
 * PQMCP_FUZZ_TARGET environment variable (run.ts sets it). A Finding, or anything else a
 * target throws, is a crash for Jazzer.
 */
import { targetNamed } from './targets.js';

const target = targetNamed(process.env.PQMCP_FUZZ_TARGET ?? 'wire');

export function fuzz(data: Buffer): void {
  target.run(new Uint8Array(data.buffer, data.byteOffset, data.length));
}
