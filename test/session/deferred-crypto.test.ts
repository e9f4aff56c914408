/**
 * deferCrypto: the server hands its X-Wing encapsulation and its composite signature out as
 * 'compute' events and resumes with the results. Same bytes as the inline path (with the
 * randomness injected), records that arrive meanwhile wait, a wrong result is refused, and
 * a refusal (abort with ServerBusyError) reaches the client as ServerBusyError before any
 * signature was made.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createNobleBackend } from '../../src/crypto/noble.js';
import { compositeSign } from '../../src/crypto/composite.js';
import { ServerBusyError } from '../../src/errors.js';
// From the package entry: docs/api.md names these types for drivers of a deferCrypto Session.
import type { CryptoRequest, CryptoResult } from '../../src/index.js';
import { Session, type SessionEvent, type SessionOptions } from '../../src/session/session.js';
import { makeAgent, makeIssuer, trustFor, type TestAgent } from '../helpers/identities.js';
import { text } from '../helpers/pair.js';

const backend = createNobleBackend();
let clientAgent: TestAgent;
let serverAgent: TestAgent;
let trust: ReturnType<typeof trustFor>;

beforeAll(() => {
  const issuer = makeIssuer(backend);
  trust = trustFor(issuer);
  clientAgent = makeAgent(backend, issuer, 'agent://acme/client');
  serverAgent = makeAgent(backend, issuer, 'agent://acme/server');
});

/** A deterministic randomness source (a counter stream), fresh per call. */
function counterRandom(): (n: number) => Uint8Array {
  let k = 0;
  return (n) => Uint8Array.from({ length: n }, () => k++ & 0xff);
}

function options(agent: TestAgent, extra: Partial<SessionOptions> = {}): SessionOptions {
  return { backend, identity: agent.local, trust, random: counterRandom(), now: () => Date.now(), ...extra };
}

function compute(request: CryptoRequest): CryptoResult {
  if (request.op === 'encapsulate') return { op: 'encapsulate', ...backend.xwing.encapsulate(request.publicKey, request.randomness) };
  return { op: 'sign', signature: compositeSign(backend, serverAgent.keyPair, request.message, request.context, request.randomness) };
}

/** Feed `records` to the server; answer every compute event at once. Returns all it sent and emitted. */
function serve(server: Session, records: Uint8Array[], requests: CryptoRequest[] = []): { send: Uint8Array[]; events: SessionEvent[] } {
  const send: Uint8Array[] = [];
  const events: SessionEvent[] = [];
  let outs = records.map((r) => server.receive(r));
  for (let guard = 0; guard < 8 && outs.length > 0; guard++) {
    const next = [];
    for (const o of outs) {
      send.push(...o.send);
      for (const e of o.events) {
        if (e.type === 'compute') {
          requests.push(e.request);
          next.push(server.resume(compute(e.request)));
        } else events.push(e);
      }
    }
    outs = next;
  }
  return { send, events };
}

function bytes(list: Uint8Array[]): string {
  return Buffer.concat(list).toString('hex');
}

describe('Session with deferCrypto (server)', () => {
  it('yields an encapsulation then a signature, and produces the inline path byte for byte', () => {
    const inlineClient = Session.client(options(clientAgent));
    const inlineServer = Session.server(options(serverAgent));
    const hello = inlineClient.start().send;
    const inline = hello.flatMap((r) => inlineServer.receive(r).send);

    const client = Session.client(options(clientAgent));
    const server = Session.server(options(serverAgent, { deferCrypto: true }));
    const requests: CryptoRequest[] = [];
    const deferred = serve(server, client.start().send, requests);
    expect(requests.map((r) => r.op)).toEqual(['encapsulate', 'sign']);
    expect(bytes(deferred.send)).toBe(bytes(inline));

    // The client completes against the deferred server, and the server against it.
    const back = deferred.send.flatMap((r) => client.receive(r).send);
    expect(client.state).toBe('established');
    serve(server, back);
    expect(server.state).toBe('established');
    const m = server.receive(client.send(text('hi'))[0]!);
    expect(m.events).toEqual([{ type: 'message', data: text('hi') }]);
  });

  it('buffers records that arrive while it computes and processes them on resume', () => {
    const client = Session.client(options(clientAgent));
    const server = Session.server(options(serverAgent, { deferCrypto: true }));
    const first = server.receive(Buffer.concat(client.start().send));
    const enc = first.events.find((e) => e.type === 'compute')!;
    expect(enc).toBeDefined();
    // A plaintext alert (unexpected_message) while waiting: not processed yet.
    const during = server.receive(Uint8Array.of(0x15, 0x00, 0x00, 0x02, 0x00, 10));
    expect(during).toEqual({ send: [], events: [] });
    const after = server.resume(compute((enc as { request: CryptoRequest }).request));
    const sign = after.events.find((e) => e.type === 'compute');
    expect(sign).toBeDefined();
    const final = server.resume(compute((sign as { request: CryptoRequest }).request));
    // Now the buffered alert is processed: the peer's abort, as a typed error.
    expect(final.events).toContainEqual({ type: 'error', error: expect.objectContaining({ code: 'ERR_PEER_ABORTED' }) });
    expect(server.state).toBe('failed');
  });

  it('refuses a result of the wrong kind or length', () => {
    const client = Session.client(options(clientAgent));
    const server = Session.server(options(serverAgent, { deferCrypto: true }));
    server.receive(Buffer.concat(client.start().send));
    const out = server.resume({ op: 'sign', signature: new Uint8Array(3373) });
    expect(out.events).toEqual([expect.objectContaining({ type: 'error', error: expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }) })]);
    expect(server.state).toBe('failed');
    // A late result after the failure is ignored, never thrown.
    expect(server.resume({ op: 'sign', signature: new Uint8Array(3373) })).toEqual({ send: [], events: [] });
  });

  it('a busy refusal instead of computing reaches the client as ServerBusyError', () => {
    const client = Session.client(options(clientAgent));
    const server = Session.server(options(serverAgent, { deferCrypto: true }));
    const first = server.receive(Buffer.concat(client.start().send));
    expect(first.send).toEqual([]);
    const alert = server.abort(new ServerBusyError('signing queue full'));
    expect(alert).toHaveLength(1);
    // Cheap: the whole answer is one small plaintext alert record.
    expect(alert[0]!.length).toBeLessThan(16);
    const got = client.receive(alert[0]!);
    const error = got.events.find((e) => e.type === 'error') as { error: unknown } | undefined;
    expect(error?.error).toBeInstanceOf(ServerBusyError);
  });

  it('without deferCrypto no compute event is ever emitted', () => {
    const client = Session.client(options(clientAgent));
    const server = Session.server(options(serverAgent));
    const out = server.receive(Buffer.concat(client.start().send));
    expect(out.events.filter((e) => e.type === 'compute')).toEqual([]);
    expect(() => server.resume({ op: 'sign', signature: new Uint8Array(3373) })).toThrow(/resume\(\) without a pending compute/);
  });
});
