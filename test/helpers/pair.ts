/**
 * Drive two in-memory Sessions against each other, record by record, with an optional
 * man-in-the-middle hook. Each element of a Session's `send` output is exactly one record,
 * so the hook sees record boundaries. Loops are bounded.
 */
import { expect } from 'vitest';
import { Session, type SessionEvent, type SessionOptions } from '../../src/session/session.js';
import type { PqmcpError } from '../../src/errors.js';

export type Direction = 'c2s' | 's2c';

export interface PairResult {
  client: Session;
  server: Session;
  clientEvents: SessionEvent[];
  serverEvents: SessionEvent[];
  /** Every record that crossed, per direction, after the hook ran. */
  wire: Record<Direction, Uint8Array[]>;
}

/** A hook that returns the records to deliver instead of `records` (a flight). */
export type Tamper = (direction: Direction, records: Uint8Array[], flight: number) => Uint8Array[];

/** Flips the last bit of the client's first flight: a resuming ClientHello's binder is its last 32 bytes. */
export const binderTamper: Tamper = (dir, records, flight) => {
  if (dir !== 'c2s' || flight !== 0) return records;
  const r = records[0]!.slice();
  r[r.length - 1]! ^= 0x01;
  return [r, ...records.slice(1)];
};

export function createPair(clientOptions: SessionOptions, serverOptions: SessionOptions): PairResult {
  return {
    client: Session.client(clientOptions),
    server: Session.server(serverOptions),
    clientEvents: [],
    serverEvents: [],
    wire: { c2s: [], s2c: [] },
  };
}

/**
 * Run the handshake (and anything queued) until both sides go quiet. With `tamper`, every
 * flight passes through it first. `clientMessages` are sent by the client before the
 * handshake starts (they ride the last flight: 1-RTT).
 */
export function runPair(pair: PairResult, options: { tamper?: Tamper; clientMessages?: Uint8Array[] } = {}): PairResult {
  const { client, server } = pair;
  let pending: { dir: Direction; records: Uint8Array[] }[] = [];
  const start = client.start();
  pair.clientEvents.push(...start.events);
  for (const m of options.clientMessages ?? []) client.send(m);
  pending.push({ dir: 'c2s', records: start.send });
  let flight = 0;
  for (let guard = 0; guard < 64 && pending.length > 0; guard++) {
    const next: typeof pending = [];
    for (const { dir, records } of pending) {
      const delivered = options.tamper ? options.tamper(dir, records, flight) : records;
      flight++;
      pair.wire[dir].push(...delivered);
      const target = dir === 'c2s' ? server : client;
      const events = dir === 'c2s' ? pair.serverEvents : pair.clientEvents;
      const out: Uint8Array[] = [];
      for (const r of delivered) {
        const o = target.receive(r);
        events.push(...o.events);
        out.push(...o.send);
      }
      if (out.length > 0) next.push({ dir: dir === 'c2s' ? 's2c' : 'c2s', records: out });
    }
    pending = next;
  }
  return pair;
}

/** Deliver records from one side to the other and return what the receiver emitted. */
export function deliver(pair: PairResult, dir: Direction, records: Uint8Array[]): { send: Uint8Array[]; events: SessionEvent[] } {
  const target = dir === 'c2s' ? pair.server : pair.client;
  const events = dir === 'c2s' ? pair.serverEvents : pair.clientEvents;
  const send: Uint8Array[] = [];
  const got: SessionEvent[] = [];
  for (const r of records) {
    const o = target.receive(r);
    send.push(...o.send);
    got.push(...o.events);
  }
  events.push(...got);
  return { send, events: got };
}

export function errorOf(events: SessionEvent[]): PqmcpError | undefined {
  const e = events.find((x) => x.type === 'error');
  return e && e.type === 'error' ? e.error : undefined;
}

export function messagesOf(events: SessionEvent[]): string[] {
  return events.flatMap((e) => (e.type === 'message' ? [new TextDecoder().decode(e.data)] : []));
}

export function expectEstablished(pair: PairResult): void {
  expect(errorOf(pair.clientEvents)).toBeUndefined();
  expect(errorOf(pair.serverEvents)).toBeUndefined();
  expect(pair.client.state).toBe('established');
  expect(pair.server.state).toBe('established');
}

/** Assert that `side` failed with exactly `code` and that the session is dead. */
export function expectFailed(session: Session, events: SessionEvent[], code: string): PqmcpError {
  const err = errorOf(events);
  expect(err, `expected ${code}, got no error`).toBeDefined();
  expect(err!.code).toBe(code);
  expect(session.state).toBe('failed');
  return err!;
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
