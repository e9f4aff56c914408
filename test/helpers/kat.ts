/**
 * The known-answer scenarios behind test/vectors/*.json: whole PQMCP/1 sessions with every
 * random input drawn from a labelled deterministic generator and a fixed clock, so they
 * replay byte for byte on any backend, and across backends (client on one, server on the
 * other). `npm run vectors` writes the files (scripts/generate-vectors.ts); the
 * known-answer test replays every entry of KAT_FILES on each backend pair and compares
 * every field.
 *
 * The generator (not part of the protocol; any source of these exact bytes will do):
 *   draw_i(n) = SHAKE256(utf8(generator label) || u32(i), n), i = 0, 1, 2, ...
 * Every draw is also recorded in the vector file with its purpose, in order, so an
 * implementation can feed the values directly.
 *
 * The session scenario (docs/protocol.md, section 14): issuance of two credentials; the
 * handshake with the client's first message sent 1-RTT; one message each way; a message of
 * 65,736 bytes (two fragments); a KeyUpdate with request_update = 1 and its answer; one
 * message each way under the updated keys; a multi-message record each way (two client
 * messages, three server messages, queued and flushed together: inner type 0x06, section
 * 3.6); the authenticated close both ways. The client
 * pads its application records to multiples of 256 bytes; both Credential records are
 * padded to multiples of 1024. The ClientHello names the endpoint //tools.example:8443/mcp
 * (extension 0x0001). Every record is listed with a label saying what it carries,
 * under which traffic secret, at which sequence number, and how much padding it has.
 */
import { concat, fromHex, toHex, utf8Encode } from '../../src/bytes.js';
import { exportKeyingMaterial as exportFromSecret, nextTrafficSecret, trafficKeys } from '../../src/handshake/key-schedule.js';
import { writeNonce } from '../../src/record/_nonce.js';
import { CipherState, InnerType, RecordType, encodeRecord } from '../../src/record/index.js';
import { MsgType, Suite, encodeAlert } from '../../src/wire/messages.js';
import type { CryptoBackend } from '../../src/crypto/types.js';
import { createIssuer, identityFromSeed, issueCredential, TrustStore } from '../../src/identity/index.js';
import { Session, type SessionEvent } from '../../src/session/session.js';
import { Writer } from '../../src/wire/writer.js';

export interface Draw {
  purpose: string;
  hex: string;
}

export interface LabelledRecord {
  label: string;
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
  client: { agent_id: string; seed: string; credential: string; application_padding: number };
  server: { agent_id: string; seed: string; credential: string; application_padding: number };
  draws: { issuance: Draw[]; client: Draw[]; server: Draw[] };
  /** Framed handshake messages in transcript order. */
  transcript: Record<string, string>;
  transcript_hash: string;
  secrets: Record<string, string>;
  /** Records on the wire, in order, per direction, each labelled. */
  records: { client_to_server: LabelledRecord[]; server_to_client: LabelledRecord[] };
  /** Application messages in the order sent, with who sent them. */
  application: { from: 'client' | 'server'; utf8: string }[];
  exporter: { label: string; context: string; length: number; value: string };
  /** Plaintext alert records (what a side without keys sends), by name. */
  plaintext_alerts: Record<string, string>;
}

const NOW_MS = Date.UTC(2026, 0, 1);
const MESSAGE_NAMES = ['client_hello', 'server_hello', 'server_credential', 'server_credential_verify', 'server_finished', 'client_credential', 'client_credential_verify', 'client_finished'];
const HANDSHAKE_NAMES: Record<number, string> = { [MsgType.credential]: 'Credential', [MsgType.credentialVerify]: 'CredentialVerify', [MsgType.finished]: 'Finished', [MsgType.newSessionTicket]: 'NewSessionTicket' };
const CLIENT_PADDING = 256;
/** The endpoint the client names (ClientHello extension 0x0001); the server serves "/mcp". */
const KAT_ENDPOINT = '//tools.example:8443/mcp';
const aeadOf = (suite: number) => (suite === Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256 ? 'aes-256-gcm' : 'chacha20-poly1305');

/** Decrypt protected handshake records in order with a handshake traffic secret. */
function openHandshakeRecords(backend: CryptoBackend, suite: number, secretHex: string, records: Uint8Array[]): Uint8Array[] {
  const { key, iv } = trafficKeys(backend, fromHex(secretHex));
  const cipher = new CipherState(backend, aeadOf(suite), key, iv);
  return records.map((r) => {
    const { innerType, content } = cipher.open(r.subarray(0, 4), r.subarray(4));
    if (innerType !== InnerType.handshake) throw new Error('expected a protected handshake record');
    return content;
  });
}

/**
 * Label one direction's records by opening each with the traffic secrets in force: the
 * handshake secret until Finished, then application secret 0, the next one after each
 * KeyUpdate. Adds the derived later secrets to `secrets`. Throws if a record does not open.
 */
export function labelRecords(backend: CryptoBackend, suite: number, side: 'c' | 's', secrets: Record<string, string>, records: Uint8Array[]): LabelledRecord[] {
  let name = `${side}_hs_traffic`;
  let secret: Uint8Array = fromHex(secrets[name]!);
  let seq = 0;
  let generation = 0;
  const use = (n: string, s: Uint8Array) => {
    name = n;
    secret = s;
    seq = 0;
    secrets[n] = toHex(s);
  };
  return records.map((r) => {
    const hex = toHex(r);
    if (r[0] === RecordType.handshake) return { label: `${r[4] === MsgType.clientHello ? 'ClientHello' : 'ServerHello'} (plaintext handshake record)`, hex };
    if (r[0] === RecordType.alert) return { label: `alert ${(r[4]! << 8) | r[5]!} (plaintext alert record)`, hex };
    const { key, iv } = trafficKeys(backend, secret);
    const inner = backend.aead(aeadOf(suite), key).open(writeNonce(new Uint8Array(12), iv, seq), r.subarray(4), r.subarray(0, 4));
    if (!inner) throw new Error(`record does not open under ${name} seq ${seq}`);
    let last = inner.length - 1;
    while (last > 0 && inner[last] === 0) last--;
    const type = inner[last]!;
    const content = inner.subarray(0, last);
    const padding = inner.length - 1 - last;
    let what: string;
    if (type === InnerType.handshake) what = HANDSHAKE_NAMES[content[0]!]!;
    else if (type === InnerType.keyUpdate) what = `KeyUpdate (request_update = ${content[0]})`;
    else if (type === InnerType.alert) what = `alert ${(content[0]! << 8) | content[1]!}${content[1] === 0 && content[0] === 0 ? ' (close_notify)' : ''}`;
    else if (type === InnerType.applicationFragment) what = 'application fragment, more follow';
    else if (type === InnerType.applicationMulti) what = 'multi-message record';
    else what = 'application fragment, last of its message';
    const label = `${what} | protected under ${name}, seq ${seq} | content ${content.length} bytes, padding ${padding} bytes`;
    seq++;
    if (type === InnerType.handshake && content[0] === MsgType.finished) use(`${side}_ap_traffic_0`, fromHex(secrets[`${side}_ap_traffic_0`]!));
    if (type === InnerType.keyUpdate) use(`${side}_ap_traffic_${++generation}`, nextTrafficSecret(backend, secret));
    return { label, hex };
  });
}

/**
 * Run the session scenario for one suite, the client on `clientBackend` and the server on
 * `serverBackend` (the same backend by default), and return the full vector.
 */
export function runKatScenario(clientBackend: CryptoBackend, suite: number, serverBackend: CryptoBackend = clientBackend): KatVector {
  const backend = clientBackend;
  const issuance = new Drbg(backend, `pqmcp kat issuance ${suite}`);
  const issuerSeed = issuance.next(64, 'issuer seed');
  const clientSeed = issuance.next(64, 'client identity seed');
  const serverSeed = issuance.next(64, 'server identity seed');
  const issuer = createIssuer(backend, { id: 'issuer://example/ca', seed: issuerSeed });
  const now = () => NOW_MS;
  let subject = '';
  const issueRandom = { now, randomness: (n: number) => issuance.next(n, `${subject} credential ${n === 32 ? 'ML-DSA rnd' : 'serial'}`) };
  const clientKey = identityFromSeed(backend, clientSeed);
  const serverKey = identityFromSeed(serverBackend, serverSeed);
  subject = 'client';
  const clientCred = issueCredential(backend, issuer, { agentId: 'agent://example/client', displayName: 'KAT client', publicKey: clientKey.publicKey, usage: 'client', scopes: ['tools:call'], attributes: { model: 'kat-1' }, validForSeconds: 86400 }, issueRandom);
  subject = 'server';
  const serverCred = issueCredential(backend, issuer, { agentId: 'agent://example/server', displayName: 'KAT server', publicKey: serverKey.publicKey, usage: 'server', scopes: ['mcp:serve'], validForSeconds: 86400 }, issueRandom);
  const trust = new TrustStore({ issuers: [{ id: issuer.id, publicKey: issuer.publicKey }] });

  const clientDrbg = new Drbg(clientBackend, `pqmcp kat client ${suite}`);
  const serverDrbg = new Drbg(serverBackend, `pqmcp kat server ${suite}`);
  const secrets: Record<string, string> = {};
  const clientSecrets: Record<string, string> = {};
  const client = Session.client({
    backend: clientBackend,
    identity: { keyPair: clientKey, credential: clientCred },
    trust,
    suites: [suite],
    now,
    applicationPadding: CLIENT_PADDING,
    endpoint: KAT_ENDPOINT,
    random: (n, purpose) => clientDrbg.next(n, purpose),
    keyLog: (label, s) => (clientSecrets[label] = toHex(s)),
  });
  const server = Session.server({
    backend: serverBackend,
    identity: { keyPair: serverKey, credential: serverCred },
    trust,
    suites: [suite],
    now,
    acceptEndpoints: ['/mcp'],
    random: (n, purpose) => serverDrbg.next(n, purpose),
    keyLog: (label, s) => (secrets[label] = toHex(s)),
  });

  const c2s: Uint8Array[] = [];
  const s2c: Uint8Array[] = [];
  const events: SessionEvent[] = [];
  const application: KatVector['application'] = [];
  const cursor = { c2s: 0, s2c: 0 };
  /** Deliver everything not yet delivered, both ways, until both sides are quiet. */
  const pump = () => {
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
      if (cursor.c2s === c2s.length) break;
    }
    const failure = events.find((e) => e.type === 'error');
    if (failure && failure.type === 'error') throw failure.error;
  };
  const send = (from: 'client' | 'server', text: string) => {
    application.push({ from, utf8: text });
    (from === 'client' ? c2s : s2c).push(...(from === 'client' ? client : server).send(utf8Encode(text)));
  };

  c2s.push(...client.start().send);
  send('client', '{"jsonrpc":"2.0","id":1,"method":"initialize"}');
  pump();
  if (client.state !== 'established' || server.state !== 'established') throw new Error('KAT handshake did not complete');
  for (const [k, v] of Object.entries(clientSecrets)) {
    if (secrets[k] !== v) throw new Error(`client and server disagree on ${k}`);
  }
  send('server', '{"jsonrpc":"2.0","id":1,"result":{}}');
  // 65,736 bytes: one full fragment of 65,536 and a last fragment of 200.
  const head = '{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"';
  const tail = '"}}';
  send('client', head + 'a'.repeat(65736 - head.length - tail.length) + tail);
  c2s.push(...client.updateKeys(true));
  pump();
  send('client', '{"jsonrpc":"2.0","id":2,"method":"ping"}');
  send('server', '{"jsonrpc":"2.0","id":2,"result":{}}');
  // Queued in one turn, flushed together: one multi-message record (0x06) each way.
  const batch = (from: 'client' | 'server', texts: string[]) => {
    const session = from === 'client' ? client : server;
    for (const t of texts) {
      application.push({ from, utf8: t });
      session.queue(utf8Encode(t));
    }
    const records = session.flush();
    if (records.length !== 1) throw new Error('KAT batch did not make one record');
    (from === 'client' ? c2s : s2c).push(...records);
  };
  batch('client', ['{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":7,"progress":1}}', '{"jsonrpc":"2.0","id":3,"method":"tools/list"}']);
  batch('server', ['{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}', '{"jsonrpc":"2.0","id":3,"result":{"tools":[]}}', '{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"done"}}']);
  pump();
  c2s.push(...client.close());
  pump();
  const delivered = events.flatMap((e) => (e.type === 'message' ? [new TextDecoder().decode(e.data)] : []));
  if (delivered.length !== application.length || (client.state as string) !== 'closed' || (server.state as string) !== 'closed') throw new Error('KAT session did not deliver everything and close');

  // The two hellos are plaintext; the other six handshake messages are recovered from the
  // protected records with the logged handshake traffic secrets (records 1-3 each way).
  const transcript: Record<string, string> = {};
  const plain = [c2s[0]!.subarray(4), s2c[0]!.subarray(4)];
  const serverFlight = openHandshakeRecords(backend, suite, secrets['s_hs_traffic']!, s2c.slice(1, 4));
  const clientFlight = openHandshakeRecords(backend, suite, secrets['c_hs_traffic']!, c2s.slice(1, 4));
  [...plain, ...serverFlight, ...clientFlight].forEach((m, i) => (transcript[MESSAGE_NAMES[i]!] = toHex(m)));
  const transcriptHash = toHex(backend.sha256(concat(...[...plain, ...serverFlight, ...clientFlight])));

  const exporterContext = utf8Encode('kat context');
  const exporter = { label: 'EXPORTER-kat', context: toHex(exporterContext), length: 32, value: '' };
  // The exporter secret is logged; the exporter is computed from it as the session would.
  exporter.value = toHex(exportFromSecret(backend, fromHex(secrets['exporter_secret']!), exporter.label, exporterContext, 32));
  // Labelling derives the later application secrets (after each KeyUpdate) into `secrets`.
  const records = { client_to_server: labelRecords(backend, suite, 'c', secrets, c2s), server_to_client: labelRecords(backend, suite, 's', secrets, s2c) };
  const alert = (code: number) => toHex(encodeRecord(RecordType.alert, encodeAlert(code)));
  return {
    description: 'PQMCP/1 full session known-answer test: generated by `npm run vectors` (test/helpers/kat.ts; docs/protocol.md section 14)',
    suite,
    now_ms: NOW_MS,
    issuer: { id: issuer.id, seed: toHex(issuerSeed), public_key_fingerprint: issuer.fingerprint },
    client: { agent_id: 'agent://example/client', seed: toHex(clientSeed), credential: toHex(clientCred.encoded), application_padding: CLIENT_PADDING },
    server: { agent_id: 'agent://example/server', seed: toHex(serverSeed), credential: toHex(serverCred.encoded), application_padding: 0 },
    draws: { issuance: issuance.draws, client: clientDrbg.draws, server: serverDrbg.draws },
    transcript,
    transcript_hash: transcriptHash,
    secrets: { ...secrets },
    records,
    application,
    exporter,
    plaintext_alerts: { protocol_version: alert(70), insufficient_security: alert(71), close_notify_as_abort: alert(0) },
  };
}

/** The vector files `npm run vectors` writes and the known-answer test replays. Add an entry to add a file. */
export const KAT_FILES: { file: string; suite: number; run: (client: CryptoBackend, server: CryptoBackend) => unknown }[] = [
  { file: 'handshake-chacha20poly1305.json', suite: Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256, run: (c, s) => runKatScenario(c, Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256, s) },
  { file: 'handshake-aes256gcm.json', suite: Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256, run: (c, s) => runKatScenario(c, Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256, s) },
];
