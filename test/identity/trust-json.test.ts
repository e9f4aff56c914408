import { describe, expect, it } from 'vitest';
import { compositeKeygen } from '../../src/crypto/composite.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { base64urlDecode, base64urlEncode } from '../../src/identity/base64url.js';
import { issueCredential } from '../../src/identity/credential.js';
import { fingerprintHex } from '../../src/identity/fingerprint.js';
import { createIssuer } from '../../src/identity/identity.js';
import type { Issuer } from '../../src/identity/identity.js';
import { TrustStore } from '../../src/identity/trust.js';
import type { TrustStoreJson } from '../../src/identity/trust.js';
import { backend, expectError, seedFor } from './helpers.js';

// Key generation only (no signing), at module level: the it.each tables below need them
// when the file is collected, before any beforeAll hook runs.
const acme: Issuer = createIssuer(backend, { id: 'issuer://acme', seed: seedFor('json-acme') });
const beta: Issuer = createIssuer(backend, { id: 'issuer://beta', seed: seedFor('json-beta') });
const agentPublicKey: Uint8Array = compositeKeygen(backend, seedFor('json-agent')).publicKey;
const FP_A = 'ab'.repeat(32);
const FP_B = 'cd'.repeat(32);

function full(): TrustStore {
  return new TrustStore({
    issuers: [{ id: acme.id, publicKey: acme.publicKey }, { id: beta.id, publicKey: beta.publicKey }],
    pinned: [{ fingerprint: FP_A, agentId: 'agent://acme/a' }, { fingerprint: FP_B.toUpperCase(), agentId: 'agent://acme/planner' }],
    revokedSerials: [{ issuer: 'issuer://acme', serial: '00FF10' }],
    revokedKeys: [FP_B],
  });
}

describe('TrustStore JSON', () => {
  it('toJSON has version 1, base64url keys and lowercase hex', () => {
    const json = full().toJSON();
    expect(json).toEqual({
      version: 1,
      issuers: [
        { id: 'issuer://acme', publicKey: base64urlEncode(acme.publicKey) },
        { id: 'issuer://beta', publicKey: base64urlEncode(beta.publicKey) },
      ],
      pinned: [{ fingerprint: FP_A, agentId: 'agent://acme/a' }, { fingerprint: FP_B, agentId: 'agent://acme/planner' }],
      revokedSerials: [{ issuer: 'issuer://acme', serial: '00ff10' }],
      revokedKeys: [FP_B],
    });
    expect(json.issuers[0]!.publicKey).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(json.issuers[0]!.publicKey).toHaveLength(2646); // ceil(1984 * 4 / 3), unpadded
  });

  it('round trips through JSON text and through the object', () => {
    const store = full();
    const text = JSON.stringify(store);
    expect(TrustStore.fromJSON(text).toJSON()).toEqual(store.toJSON());
    expect(TrustStore.fromJSON(JSON.parse(text)).toJSON()).toEqual(store.toJSON());
    expect(TrustStore.fromJSON({ version: 1 }).toJSON()).toEqual({ version: 1, issuers: [], pinned: [], revokedSerials: [], revokedKeys: [] });
  });

  it('a store loaded from JSON verifies like the original', () => {
    const cred = issueCredential(backend, acme, { agentId: 'agent://acme/x', publicKey: agentPublicKey, notBefore: 1000, notAfter: 2000 });
    const loaded = TrustStore.fromJSON(JSON.stringify(full()));
    expect(loaded.verifyCredential(backend, cred.encoded, { now: () => 1500_000 }).issuer).toBe('issuer://acme');
  });

  it('deduplicates identical entries', () => {
    const store = full();
    store.addIssuer({ id: acme.id, publicKey: acme.publicKey }).addPin({ fingerprint: FP_A, agentId: 'agent://acme/a' }).revokeSerial({ issuer: 'issuer://acme', serial: '00ff10' }).revokeKey(FP_B.toUpperCase());
    expect(store.toJSON()).toEqual(full().toJSON());
  });

  const valid = (): Record<string, unknown> => JSON.parse(JSON.stringify(full())) as Record<string, unknown>;
  const withField = (path: (string | number)[], value: unknown): unknown => {
    const doc = valid();
    let target: Record<string | number, unknown> = doc;
    for (const key of path.slice(0, -1)) target = target[key] as Record<string | number, unknown>;
    const last = path[path.length - 1]!;
    if (value === undefined) delete target[last];
    else target[last] = value;
    return doc;
  };

  const malformed: [string, unknown, RegExp][] = [
    ['not JSON text', '{"version": 1', /not valid JSON/],
    ['an array', [], /document must be an object/],
    ['null', null, /document must be an object/],
    ['a number', 42, /document must be an object/],
    ['no version', withField(['version'], undefined), /version must be 1/],
    ['version 2', withField(['version'], 2), /version must be 1/],
    ['version "1"', withField(['version'], '1'), /version must be 1/],
    ['an unknown top-level field', withField(['revokedSerial'], []), /document has an unknown field "revokedSerial"/],
    ['issuers not an array', withField(['issuers'], {}), /issuers must be an array/],
    ['an issuer that is a string', withField(['issuers', 1], 'issuer://beta'), /issuers\[1\] must be an object/],
    ['an issuer without id', withField(['issuers', 0, 'id'], undefined), /issuers\[0\]\.id must be a string/],
    ['an issuer id without scheme', withField(['issuers', 0, 'id'], 'acme'), /issuers\[0\]\.id must be a URI/],
    ['an issuer with an unknown field', withField(['issuers', 0, 'key'], 'x'), /issuers\[0\] has an unknown field "key"/],
    ['an issuer key in standard base64', withField(['issuers', 0, 'publicKey'], 'ab+/'), /issuers\[0\]\.publicKey must be unpadded base64url/],
    ['an issuer key with padding', withField(['issuers', 0, 'publicKey'], 'AAA='), /issuers\[0\]\.publicKey/],
    ['an issuer key too short', withField(['issuers', 0, 'publicKey'], base64urlEncode(new Uint8Array(1983))), /issuers\[0\]\.publicKey.*1984-byte/],
    ['an issuer key as bytes', withField(['issuers', 0, 'publicKey'], [1, 2, 3]), /issuers\[0\]\.publicKey/],
    ['an issuer key of one character', withField(['issuers', 1, 'publicKey'], 'x'), /issuers\[1\]\.publicKey/],
    ['pinned not an array', withField(['pinned'], 'x'), /pinned must be an array/],
    ['a pin with a short fingerprint', withField(['pinned', 0, 'fingerprint'], 'ab'), /pinned\[0\]\.fingerprint must be a 64-character hex/],
    ['a pin with non-hex', withField(['pinned', 0, 'fingerprint'], 'zz'.repeat(32)), /pinned\[0\]\.fingerprint/],
    ['a pin with a bad agent id', withField(['pinned', 1, 'agentId'], 'not an id'), /pinned\[1\]\.agentId/],
    ['a pin with an unknown field', withField(['pinned', 0, 'agent'], 'agent://x'), /pinned\[0\] has an unknown field "agent"/],
    ['a revoked serial without issuer', withField(['revokedSerials', 0, 'issuer'], undefined), /revokedSerials\[0\]\.issuer/],
    ['a revoked serial of odd length', withField(['revokedSerials', 0, 'serial'], 'abc'), /revokedSerials\[0\]\.serial must be hex of 1\.\.32 bytes/],
    ['an empty revoked serial', withField(['revokedSerials', 0, 'serial'], ''), /revokedSerials\[0\]\.serial/],
    ['a 33-byte revoked serial', withField(['revokedSerials', 0, 'serial'], '00'.repeat(33)), /revokedSerials\[0\]\.serial/],
    ['a revoked serial as a number', withField(['revokedSerials', 0, 'serial'], 255), /revokedSerials\[0\]\.serial/],
    ['a revoked key that is not hex', withField(['revokedKeys', 0], 'g'.repeat(64)), /revokedKeys\[0\] must be a 64-character hex/],
    ['revokedKeys not an array', withField(['revokedKeys'], FP_A), /revokedKeys must be an array/],
  ];

  it.each(malformed)('refuses %s with InvalidArgumentError naming the field', (_name, doc, message) => {
    const err = expectError(() => TrustStore.fromJSON(doc), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    expect(err.message).toMatch(/^trust store JSON: /);
    expect(err.message).toMatch(message);
  });

  it('never echoes the bad value', () => {
    const err = expectError(() => TrustStore.fromJSON(withField(['pinned', 0, 'fingerprint'], 'SECRETMARKER')), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    expect(err.message).not.toContain('SECRETMARKER');
  });
});

describe('TrustStore construction and mutation', () => {
  it('validates constructor options with InvalidArgumentError', () => {
    const cases: [unknown, RegExp][] = [
      [{ issuers: [{ id: 'issuer://a', publicKey: new Uint8Array(10) }] }, /issuers\[0\]\.publicKey must be a 1984-byte/],
      [{ issuers: [{ id: 'issuer://a', publicKey: base64urlEncode(acme.publicKey) }] }, /issuers\[0\]\.publicKey/],
      [{ issuers: [{ id: 'bad id', publicKey: acme.publicKey }] }, /issuers\[0\]\.id/],
      [{ pinned: [{ fingerprint: 'xyz' }] }, /pinned\[0\]\.fingerprint/],
      [{ revokedSerials: [{ issuer: 'issuer://a', serial: 'q' }] }, /revokedSerials\[0\]\.serial/],
      [{ revokedKeys: 'abc' }, /revokedKeys must be an array/],
      ['options', /options must be an object/],
    ];
    for (const [options, message] of cases) {
      const err = expectError(() => new TrustStore(options as never), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
      expect(err.message).toMatch(message);
    }
  });

  it('copies issuer keys: changing the caller array afterwards changes nothing', () => {
    const key = acme.publicKey.slice();
    const store = new TrustStore({ issuers: [{ id: acme.id, publicKey: key }] });
    key.fill(0);
    expect(store.toJSON().issuers[0]!.publicKey).toBe(base64urlEncode(acme.publicKey));
  });

  it('refuses the same issuer key under a second id', () => {
    const store = new TrustStore({ issuers: [{ id: acme.id, publicKey: acme.publicKey }] });
    const err = expectError(() => store.addIssuer({ id: 'issuer://alias', publicKey: acme.publicKey }), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    expect(err.message).toMatch(/already trusted under another id/);
  });

  it('validates add and revoke arguments', () => {
    const store = new TrustStore();
    expectError(() => store.addPin({ fingerprint: 'ab', agentId: 'agent://a' }), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    expectError(() => store.addPin({ fingerprint: FP_A } as never), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    expectError(() => store.addPin({ fingerprint: FP_A, agentId: 'x y' }), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    expectError(() => store.revokeKey('ab'), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    expectError(() => store.revokeSerial({ issuer: 'issuer://a', serial: new Uint8Array(0) }), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    expectError(() => store.revokeSerial({ issuer: 'a', serial: '01' }), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    expect(store.toJSON()).toEqual({ version: 1, issuers: [], pinned: [], revokedSerials: [], revokedKeys: [] });
  });

  it('accepts the issuer helper object and fingerprints as produced by fingerprintHex', () => {
    const store = new TrustStore().addIssuer(acme).addPin({ fingerprint: fingerprintHex(backend, agentPublicKey), agentId: 'agent://acme/a' });
    expect(store.toJSON().issuers).toEqual([{ id: 'issuer://acme', publicKey: base64urlEncode(acme.publicKey) }]);
  });
});

describe('base64url', () => {
  it('matches Node for every length 0..40 and round trips', () => {
    for (let n = 0; n <= 40; n++) {
      const bytes = backend.shake256(Uint8Array.of(n), n);
      const text = base64urlEncode(bytes);
      expect(text).toBe(Buffer.from(bytes).toString('base64url'));
      expect(base64urlDecode(text)).toEqual(bytes);
    }
  });

  it('refuses non-canonical or foreign input', () => {
    for (const bad of ['A', 'AB=', 'AAA=', 'ab+/', 'ab cd', 'AB\n', 'Ag=', 'AQ==', 'AR', 'AAB', '\u00e9\u00e9']) {
      expect(base64urlDecode(bad), bad).toBeUndefined();
    }
    expect(base64urlDecode('AQ')).toEqual(Uint8Array.of(1));
    expect(base64urlDecode('')).toEqual(new Uint8Array(0));
    expect(base64urlDecode(42 as unknown as string)).toBeUndefined();
  });
});

// Type check: the JSON type is what toJSON returns.
const _typecheck: (s: TrustStore) => TrustStoreJson = (s) => s.toJSON();
void _typecheck;
