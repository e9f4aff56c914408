/**
 * node:crypto's AEADs (AES-256-GCM, ChaCha20-Poly1305) behind the `Aead` interface, for
 * the native backend (native.ts).
 *
 * Sharp edges:
 * - node:crypto has no way to restart a cipher context with a new nonce: every call makes a
 *   new Cipheriv / Decipheriv (docs/benchmarks.md, "AEAD per call").
 * - `update` cannot write into a caller's buffer: each call's output is a new Buffer,
 *   copied once into the record (`sealFramed`) or handed out as the plaintext (`open`).
 * - `sealFramed` writes into `out` when given one (a pooled record buffer,
 *   record/record-buffers.ts) of exactly the record's length; else into a new buffer.
 * - A failed `open` zeroes whatever it decrypted and returns undefined.
 * - Outputs are plain Uint8Arrays, never Buffers (whose `slice` aliases memory).
 */
import { InternalError, InvalidArgumentError } from '../errors.js';
import { uninitialised } from '../bytes.js';
import { checkLength } from './_checks.js';
import { concat2, u8 } from './native-keys.js';
import type { NodeCryptoModule } from './native-keys.js';
import type { Aead, AeadAlgorithm } from './types.js';

export function nativeAead(c: NodeCryptoModule, algorithm: AeadAlgorithm, key: Uint8Array): Aead {
  if (algorithm !== 'chacha20-poly1305' && algorithm !== 'aes-256-gcm') throw new InvalidArgumentError(`unknown AEAD algorithm ${JSON.stringify(algorithm)}`);
  checkLength(key, 32, 'AEAD key');
  const secret = c.createSecretKey(key); // a copy: later changes to `key` do not affect us
  const opts = { authTagLength: 16 } as const;
  return {
    seal(nonce, plaintext, aad) {
      checkLength(nonce, 12, 'AEAD nonce');
      const cipher = c.createCipheriv(algorithm as 'aes-256-gcm', secret, nonce, opts);
      cipher.setAAD(aad);
      const out = new Uint8Array(plaintext.length + 16);
      const body = cipher.update(plaintext);
      out.set(body, 0);
      out.set(cipher.final(), body.length);
      out.set(cipher.getAuthTag(), plaintext.length);
      return out;
    },
    sealFramed(nonce, aad, plaintext, trailer, into) {
      checkLength(nonce, 12, 'AEAD nonce');
      // aad || plaintext || trailer || tag in one buffer (every byte is written below); the
      // plaintext is encrypted where it lies, so node:crypto's output is copied once, over
      // it. One update call: cheaper than one per input part.
      const start = aad.length;
      const end = start + plaintext.length + trailer.length;
      if (into !== undefined && into.length !== end + 16) throw new InvalidArgumentError(`sealFramed output must be ${end + 16} bytes, got ${into.length}`);
      const cipher = c.createCipheriv(algorithm as 'aes-256-gcm', secret, nonce, opts);
      cipher.setAAD(aad);
      const out = into ?? uninitialised(end + 16);
      out.set(aad, 0);
      out.set(plaintext, start);
      out.set(trailer, start + plaintext.length);
      const body = cipher.update(out.subarray(start, end));
      out.set(body, start);
      const tail = cipher.final();
      if (body.length + tail.length !== end - start) throw new InternalError('AEAD returned a body of the wrong length');
      out.set(tail, start + body.length);
      out.set(cipher.getAuthTag(), end);
      return out;
    },
    open(nonce, sealed, aad) {
      if (nonce.length !== 12 || sealed.length < 16) return undefined;
      const ctLength = sealed.length - 16;
      let body: Uint8Array | undefined;
      try {
        const decipher = c.createDecipheriv(algorithm as 'aes-256-gcm', secret, nonce, opts);
        decipher.setAuthTag(sealed.subarray(ctLength));
        decipher.setAAD(aad);
        body = decipher.update(sealed.subarray(0, ctLength));
        const tail = decipher.final(); // throws on a bad tag
        return tail.length === 0 ? u8(body) : concat2(body, tail);
      } catch {
        body?.fill(0); // never hand out (or leave lying around) unauthenticated plaintext
        return undefined;
      }
    },
  };
}
