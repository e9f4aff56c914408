/**
 * The handshake state machines driven directly (no record layer), so a test can rewrite
 * the inside of messages that are encrypted on the wire: a field-by-field tamper of every
 * handshake message, truncation, duplication, reordering, replay across sessions, drops
 * and wrong epochs. Every case must end in a typed error, never a completed handshake.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createNobleBackend } from '../../src/crypto/noble.js';
import { PqmcpError } from '../../src/errors.js';
import { ClientHandshake, ServerHandshake } from '../../src/handshake/handshake.js';
import type { Epoch, HandshakeAction, HandshakeConfig } from '../../src/handshake/types.js';
import { makeAgent, makeIssuer, trustFor, type TestAgent } from '../helpers/identities.js';

const backend = createNobleBackend();
let client: TestAgent;
let server: TestAgent;
let trust: ReturnType<typeof trustFor>;

beforeAll(() => {
  const issuer = makeIssuer(backend);
  trust = trustFor(issuer);
  client = makeAgent(backend, issuer, 'agent://acme/sm-client');
  server = makeAgent(backend, issuer, 'agent://acme/sm-server');
});

const cfg = (agent: TestAgent): HandshakeConfig => ({ backend, identity: agent.local, trust });

/** Index of each message in a normal run, and who receives it. */
const MESSAGES = ['ClientHello', 'ServerHello', 'ServerCredential', 'ServerVerify', 'ServerFinished', 'ClientCredential', 'ClientVerify', 'ClientFinished'] as const;
type MessageName = (typeof MESSAGES)[number];
const TO_SERVER = new Set<MessageName>(['ClientHello', 'ClientCredential', 'ClientVerify', 'ClientFinished']);

interface Run {
  error: PqmcpError | undefined;
  /** Which side threw. */
  failedSide: 'client' | 'server' | undefined;
  clientDone: boolean;
  serverDone: boolean;
  messages: Uint8Array[];
}

type Rewrite = (name: MessageName, message: Uint8Array) => Uint8Array[];

function sends(actions: HandshakeAction[]): { message: Uint8Array; epoch: Epoch }[] {
  return actions.flatMap((a) => (a.type === 'send' ? [{ message: a.message, epoch: a.epoch }] : []));
}

/** Run one handshake; `rewrite` may replace each message with zero or more messages. */
function run(rewrite: Rewrite = (_n, m) => [m], clientCfg = cfg(client), serverCfg = cfg(server)): Run {
  const c = new ClientHandshake(clientCfg);
  const s = new ServerHandshake(serverCfg);
  const messages: Uint8Array[] = [];
  let queue = sends(c.start());
  let toServer = true;
  let index = 0;
  const result: Run = { error: undefined, failedSide: undefined, clientDone: false, serverDone: false, messages };
  try {
    for (let guard = 0; guard < 8 && queue.length > 0; guard++) {
      const next: typeof queue = [];
      for (const { message, epoch } of queue) {
        const name = MESSAGES[index++]!;
        messages.push(message);
        for (const m of rewrite(name, message)) {
          result.failedSide = toServer ? 'server' : 'client';
          const actions = (toServer ? s : c).receive(m, epoch);
          result.failedSide = undefined;
          next.push(...sends(actions));
          if (actions.some((a) => a.type === 'complete')) {
            if (toServer) result.serverDone = true;
            else result.clientDone = true;
          }
        }
      }
      queue = next;
      toServer = !toServer;
    }
  } catch (err) {
    result.error = err as PqmcpError;
  }
  return result;
}

/** Field boundaries (start offsets within the framed message) for a field-by-field tamper. */
function fieldOffsets(name: MessageName, m: Uint8Array): [string, number, number][] {
  const f: [string, number, number][] = [['msg_type', 0, 1], ['length', 1, 4]];
  const body = 4;
  switch (name) {
    case 'ClientHello': {
      const vlen = m[body]!;
      const suitesAt = body + 1 + vlen + 32;
      const slen = (m[suitesAt]! << 8) | m[suitesAt + 1]!;
      const kemAt = suitesAt + 2 + slen;
      f.push(['versions.length', body, body + 1], ['versions', body + 1, body + 1 + vlen], ['random', body + 1 + vlen, suitesAt]);
      f.push(['suites.length', suitesAt, suitesAt + 2], ['suites', suitesAt + 2, kemAt], ['kem_id', kemAt, kemAt + 2]);
      f.push(['key_share.length', kemAt + 2, kemAt + 4], ['key_share.mlkem', kemAt + 4, kemAt + 4 + 1184], ['key_share.x25519', kemAt + 4 + 1184, kemAt + 4 + 1216]);
      f.push(['extensions.length', m.length - 2, m.length]);
      break;
    }
    case 'ServerHello':
      f.push(['version', 4, 6], ['random', 6, 38], ['suite', 38, 40], ['kem_id', 40, 42], ['ciphertext.length', 42, 44]);
      f.push(['ciphertext.mlkem', 44, 44 + 1088], ['ciphertext.x25519', 44 + 1088, 44 + 1120], ['extensions.length', m.length - 2, m.length]);
      break;
    case 'ServerCredential':
    case 'ClientCredential':
      f.push(['credential.length', 4, 6], ['credential.tag', 6, 10], ['credential.version', 10, 11], ['credential.agent_id', 11, 40]);
      f.push(['credential.public_key', 200, 2000], ['credential.validity_and_issuer', m.length - 3450, m.length - 3380]);
      f.push(['credential.signature', m.length - 3373, m.length]);
      break;
    case 'ServerVerify':
    case 'ClientVerify':
      f.push(['algorithm', 4, 6], ['signature.length', 6, 8], ['signature.mldsa', 8, 8 + 3309], ['signature.ed25519', 8 + 3309, 8 + 3373]);
      break;
    case 'ServerFinished':
    case 'ClientFinished':
      f.push(['verify_data', 4, 36]);
      break;
  }
  return f;
}

let baseline: Run;
beforeAll(() => {
  baseline = run();
});

describe('handshake state machines', () => {
  it('complete a normal handshake with eight messages', () => {
    expect(baseline.error).toBeUndefined();
    expect(baseline.clientDone && baseline.serverDone).toBe(true);
    expect(baseline.messages).toHaveLength(8);
  });

  describe.each(MESSAGES.map((m) => [m]))('%s tampered', (name) => {
    it('in every field: first, middle and last byte of each; never completes', () => {
      const message = baseline.messages[MESSAGES.indexOf(name)]!;
      const fields = fieldOffsets(name, message);
      let cases = 0;
      for (const [field, start, end] of fields) {
        for (const pos of new Set([start, (start + end - 1) >> 1, end - 1])) {
          const r = run((n, m) => {
            if (n !== name) return [m];
            const t = m.slice();
            t[pos]! ^= 0x04;
            return [t];
          });
          cases++;
          expect(r.error, `${name}.${field}@${pos} was accepted`).toBeInstanceOf(PqmcpError);
          expect(r.clientDone && r.serverDone, `${name}.${field}@${pos}`).toBe(false);
          expect(r.error!.code, `${name}.${field}@${pos}: ${r.error!.message}`).toMatch(
            /^ERR_(DECODE|UNEXPECTED_MESSAGE|UNSUPPORTED_VERSION|UNSUPPORTED_SUITE|BAD_SIGNATURE|BAD_FINISHED|INVALID_KEY|CREDENTIAL_INVALID|UNTRUSTED_ISSUER)$/,
          );
        }
      }
      expect(cases).toBeGreaterThanOrEqual(fields.length);
    });

    it('truncated (with and without a consistent length) fails to decode', () => {
      const message = baseline.messages[MESSAGES.indexOf(name)]!;
      for (const cut of [1, 2, message.length >> 1, message.length - 5]) {
        const raw = run((n, m) => (n === name ? [m.subarray(0, m.length - cut)] : [m]));
        expect(raw.error?.code, `${name} cut ${cut}`).toBe('ERR_DECODE');
        const fixed = run((n, m) => {
          if (n !== name) return [m];
          const t = m.slice(0, m.length - cut);
          const len = t.length - 4;
          if (len < 0) return [t];
          t[1] = len >> 16;
          t[2] = (len >> 8) & 0xff;
          t[3] = len & 0xff;
          return [t];
        });
        expect(fixed.error?.code, `${name} cut ${cut} (consistent length)`).toMatch(/^ERR_(DECODE|UNSUPPORTED_VERSION)$/);
      }
    });

    it('duplicated is an unexpected message', () => {
      const r = run((n, m) => (n === name ? [m, m] : [m]));
      expect(r.error?.code).toBe('ERR_UNEXPECTED_MESSAGE');
      expect(r.failedSide).toBe(TO_SERVER.has(name) ? 'server' : 'client');
    });

    it('dropped never completes', () => {
      const r = run((n, m) => (n === name ? [] : [m]));
      expect(r.clientDone && r.serverDone).toBe(false);
      // A drop inside a flight makes the next message arrive in the wrong state.
      if (!['ServerFinished', 'ClientFinished', 'ClientHello'].includes(name)) expect(r.error?.code).toBe('ERR_UNEXPECTED_MESSAGE');
    });
  });

  it('reordered messages within a flight are unexpected', () => {
    let held: Uint8Array | undefined;
    const r = run((n, m) => {
      if (n === 'ServerCredential') {
        held = m;
        return [];
      }
      if (n === 'ServerVerify') return [m, held!];
      return [m];
    });
    expect(r.error?.code).toBe('ERR_UNEXPECTED_MESSAGE');
    expect(r.failedSide).toBe('client');
  });

  it('messages replayed from another session are refused', () => {
    const other = run();
    expect(other.error).toBeUndefined();
    const expectations: [MessageName, string][] = [
      ['ServerVerify', 'ERR_BAD_SIGNATURE'],
      ['ServerFinished', 'ERR_BAD_FINISHED'],
      ['ClientVerify', 'ERR_BAD_SIGNATURE'],
      ['ClientFinished', 'ERR_BAD_FINISHED'],
      ['ServerHello', 'ERR_BAD_SIGNATURE'],
    ];
    for (const [name, code] of expectations) {
      const r = run((n, m) => (n === name ? [other.messages[MESSAGES.indexOf(name)]!] : [m]));
      expect(r.error?.code, name).toBe(code);
    }
  });

  it('a message in the wrong epoch is unexpected', () => {
    const c = new ClientHandshake(cfg(client));
    const s = new ServerHandshake(cfg(server));
    const [hello] = sends(c.start());
    expect(() => s.receive(hello!.message, 'handshake')).toThrowError(expect.objectContaining({ code: 'ERR_UNEXPECTED_MESSAGE' }));
    // A failed state machine stays failed.
    expect(() => s.receive(hello!.message, 'plaintext')).toThrowError(expect.objectContaining({ code: 'ERR_UNEXPECTED_MESSAGE' }));
    expect(s.currentState).toBe('failed');
  });

  it('a handshake message after completion is unexpected', () => {
    const r = run((n, m) => (n === 'ClientFinished' ? [m, baseline.messages[0]!] : [m]));
    expect(r.serverDone).toBe(true);
    expect(r.error?.code).toBe('ERR_UNEXPECTED_MESSAGE');
  });
});
