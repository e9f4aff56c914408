/**
 * The hints `pqmcp connect` gives for a server's plaintext alerts (src/cli/alert-hints.ts):
 * each names the alert as unauthenticated, says what the server claims and what to check.
 * The end-to-end case (alert 100 from a real gateway) is in roles.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { plaintextAlertHint, refusalHint } from '../../src/cli/alert-hints.js';
import { Alert } from '../../src/errors.js';

const ctx = { endpoint: '//tools.example:7443/mcp', endpointGiven: false, tickets: false };

describe('plaintext alert hints', () => {
  it('every hint is marked unauthenticated and names the code', () => {
    for (const code of [Alert.endpointMismatch, Alert.protocolVersion, Alert.insufficientSecurity, Alert.unsupportedExtension, Alert.pskBinderInvalid, Alert.decodeError, Alert.handshakeFailure, 77]) {
      const hint = plaintextAlertHint(code, ctx);
      expect(hint).toContain(`(unauthenticated alert ${code}, `);
      expect(hint).toContain('anyone on the path could have sent');
    }
  });

  it('endpoint_mismatch points at --endpoint when it was given, else at the URL', () => {
    expect(plaintextAlertHint(100, { ...ctx, endpoint: 'svc:billing', endpointGiven: true })).toMatch(/^the server refused the endpoint "svc:billing" .*: check --endpoint against the gateway's serve --endpoint$/);
    expect(plaintextAlertHint(100, ctx)).toMatch(/refused the endpoint "\/\/tools.example:7443\/mcp" \(from the URL\).*check the URL's host and path, or name the served endpoint with --endpoint/);
  });

  it('a refused ticket points at the tickets file only when there is one', () => {
    expect(plaintextAlertHint(120, { ...ctx, tickets: true })).toContain('delete the --tickets file');
    expect(plaintextAlertHint(120, ctx)).not.toContain('--tickets');
  });

  it('the others say what the server claims', () => {
    expect(plaintextAlertHint(70, ctx)).toContain('shares no protocol version');
    expect(plaintextAlertHint(71, ctx)).toContain('shares no cipher suite');
    expect(plaintextAlertHint(110, ctx)).toContain('did not accept an extension');
    expect(plaintextAlertHint(40, ctx)).toContain('gave up on the handshake');
    expect(plaintextAlertHint(77, ctx)).toBe('the server aborted the handshake (unauthenticated alert 77, unknown: a plaintext alert, which anyone on the path could have sent)');
  });
});

describe('the authenticated refusals pqmcp connect explains (session 8)', () => {
  it('each refusal alert of the handshake says which side to change; other alerts add nothing', () => {
    expect(refusalHint(48)).toMatch(/does not trust the issuer .*\(pqmcp trust add-issuer\)/);
    expect(refusalHint(45)).toMatch(/expired .*check both clocks.*new one/);
    expect(refusalHint(44)).toMatch(/revoked at the server; it needs a new key and credential/);
    expect(refusalHint(42)).toMatch(/self-signed one must be pinned there: pqmcp trust pin/);
    expect(refusalHint(101)).toMatch(/may not act as a client/);
    expect(refusalHint(102)).toMatch(/--constrain/);
    expect(refusalHint(140)).toMatch(/--max-sessions-per-agent/);
    for (const code of [0, 10, 20, 80, 91, 130, 141]) expect(refusalHint(code)).toBe('');
  });
});
