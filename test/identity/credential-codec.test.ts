import { beforeAll, describe, expect, it } from 'vitest';
import { concat, utf8Encode } from '../../src/bytes.js';
import { compositeKeygen } from '../../src/crypto/composite.js';
import type { CompositeKeyPair } from '../../src/crypto/composite.js';
import { DecodeError } from '../../src/errors.js';
import { MAX_CREDENTIAL_LENGTH, decodeCredential, encodeCredentialTbs, issueCredential } from '../../src/identity/credential.js';
import type { Credential } from '../../src/identity/credential.js';
import { keyFingerprint } from '../../src/identity/fingerprint.js';
import { backend, buildRaw, deterministicRandom, expectError, rawDefaults, regions, seedFor } from './helpers.js';
import type { RawCredential } from './helpers.js';

const enc = utf8Encode;

let issuer: CompositeKeyPair;
let agent: CompositeKeyPair;
let issued: Credential;

beforeAll(() => {
  issuer = compositeKeygen(backend, seedFor('codec-issuer'));
  agent = compositeKeygen(backend, seedFor('codec-agent'));
  issued = issueCredential(
    backend,
    { id: 'issuer://acme', keyPair: issuer },
    {
      agentId: 'agent://acme/planner',
      displayName: 'Planner ✓',
      publicKey: agent.publicKey,
      usage: 'server',
      scopes: ['tools:call', 'resources:read'],
      attributes: { team: 'search', env: 'prod' },
      notBefore: 1_750_000_000,
      validForSeconds: 86_400,
    },
    { randomness: deterministicRandom('codec') },
  );
});

describe('credential encoding: round trip and layout', () => {
  it('decodes what was issued, field for field', () => {
    const decoded = decodeCredential(issued.encoded);
    expect(decoded).toEqual(issued);
    expect(decoded.agentId).toBe('agent://acme/planner');
    expect(decoded.displayName).toBe('Planner ✓');
    expect(decoded.publicKey).toEqual(agent.publicKey);
    expect(decoded.usage).toBe('server');
    expect(decoded.scopes).toEqual(['resources:read', 'tools:call']);
    expect(decoded.attributes).toEqual({ env: 'prod', team: 'search' });
    expect(Object.keys(decoded.attributes)).toEqual(['env', 'team']);
    expect(decoded.notBefore).toBe(1_750_000_000);
    expect(decoded.notAfter).toBe(1_750_086_400);
    expect(decoded.serial).toHaveLength(16);
    expect(decoded.issuerId).toBe('issuer://acme');
    expect(decoded.issuerFingerprint).toEqual(keyFingerprint(backend, issuer.publicKey));
    expect(decoded.signature).toHaveLength(3373);
  });

  it('re-encoding the decoded fields gives the exact TBS bytes', () => {
    expect(encodeCredentialTbs(issued)).toEqual(issued.tbs);
    expect(issued.encoded).toEqual(concat(issued.tbs, Uint8Array.of(0x00, 0x01, 0x0d, 0x2d), issued.signature));
  });

  it('follows the documented byte layout', () => {
    const b = issued.encoded;
    const r = Object.fromEntries(regions(b).map((x) => [x.name, b.subarray(x.start, x.end)]));
    expect(new TextDecoder().decode(r.type_tag)).toBe('PQCR');
    expect([...r.version!]).toEqual([1]);
    expect(r.agent_id).toEqual(concat(Uint8Array.of(20), enc('agent://acme/planner')));
    expect(r.display_name).toEqual(concat(Uint8Array.of(enc('Planner ✓').length), enc('Planner ✓')));
    expect([...r.key_algorithm!]).toEqual([0x00, 0x01]);
    expect(r.public_key).toEqual(concat(Uint8Array.of(0x07, 0xc0), agent.publicKey));
    expect([...r.usage!]).toEqual([2]);
    expect(r.scopes).toEqual(concat(Uint8Array.of(0, 26), Uint8Array.of(14), enc('resources:read'), Uint8Array.of(10), enc('tools:call')));
    expect(r.attributes).toEqual(
      concat(Uint8Array.of(0, 23), Uint8Array.of(3), enc('env'), Uint8Array.of(0, 4), enc('prod'), Uint8Array.of(4), enc('team'), Uint8Array.of(0, 6), enc('search')),
    );
    // 1_750_000_000 = 0x684EE180
    expect([...r.not_before!]).toEqual([0, 0, 0, 0, 0x68, 0x4e, 0xe1, 0x80]);
    expect(r.serial![0]).toBe(16);
    expect(r.issuer_id).toEqual(concat(Uint8Array.of(13), enc('issuer://acme')));
    expect(r.issuer_fingerprint).toEqual(keyFingerprint(backend, issuer.publicKey));
    expect([...r.signature_algorithm!]).toEqual([0x00, 0x01]);
    expect(r.signature).toEqual(concat(Uint8Array.of(0x0d, 0x2d), issued.signature));
    const tbsEnd = regions(b).find((x) => x.name === 'issuer_fingerprint')!.end;
    expect(issued.tbs).toEqual(b.subarray(0, tbsEnd));
  });

  it('owns its bytes: changing the input afterwards changes nothing', () => {
    const input = issued.encoded.slice();
    const decoded = decodeCredential(input);
    input.fill(0);
    expect(decoded.encoded).toEqual(issued.encoded);
    expect(decoded.publicKey).toEqual(agent.publicKey);
    expect(decoded.tbs).toEqual(issued.tbs);
  });

  it('holds one copy: publicKey, tbs and signature are views into `encoded` (a peer credential lives as long as its session)', () => {
    const decoded = decodeCredential(issued.encoded.slice());
    for (const part of [decoded.publicKey, decoded.tbs, decoded.signature]) expect(part.buffer).toBe(decoded.encoded.buffer);
    expect(decoded.encoded.byteLength).toBe(decoded.encoded.buffer.byteLength);
    expect(decoded.signature).toEqual(decoded.encoded.subarray(decoded.encoded.length - 3373));
  });

  it('accepts the boundary cases of the layout', () => {
    const d = decodeCredential(
      buildRaw({
        displayName: new Uint8Array(0),
        scopes: [],
        attributes: [],
        serial: Uint8Array.of(0),
        notBefore: 0,
        notAfter: 2 ** 53 - 1,
      }),
    );
    expect(d.displayName).toBe('');
    expect(d.scopes).toEqual([]);
    expect(d.attributes).toEqual({});
    expect(d.notAfter).toBe(Number.MAX_SAFE_INTEGER);
    const many = Array.from({ length: 64 }, (_, i) => enc(`s${String(i).padStart(2, '0')}`));
    expect(decodeCredential(buildRaw({ scopes: many })).scopes).toHaveLength(64);
    const manyAttributes = Array.from({ length: 64 }, (_, i): [Uint8Array, Uint8Array] => [enc(`k${String(i).padStart(2, '0')}`), enc('v')]);
    expect(Object.keys(decodeCredential(buildRaw({ attributes: manyAttributes })).attributes)).toHaveLength(64);
    const longest = decodeCredential(buildRaw({ agentId: enc(`agent://${'a'.repeat(247)}`), serial: new Uint8Array(32), attributes: [[enc('k'.repeat(64)), enc('v'.repeat(1024))]] }));
    expect(longest.agentId).toHaveLength(255);
  });

  it('keeps a leading U+FEFF instead of silently stripping it (canonical UTF-8)', () => {
    const d = decodeCredential(buildRaw({ displayName: enc('\uFEFFPlanner') }));
    expect(d.displayName).toBe('\uFEFFPlanner');
    expect(encodeCredentialTbs(d)).toEqual(d.tbs);
  });

  it('keeps an attribute named __proto__ as an own property', () => {
    const d = decodeCredential(buildRaw({ attributes: [[enc('__proto__'), enc('x')], [enc('a'), enc('y')]] }));
    expect(Object.keys(d.attributes)).toEqual(['__proto__', 'a']);
    expect(Object.getOwnPropertyDescriptor(d.attributes, '__proto__')?.value).toBe('x');
    expect(Object.getPrototypeOf(d.attributes)).toBe(Object.prototype);
    expect(encodeCredentialTbs(d)).toEqual(d.tbs);
  });

  it('orders by UTF-8 bytes, not UTF-16 code units', () => {
    // U+FF21 is EF BC A1 in UTF-8, U+1F600 is F0 9F 98 80; in UTF-16 the surrogate D83D sorts first.
    const ok = decodeCredential(buildRaw({ scopes: [enc('\uFF21'), enc('\u{1F600}')] }));
    expect(ok.scopes).toEqual(['\uFF21', '\u{1F600}']);
    expectError(() => decodeCredential(buildRaw({ scopes: [enc('\u{1F600}'), enc('\uFF21')] })), DecodeError, 'ERR_DECODE');
  });
});

describe('credential decoding refuses every non-canonical or malformed encoding', () => {
  const bad: [string, Partial<RawCredential>, RegExp][] = [
    ['wrong type tag', { tag: enc('PQCX') }, /type_tag/],
    ['version 0', { version: 0 }, /version/],
    ['version 2', { version: 2 }, /version/],
    ['empty agent_id', { agentId: new Uint8Array(0) }, /agent_id/],
    ['agent_id without a scheme', { agentId: enc('acme/planner') }, /agent_id/],
    ['agent_id with a space', { agentId: enc('agent://acme/plan ner') }, /agent_id/],
    ['agent_id with a non-breaking space', { agentId: enc('agent://acme/plan\u00a0ner') }, /agent_id/],
    ['agent_id with a control character', { agentId: enc('agent://acme/\u0007') }, /agent_id.*control/],
    ['agent_id with NUL', { agentId: enc('agent://acme/a\u0000b') }, /agent_id.*NUL/],
    ['agent_id with a leading BOM', { agentId: enc('\uFEFFagent://acme/planner') }, /agent_id/],
    ['agent_id invalid UTF-8', { agentId: Uint8Array.of(0x61, 0x3a, 0x2f, 0xff) }, /agent_id.*UTF-8/],
    ['display_name with a newline', { displayName: enc('Plan\nner') }, /display_name.*control/],
    ['display_name with a C1 control', { displayName: enc('Plan\u0085ner') }, /display_name.*control/],
    ['display_name with NUL', { displayName: enc('Plan\u0000ner') }, /display_name.*NUL/],
    ['display_name overlong UTF-8', { displayName: Uint8Array.of(0x41, 0xc0, 0xaf) }, /display_name.*UTF-8/],
    ['display_name UTF-8 encoded surrogate', { displayName: Uint8Array.of(0xed, 0xa0, 0x80) }, /display_name.*UTF-8/],
    ['display_name truncated UTF-8 sequence', { displayName: Uint8Array.of(0x41, 0xe2, 0x9c) }, /display_name.*UTF-8/],
    ['key_algorithm 2', { keyAlgorithm: 2 }, /key_algorithm/],
    ['key_algorithm 0', { keyAlgorithm: 0 }, /key_algorithm/],
    ['public_key of 1983 bytes', { publicKey: new Uint8Array(1983) }, /public_key/],
    ['public_key of 1985 bytes', { publicKey: new Uint8Array(1985) }, /public_key/],
    ['public_key empty', { publicKey: new Uint8Array(0) }, /public_key/],
    ['usage 0', { usage: 0 }, /^credential usage 0 is not 1 \(client\), 2 \(server\) or 3 \(both\)$/],
    ['usage 4', { usage: 4 }, /^credential usage 4 is not/],
    ['usage 255', { usage: 255 }, /^credential usage 255 is not/],
    ['unsorted scopes', { scopes: [enc('mcp:write'), enc('mcp:read')] }, /scopes.*order/],
    ['duplicate scopes', { scopes: [enc('mcp:read'), enc('mcp:read')] }, /scopes.*duplicate/],
    ['empty scope', { scopes: [new Uint8Array(0), enc('a')] }, /scopes entry/],
    ['scope with a space', { scopes: [enc('mcp read')] }, /scopes\[0\].*whitespace/],
    ['scope with a tab', { scopes: [enc('a'), enc('mcp\tread')] }, /scopes\[1\]/],
    ['scope with a control character', { scopes: [enc('mcp\u0001read')] }, /scopes\[0\].*control/],
    ['scope invalid UTF-8', { scopes: [Uint8Array.of(0x80)] }, /scopes\[0\].*UTF-8/],
    ['65 scopes', { scopes: Array.from({ length: 65 }, (_, i) => enc(`s${String(i).padStart(2, '0')}`)) }, /scopes.*more than 64/],
    ['scope entry overrunning its list', { scopesList: Uint8Array.of(5, 0x61, 0x62) }, /truncated.*scopes entry/],
    ['unsorted attributes', { attributes: [[enc('team'), enc('x')], [enc('env'), enc('y')]] }, /attributes.*order/],
    ['duplicate attribute key', { attributes: [[enc('env'), enc('x')], [enc('env'), enc('y')]] }, /attributes.*duplicate key/],
    ['attribute key with a space', { attributes: [[enc('a b'), enc('x')]] }, /attributes\[0\]\.key/],
    ['attribute key non-ASCII', { attributes: [[enc('ké'), enc('x')]] }, /attributes\[0\]\.key/],
    ['attribute key with a colon', { attributes: [[enc('a:b'), enc('x')]] }, /attributes\[0\]\.key/],
    ['empty attribute key', { attributes: [[new Uint8Array(0), enc('x')]] }, /attribute key/],
    ['attribute key of 65 bytes', { attributes: [[enc('k'.repeat(65)), enc('x')]] }, /attribute key length 65/],
    ['attribute value of 1025 bytes', { attributes: [[enc('k'), enc('v'.repeat(1025))]] }, /attribute value length 1025/],
    ['attribute value with NUL', { attributes: [[enc('k'), enc('a\u0000b')]] }, /attributes\[0\]\.value.*NUL/],
    ['attribute value invalid UTF-8', { attributes: [[enc('k'), Uint8Array.of(0xfe)]] }, /attributes\[0\]\.value.*UTF-8/],
    ['65 attributes', { attributes: Array.from({ length: 65 }, (_, i): [Uint8Array, Uint8Array] => [enc(`k${String(i).padStart(2, '0')}`), enc('v')]) }, /attributes.*more than 64/],
    ['attribute value overrunning its list', { attributesList: Uint8Array.of(1, 0x61, 0x00, 0x09, 0x62) }, /truncated.*attribute value/],
    ['not_after equal to not_before', { notBefore: 1000, notAfter: 1000 }, /not_after/],
    ['not_after before not_before', { notBefore: 1000, notAfter: 999 }, /not_after/],
    ['not_before above 2^53 - 1', { notBefore: 2 ** 53, notAfter: 2 ** 53 + 2 }, /not_before out of range/],
    ['not_after above 2^53 - 1', { notAfter: 2 ** 60 }, /not_after out of range/],
    ['empty serial', { serial: new Uint8Array(0) }, /serial/],
    ['serial of 33 bytes', { serial: new Uint8Array(33) }, /serial/],
    ['issuer_id without a scheme', { issuerId: enc('acme') }, /issuer_id/],
    ['empty issuer_id', { issuerId: new Uint8Array(0) }, /issuer_id/],
    ['issuer_id with whitespace', { issuerId: enc('issuer://ac me') }, /issuer_id/],
    ['signature_algorithm 2', { signatureAlgorithm: 2 }, /signature_algorithm/],
    ['signature of 3372 bytes', { signature: new Uint8Array(3372) }, /signature/],
    ['signature of 3374 bytes', { signature: new Uint8Array(3374) }, /signature/],
    ['one trailing byte', { trailing: Uint8Array.of(0) }, /trailing/],
    ['a trailing credential', { trailing: buildRaw() }, /trailing|exceeds/],
  ];

  it.each(bad)('%s', (_name, overrides, message) => {
    const err = expectError(() => decodeCredential(buildRaw(overrides)), DecodeError, 'ERR_DECODE');
    expect(err.message).toMatch(message);
    expect(err.alert).toBe(50);
  });

  it('the raw builder defaults decode (so each case above fails for its own reason)', () => {
    const d = decodeCredential(buildRaw());
    expect(d.agentId).toBe('agent://acme/planner');
    expect(d.scopes).toEqual(['mcp:read', 'mcp:write']);
    expect(d.attributes).toEqual({ env: 'prod', team: 'search' });
    expect(rawDefaults().signature).toHaveLength(3373);
  });

  it('refuses input above 16384 bytes before parsing anything', () => {
    const huge = new Uint8Array(MAX_CREDENTIAL_LENGTH + 1); // bad tag too: size must be reported first
    const err = expectError(() => decodeCredential(huge), DecodeError, 'ERR_DECODE');
    expect(err.message).toMatch(/16385 bytes exceeds the maximum of 16384/);
    // Exactly at the maximum is parsed (and here fails on content, not size).
    const atMax = new Uint8Array(MAX_CREDENTIAL_LENGTH);
    expect(expectError(() => decodeCredential(atMax), DecodeError, 'ERR_DECODE').message).toMatch(/type_tag/);
  });

  it('refuses every truncation of a valid credential', () => {
    const b = issued.encoded;
    for (let k = 0; k < b.length; k++) {
      expect(() => decodeCredential(b.subarray(0, k)), `prefix of ${k} bytes`).toThrow(DecodeError);
    }
    // And a few explicitly, with the field named.
    const cut = (n: number): string => expectError(() => decodeCredential(b.subarray(0, n)), DecodeError, 'ERR_DECODE').message;
    expect(cut(0)).toMatch(/type_tag/);
    expect(cut(4)).toMatch(/version/);
    expect(cut(5)).toMatch(/agent_id/);
    expect(cut(b.length - 1)).toMatch(/signature/);
    const fp = regions(b).find((r) => r.name === 'issuer_fingerprint')!;
    expect(cut(fp.start + 10)).toMatch(/issuer_fingerprint/);
  });

  it('refuses non-bytes', () => {
    expectError(() => decodeCredential('PQCR' as unknown as Uint8Array), DecodeError, 'ERR_DECODE');
    expectError(() => decodeCredential(undefined as unknown as Uint8Array), DecodeError, 'ERR_DECODE');
  });

  it('never echoes field contents in its errors', () => {
    const marker = 'SECRETMARKER';
    const cases: Partial<RawCredential>[] = [
      { agentId: enc(`agent://${marker} x`) },
      { displayName: enc(`${marker}\u0001`) },
      { scopes: [enc(`${marker} x`)] },
      { attributes: [[enc(`${marker}!`), enc('v')]] },
      { attributes: [[enc('k'), enc(`${marker}\u0000`)]] },
      { issuerId: enc(marker) },
    ];
    for (const c of cases) {
      const err = expectError(() => decodeCredential(buildRaw(c)), DecodeError, 'ERR_DECODE');
      expect(err.message).not.toContain(marker);
    }
  });
});
