/**
 * The portable backend: @noble/* only, no Node built-ins, so it runs in browsers, Deno,
 * Bun and edge runtimes as well as any Node >= 20.19. The implementation is noble-core.ts;
 * this module imports the libraries statically and hands them to it.
 *
 * Sharp edge: importing this module registers it with the backend selector
 * (noble-registry.ts), so `selectBackend()` finds the portable backend without loading the
 * libraries a second way: that is how browsers (no node:crypto, no `require`) get it.
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { gcm } from '@noble/ciphers/aes.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { expand, extract } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { sha3_256, shake256 } from '@noble/hashes/sha3.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import { ml_kem768_x25519 } from '@noble/post-quantum/hybrid.js';
import type { CryptoBackend } from './types.js';
import { nobleBackendFrom } from './noble-core.js';
import type { NobleLib } from './noble-core.js';
import { registerNobleLib } from './noble-registry.js';

const LIB: NobleLib = { chacha20poly1305, gcm, ed25519, x25519, expand, extract, hmac, sha256, sha512, sha3_256, shake256, randomBytes, ml_kem768, ml_dsa65, ml_kem768_x25519 };
registerNobleLib(LIB);

export function createNobleBackend(): CryptoBackend {
  return nobleBackendFrom(LIB);
}
