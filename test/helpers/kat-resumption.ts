/**
 * The known-answer scenario behind test/vectors/resumption-<suite>.json: a full handshake
 * on which the server issues one ticket (NewSessionTicket), then a second connection that
 * resumes with it (PSK + fresh X-Wing, no signatures), one message each way, and the
 * authenticated close. Every random input comes from labelled deterministic generators
 * (as in kat.ts: draw_i(n) = SHAKE256(utf8(label) || u32 i, n)) and a fixed clock, so the
 * vector replays byte for byte on any backend and across them. `npm run vectors` writes
 * the files; test/handshake/resumption-known-answer.test.ts replays them and recomputes
 * the resumption key schedule from docs/protocol.md section 15.
 */
import { toHex, utf8Encode } from '../../src/bytes.js';
import type { CryptoBackend } from '../../src/crypto/types.js';
import { createIssuer, identityFromSeed, issueCredential, TrustStore } from '../../src/identity/index.js';
import type { ClientTicket } from '../../src/resumption/client-tickets.js';
import { TicketReplayGuard } from '../../src/resumption/replay.js';
import { TicketKeys } from '../../src/resumption/ticket-keys.js';
import { Session, type SessionEvent } from '../../src/session/session.js';
import { Suite } from '../../src/wire/messages.js';
import { Writer } from '../../src/wire/writer.js';
import { labelRecords, type LabelledRecord } from './kat.js';

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

const NOW_MS = Date.UTC(2026, 0, 1);
const LATER_MS = NOW_MS + 3600_000;
/** The server's configured endpoint (its path) and the endpoint the client names in its ClientHello (extension 0x0001), as in kat.ts. */
const SERVED_PATH = '/mcp';
const NAMED_ENDPOINT = '//tools.example:8443/mcp';

export interface ConnectionVector {
  now_ms: number;
  draws: { client: Draw[]; server: Draw[] };
  /** Every record on the wire, in order, per direction, labelled as in kat.ts (what it carries, the traffic secret and sequence number, content and padding lengths). */
  records: { client_to_server: LabelledRecord[]; server_to_client: LabelledRecord[] };
  /** Every secret of the key schedule, as logged (hex). */
  secrets: Record<string, string>;
  resumed: boolean;
}

export interface ResumptionVector {
  description: string;
  suite: number;
  issuer: { id: string; seed: string };
  client: { agent_id: string; seed: string; credential: string };
  server: { agent_id: string; seed: string; credential: string };
  issuance_draws: Draw[];
  ticket_key: { id: string; key: string; created_at: number };
  ticket_endpoint: string;
  /** The full handshake that issues the ticket. */
  full: ConnectionVector;
  /** What the client keeps from the NewSessionTicket. */
  ticket: { nonce: string; lifetime: number; ticket: string; psk: string; expires_at: number };
  /** The resumed connection, an hour later. */
  resumed: ConnectionVector;
  application: { client_message: string; server_message: string };
}

function connect(
  clientBackend: CryptoBackend,
  serverBackend: CryptoBackend,
  suite: number,
  label: string,
  nowMs: number,
  parts: { clientKey: ReturnType<typeof identityFromSeed>; serverKey: ReturnType<typeof identityFromSeed>; clientCred: Uint8Array; serverCred: Uint8Array; trust: TrustStore; keys: TicketKeys },
  resumeTicket: ClientTicket | undefined,
  messages: { client: string; server: string } | undefined,
): { vector: ConnectionVector; tickets: ClientTicket[] } {
  const clientDrbg = new Drbg(clientBackend, `pqmcp kat resumption ${label} client ${suite}`);
  const serverDrbg = new Drbg(serverBackend, `pqmcp kat resumption ${label} server ${suite}`);
  const secrets: Record<string, string> = {};
  const clientSecrets: Record<string, string> = {};
  const now = () => nowMs;
  const client = Session.client({
    backend: clientBackend,
    identity: { keyPair: parts.clientKey, credential: parts.clientCred },
    trust: parts.trust,
    suites: [suite],
    now,
    expectedPeerId: 'agent://example/server',
    endpoint: NAMED_ENDPOINT,
    random: (n, purpose) => clientDrbg.next(n, purpose),
    keyLog: (l, s) => (clientSecrets[l] = toHex(s)),
    ...(resumeTicket ? { resumeTicket } : {}),
  });
  const server = Session.server({
    backend: serverBackend,
    identity: { keyPair: parts.serverKey, credential: parts.serverCred },
    trust: parts.trust,
    suites: [suite],
    now,
    random: (n, purpose) => serverDrbg.next(n, purpose),
    keyLog: (l, s) => (secrets[l] = toHex(s)),
    // The server checks the named endpoint against the path it serves (docs/protocol.md 5.7),
    // so its tickets bind the named endpoint, authority included (15.4 step 5).
    acceptEndpoints: [SERVED_PATH],
    tickets: { keys: parts.keys, replay: new TicketReplayGuard(), endpoint: SERVED_PATH },
  });
  const c2s: Uint8Array[] = [];
  const s2c: Uint8Array[] = [];
  const events: SessionEvent[] = [];
  const cursor = { c2s: 0, s2c: 0 };
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
  c2s.push(...client.start().send);
  if (messages) c2s.push(...client.send(utf8Encode(messages.client)));
  pump();
  if (client.state !== 'established' || server.state !== 'established') throw new Error('KAT resumption handshake did not complete');
  for (const [k, v] of Object.entries(clientSecrets)) if (secrets[k] !== v) throw new Error(`client and server disagree on ${k}`);
  if (messages) s2c.push(...server.send(utf8Encode(messages.server)));
  c2s.push(...client.close());
  pump();
  const tickets = events.flatMap((e) => (e.type === 'ticket' ? [e.ticket] : []));
  return {
    vector: {
      now_ms: nowMs,
      draws: { client: clientDrbg.draws, server: serverDrbg.draws },
      records: { client_to_server: labelRecords(serverBackend, suite, 'c', { ...secrets }, c2s), server_to_client: labelRecords(serverBackend, suite, 's', { ...secrets }, s2c) },
      secrets,
      resumed: client.result!.resumed,
    },
    tickets,
  };
}

/** Run the resumption scenario for one suite, client and server on the given backends. */
export function runResumptionKat(clientBackend: CryptoBackend, suite: number, serverBackend: CryptoBackend = clientBackend): ResumptionVector {
  const issuance = new Drbg(clientBackend, `pqmcp kat resumption issuance ${suite}`);
  const issuerSeed = issuance.next(64, 'issuer seed');
  const clientSeed = issuance.next(64, 'client identity seed');
  const serverSeed = issuance.next(64, 'server identity seed');
  const issuer = createIssuer(clientBackend, { id: 'issuer://example/ca', seed: issuerSeed });
  let subject = '';
  const issueRandom = { now: () => NOW_MS, randomness: (n: number) => issuance.next(n, `${subject} credential ${n === 32 ? 'ML-DSA rnd' : 'serial'}`) };
  const clientKey = identityFromSeed(clientBackend, clientSeed);
  const serverKey = identityFromSeed(serverBackend, serverSeed);
  subject = 'client';
  const clientCred = issueCredential(clientBackend, issuer, { agentId: 'agent://example/client', publicKey: clientKey.publicKey, usage: 'client', scopes: ['tools:call'], validForSeconds: 86400 }, issueRandom);
  subject = 'server';
  const serverCred = issueCredential(clientBackend, issuer, { agentId: 'agent://example/server', publicKey: serverKey.publicKey, usage: 'server', validForSeconds: 86400 }, issueRandom);
  const trust = new TrustStore({ issuers: [{ id: issuer.id, publicKey: issuer.publicKey }] });
  const ticketKey = { id: issuance.next(8, 'ticket key id'), key: issuance.next(32, 'ticket key'), createdAt: NOW_MS / 1000 };
  const keys = new TicketKeys([ticketKey]);
  const parts = { clientKey, serverKey, clientCred: clientCred.encoded, serverCred: serverCred.encoded, trust, keys };

  const full = connect(clientBackend, serverBackend, suite, 'full', NOW_MS, parts, undefined, undefined);
  if (full.tickets.length !== 1) throw new Error('KAT: expected one ticket');
  const ticket = full.tickets[0]!;
  // Read before the resumed handshake: it consumes the ticket (wipes its PSK).
  const psk = toHex(ticket.psk);
  const application = { client_message: '{"jsonrpc":"2.0","id":1,"method":"ping"}', server_message: '{"jsonrpc":"2.0","id":1,"result":{}}' };
  const resumed = connect(clientBackend, serverBackend, suite, 'resumed', LATER_MS, parts, ticket, { client: application.client_message, server: application.server_message });
  if (!resumed.vector.resumed) throw new Error('KAT: the second connection did not resume');
  return {
    description: 'PQMCP/1 resumption known-answer test: generated by `npm run vectors` (test/helpers/kat-resumption.ts; docs/protocol.md section 15)',
    suite,
    issuer: { id: issuer.id, seed: toHex(issuerSeed) },
    client: { agent_id: 'agent://example/client', seed: toHex(clientSeed), credential: toHex(clientCred.encoded) },
    server: { agent_id: 'agent://example/server', seed: toHex(serverSeed), credential: toHex(serverCred.encoded) },
    issuance_draws: issuance.draws,
    ticket_key: { id: toHex(ticketKey.id), key: toHex(ticketKey.key), created_at: ticketKey.createdAt },
    ticket_endpoint: NAMED_ENDPOINT,
    full: full.vector,
    ticket: { nonce: '00', lifetime: ticket.expiresAt - NOW_MS / 1000, ticket: toHex(ticket.ticket), psk, expires_at: ticket.expiresAt },
    resumed: resumed.vector,
    application,
  };
}

export const RESUMPTION_KAT_FILES: { file: string; suite: number; run: (client: CryptoBackend, server: CryptoBackend) => ResumptionVector }[] = [
  { file: 'resumption-chacha20poly1305.json', suite: Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256, run: (c, s) => runResumptionKat(c, Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256, s) },
  { file: 'resumption-aes256gcm.json', suite: Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256, run: (c, s) => runResumptionKat(c, Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256, s) },
];
