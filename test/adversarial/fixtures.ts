/**
 * Identities for the adversarial suite: one issuer, an honest client and server, and the
 * options each side of a duel needs. Built once per test file on the native backend (which
 * falls back to noble for ML-DSA / ML-KEM where Node lacks them).
 */
import { createNativeBackend } from '../../src/crypto/native.js';
import { createNobleBackend } from '../../src/crypto/noble.js';
import type { CryptoBackend } from '../../src/crypto/types.js';
import type { TrustStore } from '../../src/identity/trust.js';
import type { SessionOptions } from '../../src/session/session.js';
import { makeAgent, makeIssuer, trustFor, type Issuer, type TestAgent } from '../helpers/identities.js';
import { Duel, type AttackerOptions, type Bugs, type MessageName, type RecordKeys, type Role } from './harness.js';

export const native = createNativeBackend();
export const noble = createNobleBackend();

export interface Fixtures {
  issuer: Issuer;
  trust: TrustStore;
  client: TestAgent;
  server: TestAgent;
}

let cached: Fixtures | undefined;

/** The shared issuer and the two honest agents (memoised per test file). */
export function fixtures(): Fixtures {
  if (!cached) {
    const issuer = makeIssuer(native, 'issuer://pqmcp-adversarial');
    cached = {
      issuer,
      trust: trustFor(issuer),
      client: makeAgent(native, issuer, 'agent://adversarial/client', { scopes: ['tools:call'] }),
      server: makeAgent(native, issuer, 'agent://adversarial/server'),
    };
  }
  return cached;
}

export interface DuelSetup {
  backend?: CryptoBackend;
  honest?: Partial<SessionOptions>;
  attacker?: Partial<AttackerOptions>;
  bugs?: Bugs;
}

/** A duel between an honest `role` and an attacker holding the other honest identity. */
export function setup(role: Role, s: DuelSetup = {}): Duel {
  const f = fixtures();
  const backend = s.backend ?? native;
  const mine = role === 'client' ? f.client : f.server;
  const theirs = role === 'client' ? f.server : f.client;
  return new Duel(
    role,
    { backend, identity: mine.local, trust: f.trust, ...s.honest },
    { backend, identity: theirs.local, trust: f.trust, ...s.attacker, ...(s.bugs ? { bugs: s.bugs } : {}) },
  );
}

/** The attacker's messages in the order its role sends them. */
export const ATTACKER_MESSAGES: Record<Role, MessageName[]> = {
  client: ['ClientHello', 'Credential', 'CredentialVerify', 'Finished'],
  server: ['ServerHello', 'Credential', 'CredentialVerify', 'Finished'],
};

/** Every (honest role, attacker message) pair: the honest side receives that message. */
export const RECEIVED_MESSAGES: [Role, MessageName][] = (['server', 'client'] as const).flatMap((honest) =>
  ATTACKER_MESSAGES[honest === 'server' ? 'client' : 'server'].map((m): [Role, MessageName] => [honest, m]),
);

/**
 * A duel paused just before the attacker's message `m` reaches the honest side: fork it and
 * call `deliver` with any bytes in place of `m`.
 */
export class Paused {
  readonly base: Duel;

  constructor(
    readonly honestRole: Role,
    readonly message: MessageName,
    s: DuelSetup = {},
  ) {
    this.base = setup(honestRole, { ...s, bugs: { ...s.bugs, hold: message } }).run();
    const first = this.base.attacker.held[0];
    if (this.base.error || !first || first.name !== message) throw new Error(`could not pause before ${message}`);
  }

  /** The honest framed message the attacker would have sent. */
  get honestMessage(): Uint8Array {
    return this.base.attacker.held[0]!.framed;
  }

  /** A fresh fork that receives `framed` in place of the message, in its epoch (or as given). */
  deliver(framed: Uint8Array, opts: { plaintext?: boolean; then?: (d: Duel) => void } = {}): Duel {
    const d = this.base.fork();
    const held = d.attacker.held[0]!;
    d.toHonest(d.attacker.emitMessage(framed, opts.plaintext ? 'plaintext' : held.epoch, held.keys));
    opts.then?.(d);
    return d;
  }

  /** A fresh fork that receives raw records (use `keys` to seal like the held message would be). */
  deliverRecords(make: (d: Duel, keys: RecordKeys | undefined) => Uint8Array[]): Duel {
    const d = this.base.fork();
    const held = d.attacker.held[0]!;
    d.toHonest(make(d, held.epoch === 'plaintext' ? undefined : held.keys));
    return d;
  }
}
