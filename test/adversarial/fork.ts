/**
 * Fork a pure protocol engine (a Session, a handshake state machine, a scripted attacker or
 * a whole duel) into an independent copy that continues from the same state.
 *
 * Why: reaching "the client is waiting for the server's CredentialVerify" costs a key
 * exchange and a credential verification (milliseconds each on the portable backend).
 * Forking the engine at that point lets a test try thousands of inputs there - every
 * truncation offset, every Wycheproof signature, every bit - for the cost of a copy each.
 *
 * Sharp edges:
 * - Only instances of registered classes, plain objects, arrays and Uint8Arrays are copied
 *   (byte arrays deeply, so wiping or advancing one copy never touches the other).
 *   Everything else is shared: functions, crypto backends, node:crypto KeyObjects, trust
 *   stores, errors. Properties named in SHARED are shared too (read-only data such as the
 *   local identity, the verified peer).
 * - The client's X-Wing ephemeral key pair is copied (a plain object: its seed deeply), not
 *   shared: the handshake disposes of the key pair it decapsulated with, and a disposed key
 *   pair decapsulates no more, so each fork needs its own (it re-expands its seed once).
 * - It copies private fields by name, so it depends on the engines keeping their state in
 *   ordinary properties (no `#private` fields, no closures over mutable state). The
 *   self-check in harness.test.ts fails loudly if that ever stops being true.
 * - A secret-logging callback captured before the fork still points at the original; the
 *   duel rewires its own after forking (see Duel.fork).
 */
import { ClientHandshake, ServerHandshake } from '../../src/handshake/handshake.js';
import { Transcript } from '../../src/handshake/key-schedule.js';
import { CipherState, MessageAssembler, RecordDeframer } from '../../src/record/index.js';
import { Session } from '../../src/session/session.js';
import { TrafficKeys } from '../../src/session/traffic-keys.js';

const CLONEABLE = new Set<object>(
  [Session, TrafficKeys, ClientHandshake, ServerHandshake, Transcript, RecordDeframer, MessageAssembler, CipherState].map((c) => c.prototype as object),
);

/** Read-only state shared between forks, by property name. */
const SHARED = new Set(['backend', 'trust', 'identity', '_result', 'peer', 'aead', 'bugs']);

/** Let `fork` copy instances of this class (test classes register themselves). */
export function registerForkable(ctor: { prototype: object }): void {
  CLONEABLE.add(ctor.prototype);
}

function copy(value: unknown, seen: Map<object, unknown>): unknown {
  if (value === null || typeof value !== 'object') return value;
  const known = seen.get(value);
  if (known !== undefined) return known;
  if (value instanceof Uint8Array) {
    const c = value.slice();
    seen.set(value, c);
    return c;
  }
  if (Array.isArray(value)) {
    const c: unknown[] = [];
    seen.set(value, c);
    for (const x of value) c.push(copy(x, seen));
    return c;
  }
  const proto = Object.getPrototypeOf(value) as object | null;
  if (proto !== Object.prototype && !(proto !== null && CLONEABLE.has(proto))) return value;
  const c = Object.create(proto) as Record<PropertyKey, unknown>;
  seen.set(value, c);
  for (const key of Reflect.ownKeys(value)) {
    const d = Object.getOwnPropertyDescriptor(value, key)!;
    if ('value' in d && !(typeof key === 'string' && SHARED.has(key))) d.value = copy(d.value, seen);
    Object.defineProperty(c, key, d);
  }
  return c;
}

/** An independent copy of `engine` that continues from its current state. */
export function fork<T extends object>(engine: T): T {
  return copy(engine, new Map()) as T;
}
