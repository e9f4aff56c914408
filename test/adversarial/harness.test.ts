/**
 * Self-checks of the harness: an attacker with no bugs is an honest peer in both roles, the
 * tap decrypts the honest side exactly, and a forked duel continues exactly like the
 * original (so fork-based tests test the real engine).
 */
import { describe, expect, it } from 'vitest';
import { InnerType } from '../../src/record/index.js';
import { Alert } from '../../src/errors.js';
import { setup } from './fixtures.js';
import { expectDead } from './harness.js';

const text = (s: string) => new TextEncoder().encode(s);

describe('harness self-check', () => {
  it.each(['client', 'server'] as const)('an attacker without bugs completes a handshake with an honest %s and talks both ways', (role) => {
    const d = setup(role).run();
    expect(d.error).toBeUndefined();
    expect(d.completed).toBe(true);
    expect(d.attacker.result).toBeDefined();
    expect(d.attacker.failure).toBeUndefined();
    d.toHonest(d.attacker.sendApplication(text('from attacker')));
    expect(d.delivered.map((m) => new TextDecoder().decode(m))).toEqual(['from attacker']);
    d.toAttacker(d.honest.send(text('from honest')));
    expect(d.attacker.messages.map((m) => new TextDecoder().decode(m))).toEqual(['from honest']);
    // The tap saw the honest side's handshake messages and the application record.
    expect(d.tap.items.filter((i) => i.kind === 'handshake').map((i) => (i as { type: number }).type)).toEqual(role === 'client' ? [1, 11, 15, 20] : [2, 11, 15, 20]);
    expect(d.tap.items.some((i) => i.kind === 'opaque')).toBe(false);
  });

  it('the authenticated close from the attacker closes the honest side cleanly', () => {
    const d = setup('server').run();
    d.toHonest([d.attacker.seal(InnerType.alert, Uint8Array.of(0, Alert.closeNotify))]);
    expect(d.events.map((e) => e.type)).toEqual(['handshake', 'close']);
    expect(d.honest.state).toBe('closed');
    expect(d.tap.alerts).toEqual([Alert.closeNotify]);
    expectDead(d.honest);
  });

  it('a fork continues exactly like the original, independently', () => {
    const base = setup('client', { bugs: { hold: 'CredentialVerify' } }).run();
    expect(base.honest.state).toBe('handshaking');
    const a = base.fork();
    const b = base.fork();
    a.toHonest(a.attacker.release());
    expect(a.completed).toBe(true);
    expect(a.error).toBeUndefined();
    // b is untouched by a, and can complete on its own; the original too.
    expect(b.completed).toBe(false);
    b.toHonest(b.attacker.release());
    expect(b.completed).toBe(true);
    base.toHonest(base.attacker.release());
    expect(base.completed).toBe(true);
    // Each fork agrees with its own attacker (the client's hedged signature differs per fork).
    for (const d of [a, b, base]) expect(Buffer.from(d.honest.result!.transcriptHash)).toEqual(Buffer.from(d.attacker.result!.transcriptHash));
    expect(a.honest.result!.peer.agentId).toBe(base.honest.result!.peer.agentId);
    // The forks' secrets went to their own key logs.
    expect(Object.keys(a.secrets)).toContain('c_ap_traffic_0');
    a.toHonest(a.attacker.sendApplication(text('a')));
    b.toHonest(b.attacker.sendApplication(text('b')));
    expect(a.delivered.map((m) => new TextDecoder().decode(m))).toEqual(['a']);
    expect(b.delivered.map((m) => new TextDecoder().decode(m))).toEqual(['b']);
  });
});
