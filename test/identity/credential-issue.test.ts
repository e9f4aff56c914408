import { beforeAll, describe, expect, it } from 'vitest';
import { toHex, utf8Encode } from '../../src/bytes.js';
import { compositeKeygen, compositeVerify } from '../../src/crypto/composite.js';
import type { CompositeKeyPair } from '../../src/crypto/composite.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { DEFAULT_VALIDITY_SECONDS, decodeCredential, encodeCredentialTbs, issueCredential, selfSignedCredential } from '../../src/identity/credential.js';
import type { CredentialSubject, IssueOptions } from '../../src/identity/credential.js';
import { keyFingerprint } from '../../src/identity/fingerprint.js';
import { backend, deterministicRandom, expectError, seedFor } from './helpers.js';

let issuer: CompositeKeyPair;
let agent: CompositeKeyPair;
const NOW_MS = 1_750_000_000_123;
const fixedClock = (): number => NOW_MS;

beforeAll(() => {
  issuer = compositeKeygen(backend, seedFor('issue-issuer'));
  agent = compositeKeygen(backend, seedFor('issue-agent'));
});

function subject(over: Partial<CredentialSubject> = {}): CredentialSubject {
  return { agentId: 'agent://acme/planner', displayName: 'Planner', publicKey: agent.publicKey, scopes: ['b', 'a'], attributes: { team: 'x' }, ...over };
}

function issue(over: Partial<CredentialSubject> = {}, options: IssueOptions = { now: fixedClock }) {
  return issueCredential(backend, { id: 'issuer://acme', keyPair: issuer }, subject(over), options);
}

describe('issueCredential', () => {
  it('is byte-for-byte deterministic with injected randomness and clock', () => {
    const a = issue({}, { now: fixedClock, randomness: deterministicRandom('kat') });
    const b = issue({}, { now: fixedClock, randomness: deterministicRandom('kat') });
    expect(b.encoded).toEqual(a.encoded);
    // Serial is the first draw (16 bytes), then ML-DSA's rnd.
    expect(a.serial).toEqual(deterministicRandom('kat')(16));
    // Regression pin of the whole encoding (produced by this implementation).
    expect(toHex(backend.sha256(a.encoded))).toBe(KAT_SHA256);
    const c = issue({}, { now: fixedClock, randomness: deterministicRandom('other') });
    expect(c.serial).not.toEqual(a.serial);
    expect(c.signature).not.toEqual(a.signature);
  });

  it('signs the TBS under the issuer key with the "PQMCP/1 credential" context', () => {
    const c = issue();
    expect(compositeVerify(backend, issuer.publicKey, c.tbs, c.signature, utf8Encode('PQMCP/1 credential'))).toBe(true);
    expect(compositeVerify(backend, issuer.publicKey, c.tbs, c.signature, utf8Encode('PQMCP/1 credentiaL'))).toBe(false);
    expect(compositeVerify(backend, agent.publicKey, c.tbs, c.signature, utf8Encode('PQMCP/1 credential'))).toBe(false);
    expect(c.issuerFingerprint).toEqual(keyFingerprint(backend, issuer.publicKey));
  });

  it('without injected randomness, draws a fresh 16-byte serial each time', () => {
    const a = issue();
    const b = issue();
    expect(a.serial).toHaveLength(16);
    expect(a.serial).not.toEqual(b.serial);
  });

  it('defaults: now for notBefore (whole seconds), 30 days of validity, empty name/scopes/attributes', () => {
    const c = issueCredential(backend, { id: 'issuer://acme', keyPair: issuer }, { agentId: 'agent://a', publicKey: agent.publicKey }, { now: fixedClock });
    expect(c.notBefore).toBe(1_750_000_000);
    expect(c.notAfter).toBe(1_750_000_000 + DEFAULT_VALIDITY_SECONDS);
    expect(DEFAULT_VALIDITY_SECONDS).toBe(2_592_000);
    expect(c.displayName).toBe('');
    expect(c.scopes).toEqual([]);
    expect(c.attributes).toEqual({});
  });

  it('honours validForSeconds, explicit windows and explicit serials', () => {
    expect(issue({ validForSeconds: 3600 }).notAfter).toBe(1_750_000_000 + 3600);
    const explicit = issue({ notBefore: 100, notAfter: 200, serial: Uint8Array.of(1, 2, 3) });
    expect([explicit.notBefore, explicit.notAfter]).toEqual([100, 200]);
    expect(explicit.serial).toEqual(Uint8Array.of(1, 2, 3));
    expect(issue({ notBefore: 500, validForSeconds: 10 }).notAfter).toBe(510);
  });

  it('sorts scopes and attributes by UTF-8 bytes, whatever the input order', () => {
    const c = issue({ scopes: ['tools:call', 'Admin', 'prompts:get', '\u{1F600}', '\uFF21'], attributes: { zeta: '1', '9': 'nine', '10': 'ten', Alpha: 'A' } });
    expect(c.scopes).toEqual(['Admin', 'prompts:get', 'tools:call', '\uFF21', '\u{1F600}']);
    // The encoding uses byte order ("10" < "9" < "Alpha" < "zeta"), even though a JS object
    // lists integer-like keys first, in numeric order.
    const text = Buffer.from(c.tbs).toString('latin1');
    const at = (key: string): number => text.indexOf(String.fromCharCode(key.length) + key);
    expect(at('10')).toBeLessThan(at('9'));
    expect(at('9')).toBeLessThan(at('Alpha'));
    expect(at('Alpha')).toBeLessThan(at('zeta'));
    expect(c.attributes).toEqual({ '10': 'ten', '9': 'nine', Alpha: 'A', zeta: '1' });
    expect(encodeCredentialTbs(c)).toEqual(c.tbs);
  });

  const refused: [string, Partial<CredentialSubject>, RegExp][] = [
    ['duplicate scopes', { scopes: ['a', 'b', 'a'] }, /duplicate/],
    ['an agent id without a scheme', { agentId: 'planner' }, /agentId/],
    ['an agent id with whitespace', { agentId: 'agent://acme/a b' }, /agentId/],
    ['an empty agent id', { agentId: '' }, /agentId/],
    ['an agent id over 255 bytes', { agentId: `agent://${'é'.repeat(124)}` }, /agentId.*255/],
    ['a display name with a control character', { displayName: 'a\u001bb' }, /displayName.*control/],
    ['a display name with a lone surrogate', { displayName: 'a\uD800b' }, /displayName.*surrogate/],
    ['a scope with whitespace', { scopes: ['read write'] }, /scopes\[0\].*whitespace/],
    ['an empty scope', { scopes: [''] }, /scopes\[0\]/],
    ['a non-string scope', { scopes: [42 as unknown as string] }, /scopes\[0\].*string/],
    ['scopes given as a string', { scopes: 'read' as unknown as string[] }, /scopes must be an array/],
    ['65 scopes', { scopes: Array.from({ length: 65 }, (_, i) => `s${i}`) }, /at most 64 scopes/],
    ['an attribute key with a space', { attributes: { 'a b': 'x' } }, /attribute key/],
    ['an attribute key over 64 bytes', { attributes: { ['k'.repeat(65)]: 'x' } }, /attribute key/],
    ['a non-string attribute value', { attributes: { a: 1 as unknown as string } }, /attributes\["a"\].*string/],
    ['an attribute value with NUL', { attributes: { a: 'x\u0000' } }, /attributes\["a"\].*NUL/],
    ['an attribute value over 1024 bytes', { attributes: { a: 'v'.repeat(1025) } }, /attributes\["a"\]/],
    ['attributes given as a Map', { attributes: new Map([['a', 'b']]) as unknown as Record<string, string> }, /attributes must be an object/],
    ['65 attributes', { attributes: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) }, /at most 64 attributes/],
    ['a public key of the wrong length', { publicKey: new Uint8Array(1952) }, /publicKey must be 1984 bytes/],
    ['a usage that is not client, server or both', { usage: 'admin' as never }, /usage must be "client", "server" or "both"/],
    ['an empty serial', { serial: new Uint8Array(0) }, /serial/],
    ['a 33-byte serial', { serial: new Uint8Array(33) }, /serial/],
    ['notAfter and validForSeconds together', { notAfter: 2_000_000_000, validForSeconds: 10 }, /not both/],
    ['notAfter equal to notBefore', { notBefore: 100, notAfter: 100 }, /notAfter must be later/],
    ['a fractional notBefore', { notBefore: 1.5 }, /notBefore/],
    ['a negative notBefore', { notBefore: -1 }, /notBefore/],
    ['a zero validity', { validForSeconds: 0 }, /validForSeconds/],
    ['a credential over 16384 bytes', { attributes: Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`k${i}`, 'v'.repeat(1024)])) }, /maximum of 16384/],
  ];

  it.each(refused)('refuses %s with InvalidArgumentError, drawing no randomness', (_name, over, message) => {
    let draws = 0;
    const randomness = (n: number): Uint8Array => {
      draws++;
      return new Uint8Array(n);
    };
    const err = expectError(() => issue(over, { now: fixedClock, randomness }), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    expect(err.message).toMatch(message);
    expect(draws).toBe(0);
  });

  it('refuses a bad issuer id, a bad issuer, a bad clock and short randomness', () => {
    const s = subject();
    expectError(() => issueCredential(backend, { id: 'acme', keyPair: issuer }, s), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    expectError(() => issueCredential(backend, undefined as never, s), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    expectError(() => issueCredential(backend, { id: 'issuer://acme', keyPair: issuer }, s, { now: () => Number.NaN }), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    const short = expectError(() => issue({}, { now: fixedClock, randomness: (n) => new Uint8Array(n - 1) }), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    expect(short.message).toMatch(/randomness/);
  });

  it('accepts a credential of exactly 16384 bytes and refuses one byte more', () => {
    const big = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, 'v'.repeat(1024)]));
    const fields = { ...issue(), attributes: { ...big, pad: '' } };
    const room = 16384 - (encodeCredentialTbs(fields).length + 2 + 2 + 3373);
    expect(room).toBeGreaterThan(0);
    const c = issue({ attributes: { ...big, pad: 'p'.repeat(room) } });
    expect(c.encoded.length).toBe(16384);
    expect(decodeCredential(c.encoded)).toEqual(c);
    const err = expectError(() => issue({ attributes: { ...big, pad: 'p'.repeat(room + 1) } }), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    expect(err.message).toMatch(/16385 bytes, above the maximum of 16384/);
  });
});

describe('selfSignedCredential', () => {
  it('uses the agent id as issuer id and its own fingerprint, signed by its own key', () => {
    const c = selfSignedCredential(backend, { agentId: 'agent://solo', displayName: 'Solo', keyPair: agent, scopes: ['x'] }, { now: fixedClock });
    expect(c.issuerId).toBe('agent://solo');
    expect(c.agentId).toBe('agent://solo');
    expect(c.issuerFingerprint).toEqual(keyFingerprint(backend, agent.publicKey));
    expect(c.publicKey).toEqual(agent.publicKey);
    expect(compositeVerify(backend, agent.publicKey, c.tbs, c.signature, utf8Encode('PQMCP/1 credential'))).toBe(true);
  });

  it('is deterministic with injected randomness', () => {
    const opts = (): IssueOptions => ({ now: fixedClock, randomness: deterministicRandom('self') });
    const a = selfSignedCredential(backend, { agentId: 'agent://solo', keyPair: agent }, opts());
    const b = selfSignedCredential(backend, { agentId: 'agent://solo', keyPair: agent }, opts());
    expect(a.encoded).toEqual(b.encoded);
  });

  it('refuses a missing key pair', () => {
    expectError(() => selfSignedCredential(backend, { agentId: 'agent://solo' } as never), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
  });
});

const KAT_SHA256 = '5cc321dc80b264e2d205e4e540fc6fe1050b2f68d4858a1e3ecda69683dddee6';
