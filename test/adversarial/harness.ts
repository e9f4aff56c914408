/**
 * The misbehaving-peer harness, byte level (BoGo-style): an `Attacker` (attacker.ts) is a
 * complete PQMCP/1 peer that can break any rule of the protocol on request, and a `Duel`
 * runs it against an honest `Session` in memory and records exactly what the honest side
 * did.
 *
 *   const d = duel('server', honestOptions, { ...attackerOptions, bugs: { duplicate: 'Credential' } });
 *   d.run();
 *   expectRejected(d, 'ERR_UNEXPECTED_MESSAGE', Alert.unexpectedMessage);
 *
 * The honest side's secrets are captured through its `keyLog`, and a `WireTap` decrypts
 * every record it sends with its own keys: the alert it sends is known exactly, even when
 * the attacker's keys no longer match (e.g. after a tampered key exchange). `fork()` copies
 * a duel at any point (fork.ts), so thousands of cases can share one handshake.
 *
 * Loops are bounded; nothing here waits on time.
 */
import { expect } from 'vitest';
import { concat } from '../../src/bytes.js';
import { Alert, PqmcpError } from '../../src/errors.js';
import { Session, type SessionEvent, type SessionOptions } from '../../src/session/session.js';
import { Attacker, type AttackerOptions } from './attacker.js';
import { fork, registerForkable } from './fork.js';
import { WireTap, type Role } from './wire-tap.js';

export * from './attacker.js';
export * from './wire-tap.js';

export class Duel {
  readonly honest: Session;
  readonly attacker: Attacker;
  /** Everything the honest side emitted. */
  readonly events: SessionEvent[] = [];
  /** The honest side's secrets, from its keyLog. */
  readonly secrets: Record<string, Uint8Array> = {};
  /** The honest side's records, decrypted with its own keys. */
  readonly tap: WireTap;
  /** Records the honest side sent, as sent. */
  readonly sent: Uint8Array[] = [];
  /** Bytes delivered to the honest side, as delivered (what a network recorder would keep). */
  readonly received: Uint8Array[] = [];
  /** Whether the honest side produced output after its first error (it must not). */
  afterError = 0;

  constructor(
    readonly honestRole: Role,
    honestOptions: SessionOptions,
    attackerOptions: AttackerOptions,
  ) {
    const options: SessionOptions = { ...honestOptions, keyLog: (label, secret) => void (this.secrets[label] = secret) };
    this.honest = honestRole === 'client' ? Session.client(options) : Session.server(options);
    this.attacker = new Attacker(honestRole === 'client' ? 'server' : 'client', attackerOptions);
    this.tap = new WireTap(honestOptions.backend, honestRole, this.secrets, this.honest);
  }

  get error(): PqmcpError | undefined {
    const e = this.events.find((x) => x.type === 'error');
    return e?.type === 'error' ? e.error : undefined;
  }

  get completed(): boolean {
    return this.events.some((e) => e.type === 'handshake');
  }

  /** Application messages the honest side delivered. */
  get delivered(): Uint8Array[] {
    return this.events.flatMap((e) => (e.type === 'message' ? [e.data] : []));
  }

  /** Deliver bytes to the honest side (optionally re-split), forward its answer to the attacker; bounded ping-pong. */
  toHonest(records: Uint8Array[], split?: (stream: Uint8Array) => Uint8Array[]): void {
    let pending = records;
    for (let round = 0; round < 16 && pending.length > 0; round++) {
      const chunks = split ? split(concat(...pending)) : pending;
      this.received.push(...chunks);
      const answer: Uint8Array[] = [];
      for (const c of chunks) {
        const hadError = this.error !== undefined;
        const out = this.honest.receive(c);
        this.events.push(...out.events);
        if (hadError) this.afterError += out.send.length + out.events.length;
        answer.push(...out.send);
      }
      pending = this.toAttacker(answer);
    }
  }

  /** Hand the honest side's records to the tap and the attacker; returns the attacker's answer. */
  toAttacker(records: Uint8Array[]): Uint8Array[] {
    const back: Uint8Array[] = [];
    for (const r of records) {
      this.sent.push(r);
      this.tap.push(r);
      back.push(...this.attacker.receive(r));
    }
    return back;
  }

  /** Run the handshake (and whatever the knobs add) until both sides go quiet. */
  run(split?: (stream: Uint8Array) => Uint8Array[]): this {
    if (this.honestRole === 'client') {
      const start = this.honest.start();
      this.events.push(...start.events);
      this.toHonest(this.toAttacker(start.send), split);
    } else {
      this.toHonest(this.attacker.start(), split);
    }
    return this;
  }

  /** The stream ended (the attacker hung up). */
  end(): void {
    this.events.push(...this.honest.end());
  }

  /** An independent copy from this exact state (see fork.ts). */
  fork(): Duel {
    const copy = fork(this);
    const options = (copy.honest as unknown as { options: SessionOptions }).options;
    options.keyLog = (label, secret) => void (copy.secrets[label] = secret);
    return copy;
  }
}

registerForkable(Duel);

/** A duel of an honest `honestRole` with the given options against an attacker. */
export function duel(honestRole: Role, honestOptions: SessionOptions, attackerOptions: AttackerOptions): Duel {
  return new Duel(honestRole, honestOptions, attackerOptions);
}

/**
 * Why `d` is NOT "the honest side refused with exactly `code`, sent exactly `alert` (null:
 * no alert) as its last record, never reported a completed handshake (unless `completed`
 * allows it), and is dead and empty": an empty list when all of that holds. Cheap (no
 * expect calls), for loops over thousands of cases.
 */
export function rejectionProblems(d: Duel, code: string, alert: number | null, opts: { completed?: boolean } = {}): string[] {
  const p: string[] = [];
  const err = d.error;
  if (!err) return [`expected ${code}, the honest side reported no error (state ${d.honest.state})`];
  if (!(err instanceof PqmcpError)) p.push(`error is not a PqmcpError: ${String(err)}`);
  if (err.code !== code) p.push(`expected ${code}, got ${err.code} (${err.message})`);
  if (d.events.filter((e) => e.type === 'error').length !== 1) p.push('more than one error event');
  if (d.honest.state !== 'failed') p.push(`state ${d.honest.state}, expected failed`);
  if (!opts.completed && d.completed) p.push('the handshake completed');
  const alerts = d.tap.alerts;
  if (alert === null) {
    if (alerts.length > 0) p.push(`no alert expected, sent [${alerts.join(', ')}]`);
  } else {
    if (alerts.length !== 1 || alerts[0] !== alert) p.push(`expected alert [${alert}], sent [${alerts.join(', ')}]`);
    if (d.tap.items[d.tap.items.length - 1]?.kind !== 'alert') p.push('the alert is not the last record sent');
  }
  if (d.tap.items.some((i) => i.kind === 'opaque')) p.push('a record the honest side sent does not decrypt under its own keys');
  if (d.afterError > 0) p.push('output after the error');
  p.push(...deadProblems(d.honest));
  return p;
}

/** `rejectionProblems` as an assertion. */
export function expectRejected(d: Duel, code: string, alert: number | null, opts: { completed?: boolean; what?: string } = {}): void {
  expect(rejectionProblems(d, code, alert, opts), opts.what).toEqual([]);
}

/** Why a failed or closed session is not inert (it must accept nothing and say nothing). */
export function deadProblems(s: Session): string[] {
  const p: string[] = [];
  const noise = s.receive(Uint8Array.of(0x17, 0, 0, 20, ...new Uint8Array(20)));
  if (noise.send.length || noise.events.length) p.push('a dead session answered input');
  if (s.end().length) p.push('a dead session reported an end');
  if (s.abort(new PqmcpError('ERR_INTERNAL', 'x', Alert.internalError)).length) p.push('a dead session sent an abort alert');
  if (s.state === 'failed' && s.close().length) p.push('a failed session sent a close');
  try {
    s.send(new Uint8Array(1));
    p.push('a dead session accepted send()');
  } catch (e) {
    if ((e as PqmcpError).code !== 'ERR_CLOSED') p.push(`send() threw ${(e as PqmcpError).code}, expected ERR_CLOSED`);
  }
  return p;
}

/** A failed or closed session is inert: it accepts nothing and says nothing. */
export function expectDead(s: Session): void {
  expect(deadProblems(s)).toEqual([]);
}

/** Split a stream at the given offsets. */
export function splitAt(stream: Uint8Array, offsets: number[]): Uint8Array[] {
  const cuts = [...new Set(offsets.filter((o) => o > 0 && o < stream.length))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const c of [...cuts, stream.length]) {
    out.push(stream.subarray(prev, c));
    prev = c;
  }
  return out;
}
