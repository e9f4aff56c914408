/**
 * Name constraints (issue 11 item 3; docs/protocol.md 6.4): a trust store constrains an
 * issuer to agent-id prefixes, a client constrains the server's id.
 *
 * - The matching rule, case by case (segment boundaries, "/*", no normalisation, dot
 *   segments and percent-encoding below the prefix are outside).
 * - A credential outside its issuer's constraints is refused with ERR_NAME_CONSTRAINT and
 *   alert 102 in a real handshake, before any signature work (counted).
 * - A constraint change bumps the generation: the verified-credential cache does not let a
 *   now-excluded credential through, a live session ends, and a resumption ticket for an
 *   excluded agent is refused (and the full handshake then refuses it too).
 * - The trust file's `constraints` is parsed strictly and round-trips.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createNobleBackend } from '../../src/crypto/noble.js';
import type { CryptoBackend } from '../../src/crypto/types.js';
import { Alert, InvalidArgumentError, NameConstraintError, PeerAlertError, PqmcpError } from '../../src/errors.js';
import type { ServerTicketConfig } from '../../src/handshake/resumption.js';
import { normaliseNameConstraint, withinNameConstraint } from '../../src/identity/name-constraints.js';
import { TrustStore } from '../../src/identity/trust.js';
import type { ClientTicket } from '../../src/resumption/client-tickets.js';
import { TicketReplayGuard } from '../../src/resumption/replay.js';
import { TicketKeys } from '../../src/resumption/ticket-keys.js';
import type { SessionEvent, SessionOptions } from '../../src/session/session.js';
import { expectError } from '../helpers/errors.js';
import { makeAgent, makeIssuer, type Issuer, type TestAgent } from '../helpers/identities.js';
import { createPair, errorOf, expectEstablished, runPair, type PairResult } from '../helpers/pair.js';

const base = createNobleBackend();
const NOW = Date.UTC(2026, 5, 1) / 1000;
const now = (): number => NOW * 1000;

let acme: Issuer;
let partner: Issuer;
let acmeTools: TestAgent;
let acmeClient: TestAgent;
let partnerClient: TestAgent;
/** A partner-issued credential claiming an acme name: what a compromised partner issuer mints. */
let forgedTools: TestAgent;

const window = { notBefore: NOW - 3600, notAfter: NOW + 30 * 86400 };

beforeAll(() => {
  acme = makeIssuer(base, 'issuer://acme');
  partner = makeIssuer(base, 'issuer://partner');
  acmeTools = makeAgent(base, acme, 'agent://acme/tools', { usage: 'server', ...window });
  acmeClient = makeAgent(base, acme, 'agent://acme/planner', { usage: 'client', ...window });
  partnerClient = makeAgent(base, partner, 'agent://partner/bot', { usage: 'client', ...window });
  forgedTools = makeAgent(base, partner, 'agent://acme/tools', { usage: 'server', ...window });
});

/** acme unconstrained or constrained; partner constrained to its own names. */
function store(acmeConstraints?: string[]): TrustStore {
  return new TrustStore({
    issuers: [
      { id: acme.id, publicKey: acme.publicKey, ...(acmeConstraints ? { constraints: acmeConstraints } : {}) },
      { id: partner.id, publicKey: partner.publicKey, constraints: ['agent://partner/*'] },
    ],
  });
}

function counting(): { backend: CryptoBackend; verifies: () => number } {
  let v = 0;
  const backend: CryptoBackend = { ...base, mldsa65: { ...base.mldsa65, verify: (...a) => (v++, base.mldsa65.verify(...a)) } };
  return { backend, verifies: () => v };
}

describe('the matching rule', () => {
  const cases: [string, string, boolean][] = [
    ['agent://acme/tools', 'agent://acme/tools', true],
    ['agent://acme/tools', 'agent://acme/tools/eu', true],
    ['agent://acme/tools', 'agent://acme/tools/eu/1', true],
    ['agent://acme/tools', 'agent://acme/toolsmith', false],
    ['agent://acme/tools', 'agent://acme', false],
    ['agent://acme/', 'agent://acme/x', true],
    ['agent://acme/', 'agent://acme/x/y', true],
    ['agent://acme/', 'agent://acme/', false],
    ['agent://acme/', 'agent://acme', false],
    ['agent://acme/', 'agent://acmex/y', false],
    ['agent://acme/', 'agent://acme.evil/x', false],
    ['agent://acme', 'agent://acme.evil/x', false],
    ['agent://acme', 'agent://acme/x', true],
    // No normalisation: case and encoding variants are outside (refused).
    ['agent://acme/', 'AGENT://acme/x', false],
    ['agent://acme/', 'agent://ACME/x', false],
    // Below the prefix: no empty, "." or ".." segment, no "%" or "\".
    ['agent://acme/', 'agent://acme/../globex/x', false],
    ['agent://acme/', 'agent://acme/./x', false],
    ['agent://acme/', 'agent://acme//x', false],
    ['agent://acme/', 'agent://acme/x/', false],
    ['agent://acme/', 'agent://acme/%2e%2e/globex', false],
    ['agent://acme/', 'agent://acme/a%20b', false],
    ['agent://acme/', 'agent://acme/x\\..\\y', false],
    ['agent://acme/tools', 'agent://acme/tools/..', false],
    ['agent://acme/', 'agent://acme/x..y', true],
  ];
  it.each(cases)('%s admits %s: %s', (constraint, id, within) => {
    expect(withinNameConstraint(id, normaliseNameConstraint(constraint, 'c'))).toBe(within);
  });

  it('"/*" is the subtree form; any other "*" and non-ids are refused with the field named', () => {
    expect(normaliseNameConstraint('agent://acme/*', 'c')).toBe('agent://acme/');
    for (const bad of ['agent://*.acme/', 'agent://acme/*/tools', 'agent://acme*', '*', 'acme/tools', '', 'agent://acme/ x']) {
      const e = expectError(() => normaliseNameConstraint(bad, 'issuers[0].constraints[0]'), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
      expect(e.message).toMatch(/^issuers\[0\]\.constraints\[0\] /);
    }
  });
});

describe('issuer constraints at verification', () => {
  it('admits names inside, refuses names outside with ERR_NAME_CONSTRAINT (alert 102), before any signature work', () => {
    const trust = store();
    expect(trust.verifyCredential(base, partnerClient.credential.encoded, { now }).agentId).toBe('agent://partner/bot');
    const c = counting();
    const e = expectError(() => trust.verifyCredential(c.backend, forgedTools.credential.encoded, { now }), NameConstraintError, 'ERR_NAME_CONSTRAINT');
    expect(e.alert).toBe(Alert.nameConstraintViolation);
    expect(e.alert).toBe(102);
    expect(e.message).toBe('issuer "issuer://partner" may not vouch for "agent://acme/tools"');
    expect(c.verifies()).toBe(0);
    // A tampered signature does not change the verdict: the signature is never looked at.
    const tampered = forgedTools.credential.encoded.slice(0);
    tampered[tampered.length - 1] = tampered[tampered.length - 1]! ^ 1;
    expectError(() => trust.verifyCredential(c.backend, tampered, { now }), NameConstraintError, 'ERR_NAME_CONSTRAINT');
    expect(c.verifies()).toBe(0);
  });

  it('in a handshake: a compromised partner issuer cannot mint the acme server; the client refuses it with alert 102', () => {
    const pair = runPair(
      createPair({ backend: base, identity: acmeClient.local, trust: store(), now }, { backend: base, identity: forgedTools.local, trust: store(), now }),
    );
    const refused = errorOf(pair.clientEvents);
    expect(refused).toBeInstanceOf(NameConstraintError);
    expect(refused?.code).toBe('ERR_NAME_CONSTRAINT');
    const heard = errorOf(pair.serverEvents);
    expect(heard).toBeInstanceOf(PeerAlertError);
    expect((heard as PeerAlertError).peerAlert).toBe(102);
    expect(pair.clientEvents.some((e) => e.type === 'handshake')).toBe(false);
    // Without the partner's constraint, the forgery would have been accepted.
    const open = new TrustStore({ issuers: [{ id: acme.id, publicKey: acme.publicKey }, { id: partner.id, publicKey: partner.publicKey }] });
    expectEstablished(runPair(createPair({ backend: base, identity: acmeClient.local, trust: open, now }, { backend: base, identity: forgedTools.local, trust: open, now })));
  });

  it('a constraint change empties the verified-credential cache: a cached credential is refused at once', () => {
    const trust = store();
    const c = counting();
    trust.verifyCredential(c.backend, acmeClient.credential.encoded, { now });
    trust.verifyCredential(c.backend, acmeClient.credential.encoded, { now });
    expect(c.verifies()).toBe(1); // the second was a cache hit
    const before = trust.generation;
    trust.addIssuer({ id: acme.id, publicKey: acme.publicKey, constraints: ['agent://acme/tools'] });
    expect(trust.generation).toBeGreaterThan(before);
    expectError(() => trust.verifyCredential(c.backend, acmeClient.credential.encoded, { now }), NameConstraintError, 'ERR_NAME_CONSTRAINT');
    expect(trust.verifyCredential(c.backend, acmeTools.credential.encoded, { now }).agentId).toBe('agent://acme/tools');
    // The same constraints again change nothing; lifting them is a change.
    const g = trust.generation;
    trust.addIssuer({ id: acme.id, publicKey: acme.publicKey, constraints: ['agent://acme/tools'] });
    expect(trust.generation).toBe(g);
    trust.addIssuer({ id: acme.id, publicKey: acme.publicKey });
    expect(trust.generation).toBeGreaterThan(g);
    expect(trust.verifyCredential(c.backend, acmeClient.credential.encoded, { now }).agentId).toBe('agent://acme/planner');
  });

  it('onChange hears a constraint change, and recheckCredential (live sessions, tickets) applies it', async () => {
    const trust = store();
    let heard = 0;
    trust.onChange(() => heard++);
    expect(trust.recheckCredential(base, acmeClient.credential.encoded, { now }).agentId).toBe('agent://acme/planner');
    trust.replaceWith(store(['agent://acme/tools']));
    await Promise.resolve();
    expect(heard).toBe(1);
    expectError(() => trust.recheckCredential(base, acmeClient.credential.encoded, { now }), NameConstraintError, 'ERR_NAME_CONSTRAINT');
  });
});

describe('the trust file', () => {
  it('round-trips constraints, normalised, and omits them when absent', () => {
    const json = JSON.parse(JSON.stringify(store(['agent://acme/tools', 'agent://acme/ops/*'])));
    expect(json.issuers[0].constraints).toEqual(['agent://acme/tools', 'agent://acme/ops/']);
    expect(json.issuers[1].constraints).toEqual(['agent://partner/']);
    expect('constraints' in JSON.parse(JSON.stringify(store())).issuers[0]).toBe(false);
    const back = TrustStore.fromJSON(json);
    expect(back.toJSON()).toEqual(json);
    expectError(() => back.verifyCredential(base, acmeClient.credential.encoded, { now }), NameConstraintError, 'ERR_NAME_CONSTRAINT');
  });

  it.each([
    ['an empty list', [], /issuers\[0\]\.constraints must list at least one id prefix/],
    ['a string', 'agent://acme/', /issuers\[0\]\.constraints must be an array/],
    ['a wildcard inside', ['agent://*.acme/'], /issuers\[0\]\.constraints\[0\] may use "\*" only as a final "\/\*"/],
    ['a non-id', ['acme'], /issuers\[0\]\.constraints\[0\]/],
    ['65 entries', Array.from({ length: 65 }, (_, i) => `agent://acme/${i}`), /more than 64 entries/],
  ])('refuses %s, naming the field', (_name, constraints, message) => {
    const json = JSON.parse(JSON.stringify(store()));
    json.issuers[0].constraints = constraints;
    const e = expectError(() => TrustStore.fromJSON(json), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
    expect(e.message).toMatch(message);
  });

  it('refuses an unknown field beside constraints (strict as before)', () => {
    const json = JSON.parse(JSON.stringify(store()));
    json.issuers[0].constraint = ['agent://acme/'];
    expect(() => TrustStore.fromJSON(json)).toThrow(/issuers\[0\] has an unknown field "constraint"/);
  });
});

describe('resumption re-checks constraints', () => {
  const keys = (): TicketKeys => TicketKeys.generate(base, NOW * 1000);
  function run(ticketKeys: TicketKeys, serverTrust: TrustStore, resumeTicket?: ClientTicket): { pair: PairResult; refusals: PqmcpError[]; tickets: ClientTicket[] } {
    const refusals: PqmcpError[] = [];
    const tickets: ServerTicketConfig = { keys: ticketKeys, replay: new TicketReplayGuard(), endpoint: '/mcp', onRefused: (e) => refusals.push(e) };
    const c: SessionOptions = { backend: base, identity: acmeClient.local, trust: store(), now, expectedPeerId: acmeTools.agentId, ...(resumeTicket ? { resumeTicket } : {}) };
    const s: SessionOptions = { backend: base, identity: acmeTools.local, trust: serverTrust, now, tickets };
    const pair = runPair(createPair(c, s));
    return { pair, refusals, tickets: pair.clientEvents.flatMap((e: SessionEvent) => (e.type === 'ticket' ? [e.ticket] : [])) };
  }

  it('a ticket for an agent the new constraints exclude is refused, and the full handshake refuses it too', () => {
    const k = keys();
    const first = run(k, store());
    expectEstablished(first.pair);
    expect(first.tickets).toHaveLength(1);
    // Still admitted: the ticket resumes.
    const ok = run(k, store(['agent://acme/']), first.tickets[0]);
    expectEstablished(ok.pair);
    expect(ok.pair.server.result!.resumed).toBe(true);
    const second = run(k, store(), undefined);
    const ticket = second.tickets[0]!;
    const refused = run(k, store(['agent://acme/tools']), ticket);
    expect(refused.refusals.map((e) => e.code)).toEqual(['ERR_NAME_CONSTRAINT']);
    expect(errorOf(refused.pair.serverEvents)?.code).toBe('ERR_NAME_CONSTRAINT');
    expect(refused.pair.server.state).toBe('failed');
  });
});
