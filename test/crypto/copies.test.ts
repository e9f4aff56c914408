/**
 * Own copies really are copies. On Node, `buffer.slice()` returns a view on the same
 * memory, so a "copy" made that way of a caller's Buffer changes when the caller wipes or
 * reuses it. Keys, seeds and received handshake messages arrive as Buffers (files, ws), so
 * every layer copies with `copyBytes`; these tests hand Buffers in and wipe them after.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { copyBytes } from '../../src/bytes.js';
import { CipherState } from '../../src/record/cipher-state.js';
import { HEADER_LENGTH, InnerType } from '../../src/record/constants.js';
import { BACKENDS, pattern } from './backends.js';

const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes);

describe('copyBytes', () => {
  it('copies a Node Buffer into memory of its own', () => {
    const source = asBuffer(pattern(32, 7));
    const copy = copyBytes(source);
    source.fill(0);
    expect(copy).toEqual(pattern(32, 7));
    expect(copy.constructor).toBe(Uint8Array);
    // The trap it avoids: Buffer#slice shares memory with the Buffer.
    const buffer = asBuffer(pattern(4));
    const view = buffer.slice();
    buffer[0] = 0xee;
    expect(view[0]).toBe(0xee);
  });
});

describe.each(BACKENDS)('$name backend keeps its own copy of seeds and keys', ({ backend }) => {
  it('key pairs made from a Buffer seed survive the caller wiping it', () => {
    const keygens: [string, (seed: Uint8Array) => { seed: Uint8Array; publicKey: Uint8Array }][] = [
      ['xwing', (s) => backend.xwing.keygen(s)],
      ['mldsa65', (s) => backend.mldsa65.keygen(s)],
      ['ed25519', (s) => backend.ed25519.keygen(s)],
    ];
    for (const [name, keygen] of keygens) {
      const seed = pattern(32, name.length);
      const handed = asBuffer(seed);
      const kp = keygen(handed);
      handed.fill(0);
      expect(kp.seed, name).toEqual(seed);
      // And the key pair still works from its own seed: the same public key as a fresh one.
      expect(keygen(copyBytes(kp.seed)).publicKey, name).toEqual(kp.publicKey);
    }
  });

  it('a cipher state keyed from a Buffer still opens its records after the Buffer is wiped', () => {
    const key = asBuffer(pattern(32, 9));
    const iv = asBuffer(pattern(12, 5));
    const sender = new CipherState(backend, 'chacha20-poly1305', key, iv);
    const receiver = new CipherState(backend, 'chacha20-poly1305', pattern(32, 9), pattern(12, 5));
    key.fill(0);
    iv.fill(0);
    const record = sender.seal(InnerType.applicationFinal, pattern(100));
    const opened = receiver.open(record.subarray(0, HEADER_LENGTH), record.subarray(HEADER_LENGTH));
    expect(opened.content).toEqual(pattern(100));
  });
});

describe('src/ makes no copies with .slice()', () => {
  it('has no argument-less .slice() (a view, not a copy, on a Node Buffer)', () => {
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (path.endsWith('.ts')) {
          readFileSync(path, 'utf8')
            .split('\n')
            .forEach((line, i) => {
              if (/\.slice\(\)/.test(line) && !line.trim().startsWith('*') && !line.trim().startsWith('//')) offenders.push(`${path}:${i + 1}`);
            });
        }
      }
    };
    walk(join(__dirname, '../../src'));
    expect(offenders).toEqual([]);
  });
});
