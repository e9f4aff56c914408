/**
 * The known-answer scenario behind test/vectors/handshake-*.json: a whole PQMCP/1 session
 * (issuer, two agents, handshake, one application message each way, exporter, close) with
 * every random input drawn from a fixed deterministic generator and a fixed clock, so it
 * replays byte for byte on any backend. `npm run vectors` writes the files; the test
 * replays the scenario on each backend and compares every field.
 *
 * The generator (not part of the protocol; any source of these exact bytes will do):
 *   draw_i(n) = SHAKE256(utf8(label) || u32(i), n), i = 0, 1, 2, ...
 * Every draw is also recorded in the vector file, in order, so an implementation can feed
 * the values directly.
 */
import { concat, fromHex, toHex, utf8Encode } from '../../src/bytes.js';
import { trafficKeys } from '../../src/handshake/key-schedule.js';
import { CipherState, InnerType } from '../../src/record/index.js';
import { Suite } from '../../src/wire/messages.js';
import type { CryptoBackend } from '../../src/crypto/types.js';
import { createIssuer, identityFromSeed, issueCredential, TrustStore } from '../../src/identity/index.js';
import { Session, type SessionEvent } from '../../src/session/session.js';
import { Writer } from '../../src/wire/writer.js';

export interface Draw {
  purpose: string;
  hex: string;
}

class Drbg {
  private i = 0;
  readonly draws: Draw[] = [];
  constructor(
    private readonly backend: CryptoBackend,
    private readonly label: string,
  ) {}
  next(n: number, purpose: string): Uint8Array {
    const out = this.backend.shake256(new Writer().bytes(utf8Encode(this.label)).u32(this.i++).finish(), n);
    this.draws.push({ purpose, hex: toHex(out) });
    return out;
  }
}

export interface KatVector {
  description: string;
  suite: number;
  now_ms: number;
  issuer: { id: string; seed: string; public_key_fingerprint: string };
  client: { agent_id: string; seed: string; credential: string };
  server: { agent_id: string; seed: string; credential: string };
  draws: { issuance: Draw[]; client: Draw[]; server: Draw[] };
  /** Framed handshake messages in transcript order. */
  transcript: Record<string, string>;
  transcript_hash: string;
  secrets: Record<string, string>;
  /** Records on the wire, in order, per direction. */
  records: { client_to_server: string[]; server_to_client: string[] };
  application: { client_message: string; server_message: string };
  exporter: { label: string; context: string; length: number; value: string };
}

const NOW_MS = Date.UTC(2026, 0, 1);
const MESSAGE_NAMES = ['client_hello', 'server_hello', 'server_credential', 'server_credential_verify', 'server_finished', 'client_credential', 'client_credential_verify', 'client_finished'];

/** Decrypt protected handshake records in order with a handshake traffic secret. */
function openHandshakeRecords(backend: CryptoBackend, suite: number, secretHex: string, records: Uint8Array[]): Uint8Array[] {
  const { key, iv } = trafficKeys(backend, fromHex(secretHex));
  const cipher = new CipherState(backend, suite === Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256 ? 'aes-256-gcm' : 'chacha20-poly1305', key, iv);
  return records.map((r) => {
    const { innerType, content } = cipher.open(r.subarray(0, 4), r.subarray(4));
    if (innerType !== InnerType.handshake) throw new Error('expected a protected handshake record');
    return content;
  });
}

/** Run the scenario for one suite on one backend and return the full vector. */
export function runKatScenario(backend: CryptoBackend, suite: number): KatVector {
  const issuance = new Drbg(backend, `pqmcp kat issuance ${suite}`);
  const issuerSeed = issuance.next(64, 'issuer seed');
  const clientSeed = issuance.next(64, 'client identity seed');
  const serverSeed = issuance.next(64, 'server identity seed');
  const issuer = createIssuer(backend, { id: 'issuer://example/ca', seed: issuerSeed });
  const now = () => NOW_MS;
  const issueRandom = { now, randomness: (n: number) => issuance.next(n, n === 32 ? 'credential ML-DSA rnd' : 'credential serial') };
  const clientKey = identityFromSeed(backend, clientSeed);
  const serverKey = identityFromSeed(backend, serverSeed);
  const clientCred = issueCredential(backend, issuer, { agentId: 'agent://example/client', displayName: 'KAT client', publicKey: clientKey.publicKey, scopes: ['tools:call'], attributes: { model: 'kat-1' }, validForSeconds: 86400 }, issueRandom);
  const serverCred = issueCredential(backend, issuer, { agentId: 'agent://example/server', displayName: 'KAT server', publicKey: serverKey.publicKey, scopes: ['mcp:serve'], validForSeconds: 86400 }, issueRandom);
  const trust = new TrustStore({ issuers: [{ id: issuer.id, publicKey: issuer.publicKey }] });

  const clientDrbg = new Drbg(backend, `pqmcp kat client ${suite}`);
  const serverDrbg = new Drbg(backend, `pqmcp kat server ${suite}`);
  const secrets: Record<string, string> = {};
  const clientSecrets: Record<string, string> = {};
  const client = Session.client({
    backend,
    identity: { keyPair: clientKey, credential: clientCred },
    trust,
    suites: [suite],
    now,
    random: (n) => clientDrbg.next(n, `client random(${n})`),
    keyLog: (label, s) => (clientSecrets[label] = toHex(s)),
  });
  const server = Session.server({
    backend,
    identity: { keyPair: serverKey, credential: serverCred },
    trust,
    suites: [suite],
    now,
    random: (n) => serverDrbg.next(n, `server random(${n})`),
    keyLog: (label, s) => (secrets[label] = toHex(s)),
  });

  const c2s: Uint8Array[] = [];
  const s2c: Uint8Array[] = [];
  const events: SessionEvent[] = [];
  const clientMessage = '{"jsonrpc":"2.0","id":1,"method":"initialize"}';
  const serverMessage = '{"jsonrpc":"2.0","id":1,"result":{}}';

  c2s.push(...client.start().send);
  client.send(utf8Encode(clientMessage));
  let cursor = { c2s: 0, s2c: 0 };
  for (let guard = 0; guard < 8; guard++) {
    for (const r of c2s.slice(cursor.c2s)) {
      const o = server.receive(r);
      s2c.push(...o.send);
      events.push(...o.events);
    }
    cursor.c2s = c2s.length;
    for (const r of s2c.slice(cursor.s2c)) {
      const o = client.receive(r);
      c2s.push(...o.send);
      events.push(...o.events);
    }
    cursor.s2c = s2c.length;
    if (cursor.c2s === c2s.length && server.state === 'established') break;
  }
  const failure = events.find((e) => e.type === 'error');
  if (failure && failure.type === 'error') throw failure.error;
  if (client.state !== 'established' || server.state !== 'established') throw new Error('KAT handshake did not complete');
  for (const [k, v] of Object.entries(clientSecrets)) {
    if (secrets[k] !== v) throw new Error(`client and server disagree on ${k}`);
  }
  for (const r of server.send(utf8Encode(serverMessage))) s2c.push(r);
  c2s.push(...client.close());

  // The two hellos are plaintext; the other six handshake messages are recovered from the
  // protected records with the logged handshake traffic secrets (records 1-3 each way).
  const transcript: Record<string, string> = {};
  const plain = [c2s[0]!.subarray(4), s2c[0]!.subarray(4)];
  const serverFlight = openHandshakeRecords(backend, suite, secrets['s_hs_traffic']!, s2c.slice(1, 4));
  const clientFlight = openHandshakeRecords(backend, suite, secrets['c_hs_traffic']!, c2s.slice(1, 4));
  [...plain, ...serverFlight, ...clientFlight].forEach((m, i) => (transcript[MESSAGE_NAMES[i]!] = toHex(m)));
  if (toHex(backend.sha256(concat(...[...plain, ...serverFlight, ...clientFlight]))) !== toHex(client.result!.transcriptHash)) {
    throw new Error('recovered transcript does not hash to the session transcript hash');
  }

  const exporterContext = utf8Encode('kat context');
  return {
    description: 'PQMCP/1 full session known-answer test: generated by `npm run vectors` (test/helpers/kat.ts)',
    suite,
    now_ms: NOW_MS,
    issuer: { id: issuer.id, seed: toHex(issuerSeed), public_key_fingerprint: issuer.fingerprint },
    client: { agent_id: 'agent://example/client', seed: toHex(clientSeed), credential: toHex(clientCred.encoded) },
    server: { agent_id: 'agent://example/server', seed: toHex(serverSeed), credential: toHex(serverCred.encoded) },
    draws: { issuance: issuance.draws, client: clientDrbg.draws, server: serverDrbg.draws },
    transcript,
    transcript_hash: toHex(client.result!.transcriptHash),
    secrets,
    records: { client_to_server: c2s.map(toHex), server_to_client: s2c.map(toHex) },
    application: { client_message: clientMessage, server_message: serverMessage },
    exporter: { label: 'EXPORTER-kat', context: toHex(exporterContext), length: 32, value: toHex(client.exportKeyingMaterial('EXPORTER-kat', exporterContext, 32)) },
  };
}
