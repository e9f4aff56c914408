/**
 * Backend selection (src/crypto/select.ts) and the truthfulness of the native backend's
 * report on this runtime (Node 20: ML-KEM and ML-DSA fall back to noble; Node >= 24.7:
 * everything native).
 */
import * as nodeCrypto from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { describeBackend, selectBackend } from '../../src/crypto/select.js';
import type { BackendChoice } from '../../src/crypto/select.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { native, noble } from './backends.js';

const ENV = 'PQMCP_BACKEND';
const saved = process.env[ENV];

afterEach(() => {
  if (saved === undefined) delete process.env[ENV];
  else process.env[ENV] = saved;
});

/** What node:crypto on this runtime can do, probed independently of native.ts. */
function runtimeHas(type: 'ml-kem-768' | 'ml-dsa-65', seedLength: number): boolean {
  try {
    nodeCrypto.createPrivateKey({ key: Buffer.alloc(seedLength, 1), format: 'raw-seed', asymmetricKeyType: type } as unknown as nodeCrypto.PrivateKeyInput);
    return type === 'ml-kem-768' ? typeof (nodeCrypto as { encapsulate?: unknown }).encapsulate === 'function' : true;
  } catch {
    return false;
  }
}

describe('selectBackend', () => {
  it('defaults to native on Node (auto)', () => {
    delete process.env[ENV];
    expect(selectBackend().name).toBe('native');
    expect(selectBackend('auto').name).toBe('native');
  });

  it('honours an explicit choice', () => {
    delete process.env[ENV];
    expect(selectBackend('noble').name).toBe('noble');
    expect(selectBackend('native').name).toBe('native');
  });

  it('honours PQMCP_BACKEND when no choice is given', () => {
    process.env[ENV] = 'noble';
    expect(selectBackend().name).toBe('noble');
    process.env[ENV] = 'native';
    expect(selectBackend().name).toBe('native');
    process.env[ENV] = 'auto';
    expect(selectBackend().name).toBe('native');
  });

  it('an explicit choice beats PQMCP_BACKEND', () => {
    process.env[ENV] = 'noble';
    expect(selectBackend('native').name).toBe('native');
    process.env[ENV] = 'native';
    expect(selectBackend('noble').name).toBe('noble');
    expect(selectBackend('auto').name).toBe('native');
  });

  it('an explicit choice wins even over an invalid PQMCP_BACKEND', () => {
    process.env[ENV] = 'openssl';
    expect(selectBackend('noble').name).toBe('noble');
  });

  it('an invalid PQMCP_BACKEND throws InvalidArgumentError naming the variable and the choices', () => {
    for (const bad of ['openssl', 'NATIVE', ' noble', 'true']) {
      process.env[ENV] = bad;
      expect(() => selectBackend()).toThrow(InvalidArgumentError);
      expect(() => selectBackend()).toThrow(/PQMCP_BACKEND must be one of auto, noble, native/);
    }
  });

  it('an empty PQMCP_BACKEND counts as unset', () => {
    process.env[ENV] = '';
    expect(selectBackend().name).toBe('native');
  });

  it('an invalid choice from untyped code throws InvalidArgumentError', () => {
    expect(() => selectBackend('fast' as BackendChoice)).toThrow(InvalidArgumentError);
  });

  it('caches instances', () => {
    delete process.env[ENV];
    expect(selectBackend('native')).toBe(selectBackend('native'));
    expect(selectBackend('noble')).toBe(selectBackend('noble'));
    expect(selectBackend()).toBe(selectBackend('native'));
  });
});

describe('selection without node:crypto (a browser-like runtime)', () => {
  it('auto picks noble and an explicit native throws BackendUnavailableError', async () => {
    const proc = globalThis.process as { getBuiltinModule?: unknown };
    const original = proc.getBuiltinModule;
    proc.getBuiltinModule = undefined;
    try {
      // The cache may already hold a native instance: test the auto path on a fresh module.
      vi.resetModules();
      const fresh = await import('../../src/crypto/select.js');
      const freshErrors = await import('../../src/errors.js'); // the class instances of the fresh module graph
      delete process.env[ENV];
      // select.ts does not import noble itself (noble-registry.ts); with no `require` to
      // load it, the portable backend is there once something imported it, as every public
      // entry point (pqmcp, pqmcp/browser) does. Before that: a clear typed error.
      expect(() => fresh.selectBackend()).toThrow(freshErrors.BackendUnavailableError);
      await import('../../src/crypto/noble.js');
      expect(fresh.selectBackend().name).toBe('noble');
      expect(() => fresh.selectBackend('native')).toThrow(freshErrors.BackendUnavailableError);
    } finally {
      proc.getBuiltinModule = original;
    }
  });
});

describe('backend reports', () => {
  it('noble reports noble for everything', () => {
    expect(noble.report).toEqual({ name: 'noble', mlkem: 'noble', mldsa: 'noble', x25519: 'noble', ed25519: 'noble', aead: 'noble', hash: 'noble' });
  });

  it('native reports what this runtime really provides', () => {
    const mlkem = runtimeHas('ml-kem-768', 64) ? 'native' : 'noble';
    const mldsa = runtimeHas('ml-dsa-65', 32) ? 'native' : 'noble';
    expect(native.report).toEqual({ name: 'native', mlkem, mldsa, x25519: 'native', ed25519: 'native', aead: 'native', hash: 'native' });
    if (Number(process.versions.node.split('.')[0]) < 22) {
      expect(native.report.mlkem).toBe('noble');
      expect(native.report.mldsa).toBe('noble');
    }
  });

  it('the ML-KEM report matches the secret key actually produced', () => {
    const { secretKey } = native.mlkem768.keygen(new Uint8Array(64));
    if (native.report.mlkem === 'native') expect(secretKey).toBeInstanceOf(nodeCrypto.KeyObject);
    else expect(secretKey).toBeInstanceOf(Uint8Array);
  });

  it('the ML-DSA report matches the key cached on the key pair', () => {
    const kp = native.mldsa65.keygen(new Uint8Array(32));
    const cached = Object.getOwnPropertySymbols(kp).map((s) => (kp as unknown as Record<symbol, unknown>)[s]);
    expect(cached.some((v) => v instanceof nodeCrypto.KeyObject)).toBe(native.report.mldsa === 'native');
  });

  it('describeBackend gives a one-line summary', () => {
    expect(describeBackend(noble)).toBe('noble (ML-KEM: noble, ML-DSA: noble, AEAD: noble)');
    const line = describeBackend(native);
    expect(line).toBe(`native (ML-KEM: ${native.report.mlkem}, ML-DSA: ${native.report.mldsa}, AEAD: native)`);
    expect(line).not.toContain('\n');
  });
});
