/**
 * Review2 F5: the key schedule's constants SHA-256("PQMCP/1") and SHA-256("") are cached
 * per backend, and no caller may change them: each use gets its own copy. Before, the
 * cached arrays were handed out by reference (to the backend's hkdfExtract as its salt),
 * so a backend that wipes its HKDF salt after use, or any caller writing to them, changed
 * the key schedule of every later handshake on that backend.
 */
import { describe, expect, it } from 'vitest';
import { createNativeBackend } from '../../src/crypto/native.js';
import { createNobleBackend } from '../../src/crypto/noble.js';
import type { CryptoBackend } from '../../src/crypto/types.js';
import { emptyHash, handshakeSecrets, masterSecret, protocolSalt } from '../../src/handshake/key-schedule.js';
import { utf8Encode } from '../../src/bytes.js';

const pattern = (n: number, start: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (start + i * 7) & 0xff);

describe.each([
  { name: 'native', backend: createNativeBackend() },
  { name: 'noble', backend: createNobleBackend() },
])('key schedule constants ($name)', ({ backend }) => {
  it('are SHA-256("PQMCP/1") and SHA-256(""), and writing to what was handed out changes nothing later', () => {
    const salt = protocolSalt(backend);
    const empty = emptyHash(backend);
    expect(salt).toEqual(backend.sha256(utf8Encode('PQMCP/1')));
    expect(empty).toEqual(backend.sha256(new Uint8Array(0)));
    salt.fill(0);
    empty.fill(0);
    expect(protocolSalt(backend)).toEqual(backend.sha256(utf8Encode('PQMCP/1')));
    expect(emptyHash(backend)).toEqual(backend.sha256(new Uint8Array(0)));
  });

  it('a backend that wipes its HKDF salt after each use derives the same secrets every time', () => {
    const wiping: CryptoBackend = {
      ...backend,
      hkdfExtract(salt, ikm) {
        const prk = backend.hkdfExtract(salt, ikm);
        salt.fill(0); // done with it
        return prk;
      },
    };
    const shared = pattern(32, 3);
    const hello = pattern(32, 9);
    const expected = handshakeSecrets(backend, shared, hello);
    for (let i = 0; i < 3; i++) {
      const got = handshakeSecrets(wiping, shared, hello);
      expect(got).toEqual(expected);
      expect(masterSecret(wiping, got.handshakeSecret)).toEqual(masterSecret(backend, expected.handshakeSecret));
    }
  });
});
