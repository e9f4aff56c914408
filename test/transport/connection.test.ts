/**
 * Connection (the socket driver under both transports) against an in-memory socket pair:
 * write batching, batch limits, the order of rejections and onclose, contained callbacks,
 * exactly-once onclose, delivery held while replies are backed up.
 */
import { describe, expect, it, vi } from 'vitest';
import { createNativeBackend } from '../../src/crypto/native.js';
import { InternalError, KeepAliveTimeoutError, PeerAlertError } from '../../src/errors.js';
import type { PqmcpError } from '../../src/errors.js';
import { Session } from '../../src/session/session.js';
import { Connection } from '../../src/transport/connection.js';
import { CryptoPool } from '../../src/transport/crypto-pool.js';
import { EAGER_FLUSH, EAGER_MESSAGE } from '../../src/transport/batch-writer.js';
import type { ConnectionOptions, MessageSocket } from '../../src/transport/connection.js';
import { localIdentity } from '../../src/transport/options.js';
import { MAX_MESSAGES_PER_TURN, MAX_UNDELIVERED_MESSAGES } from '../../src/transport/inbox.js';
import { agent, fixtureCrypto, makeAgent, makeIssuer, trustFor } from '../helpers/identities.js';
import { waitFor } from '../helpers/mcp.js';

const backend = createNativeBackend();
const options: ConnectionOptions = { handshakeTimeoutMs: 10_000, keepAliveMs: 0, keepAliveTimeoutMs: 1_000, highWaterMark: 8 << 20, closeTimeoutMs: 1_000, maxWriteBatch: 256 * 1024, deliveryWaitsForDrain: false };

class FakeSocket implements MessageSocket {
  peer: FakeSocket | undefined;
  connection: Connection | undefined;
  readonly sent: Uint8Array[] = [];
  bufferedAmount = 0;
  private ended = false;
  send(data: Uint8Array, done: (err?: Error) => void): void {
    this.sent.push(data);
    setImmediate(() => {
      if (!this.ended) this.peer?.connection?.receive(data, true);
      done();
    });
  }
  close(code: number): void {
    setImmediate(() => {
      this.end(code);
      this.peer?.end(code);
    });
  }
  terminate(): void {
    this.end(1006);
    setImmediate(() => this.peer?.end(1006));
  }
  end(code: number): void {
    if (this.ended) return;
    this.ended = true;
    this.connection?.socketClosed(code);
  }
}

function pair(clientTrust = trustFor(), serverTrust = trustFor(), clientId = 'agent://pqmcp-test/client', serverOptions = options) {
  const a = new FakeSocket();
  const b = new FakeSocket();
  a.peer = b;
  b.peer = a;
  const client = new Connection(a, Session.client({ backend, identity: localIdentity(agent(clientId)), trust: clientTrust }), options);
  const server = new Connection(b, Session.server({ backend, identity: localIdentity(agent('agent://pqmcp-test/server')), trust: serverTrust }), serverOptions);
  a.connection = client;
  b.connection = server;
  return { client, server, a, b };
}

const bytes = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

describe('Connection', () => {
  it('batches every record written in one turn into one socket message', async () => {
    const { client, server, a } = pair();
    const got: string[] = [];
    server.onmessage = (d) => void got.push(str(d));
    client.start();
    await client.send(bytes('first'));
    const before = a.sent.length;
    const sends = Array.from({ length: 100 }, (_, i) => client.send(bytes(`m${i}`)));
    await Promise.all(sends);
    await waitFor(() => got.length === 101, 5_000, 'messages');
    expect(a.sent.length - before).toBe(1);
    expect(got.slice(1)).toEqual(Array.from({ length: 100 }, (_, i) => `m${i}`));
    await client.close();
  });

  it('cuts batches at maxWriteBatch', async () => {
    const { client, server, a } = pair();
    let received = 0;
    server.onmessage = (d) => void (received = d.length);
    client.start();
    await client.send(bytes('hello'));
    const before = a.sent.length;
    await client.send(new Uint8Array(1024 * 1024));
    await waitFor(() => received === 1024 * 1024, 5_000, 'big message');
    const writes = a.sent.slice(before);
    expect(writes.length).toBeGreaterThanOrEqual(5);
    for (const w of writes) expect(w.length).toBeLessThanOrEqual(options.maxWriteBatch);
    await client.close();
  });

  it('writes records of 16 KiB or more as their own socket messages, in order; smaller ones are still batched', async () => {
    const { client, server, a } = pair();
    const got: number[] = [];
    server.onmessage = (d) => void got.push(d.length);
    client.start();
    await client.send(bytes('hello'));
    await waitFor(() => got.length === 1, 5_000, 'hello');
    const before = a.sent.length;
    // Record length = content + 21 (header 4, inner type 1, tag 16). Messages of at most
    // 16 KiB sent in one turn share multi-message records (2 bytes of length each); larger
    // ones keep records of their own (docs/protocol.md section 3.6).
    const sizes = [1, 2, 16_385, 3, 4, 5, 16_384, 100 * 1024, 6];
    await Promise.all(sizes.map((n) => client.send(new Uint8Array(n))));
    await waitFor(() => got.length === 1 + sizes.length, 5_000, 'messages');
    expect(got.slice(1)).toEqual(sizes);
    const writes = a.sent.slice(before).map((w) => w.length);
    // [1, 2] one record, with 16385 (its own 16406-byte record, alone: >= 16 KiB) in the next
    // socket message | [3, 4, 5, 16384] one 16419-byte record, alone | 100 KiB = a 65557-byte
    // fragment and a 36885-byte final record, each alone | [6] with nothing to batch.
    expect(writes).toEqual([2 + 1 + 2 + 2 + 21, 16_385 + 21, 2 * 4 + 3 + 4 + 5 + 16_384 + 21, 65_557, 102_400 - 65_536 + 21, 27]);
  });

  it('batches small records of one turn into one socket message (a KeyUpdate between two multi-message records)', async () => {
    const { client, server, a } = pair();
    const got: number[] = [];
    server.onmessage = (d) => void got.push(d.length);
    client.start();
    await client.send(bytes('hello'));
    await waitFor(() => got.length === 1, 5_000, 'hello');
    const before = a.sent.length;
    void client.send(new Uint8Array(10));
    void client.send(new Uint8Array(20));
    // updateKeys seals what is queued first, so the order on the wire is the order of the calls.
    (client as unknown as { enqueue(r: Uint8Array[]): void }).enqueue(client.session.updateKeys(false));
    void client.send(new Uint8Array(30));
    void client.send(new Uint8Array(40));
    await waitFor(() => got.length === 5, 5_000, 'messages');
    expect(got.slice(1)).toEqual([10, 20, 30, 40]);
    // One socket message: [10, 20] (34 + 21), the KeyUpdate (1 + 1 + 16 + 4), [30, 40] (74 + 21).
    expect(a.sent.slice(before).map((w) => w.length)).toEqual([55 + 22 + 95]);
    await client.close();
  });

  it('seals and writes tiny messages as soon as a record\'s worth is queued, inside the sender\'s turn; larger ones at the end of the turn', async () => {
    const { client, server, a } = pair();
    const got: number[] = [];
    server.onmessage = (d) => void got.push(d.length);
    client.start();
    await client.send(bytes('hello'));
    await waitFor(() => got.length === 1, 5_000, 'hello');
    const before = a.sent.length;
    // Tiny messages: nothing is written until EAGER_FLUSH bytes are queued, then one record at once.
    const tiny = 256;
    const perRecord = Math.ceil(EAGER_FLUSH / tiny);
    const written: number[] = [];
    for (let i = 0; i < 3 * perRecord; i++) {
      void client.send(new Uint8Array(tiny).fill(i & 0xff));
      written.push(a.sent.length - before);
    }
    expect(written[perRecord - 2]).toBe(0);
    expect(written[perRecord - 1]).toBe(1);
    expect(written[3 * perRecord - 1]).toBe(3);
    // Each early record carries perRecord messages: content 258 per message, type byte, tag, header.
    expect(a.sent.slice(before).map((w) => w.length)).toEqual([1, 2, 3].map(() => perRecord * (tiny + 2) + 1 + 16 + 4));
    // Messages above EAGER_MESSAGE bytes wait for the end of the turn, however many are queued.
    const mid = before + 3;
    for (let i = 0; i < 8; i++) void client.send(new Uint8Array(EAGER_MESSAGE + 1).fill(i));
    expect(a.sent.length).toBe(mid);
    expect(client.session.pendingBytes).toBe(8 * (EAGER_MESSAGE + 1));
    await waitFor(() => got.length === 1 + 3 * perRecord + 8, 5_000, 'messages');
    expect(got.slice(1)).toEqual([...Array(3 * perRecord).fill(tiny), ...Array(8).fill(EAGER_MESSAGE + 1)]);
    await client.close();
  });

  it('early flushes keep the order: tiny messages past EAGER_FLUSH, then close() in the same turn, arrive in order before a clean close', async () => {
    const { client, server } = pair();
    const got: number[] = [];
    const events: string[] = [];
    server.onmessage = (d) => void got.push(d[0]! | (d[1]! << 8));
    server.onerror = (e) => void events.push(`error ${e.code}`);
    server.onclose = () => void events.push('close');
    client.start();
    await client.send(Uint8Array.of(0xff, 0xff, 0));
    await waitFor(() => got.length === 1, 5_000, 'first');
    const total = 3 * Math.ceil(EAGER_FLUSH / 200) + 17; // three early flushes, then the rest at close
    for (let i = 0; i < total; i++) void client.send(new Uint8Array(200).fill(7).fill(i & 0xff, 0, 1).fill(i >> 8, 1, 2));
    const closed = client.close(); // same turn: seals what is left, then close_notify
    await closed;
    await waitFor(() => events.includes('close'), 5_000, 'server close');
    expect(got.slice(1)).toEqual(Array.from({ length: total }, (_, i) => i));
    expect(events).toEqual(['close']);
  });

  it('early flushes from inside a delivery (a synchronous reply burst) keep the order of the replies', async () => {
    const { client, server } = pair();
    const got: number[] = [];
    client.onmessage = (d) => void got.push(d[0]! | (d[1]! << 8));
    const total = 2 * Math.ceil(EAGER_FLUSH / 100) + 5;
    server.onmessage = () => {
      for (let i = 0; i < total; i++) void server.send(new Uint8Array(100).fill(i & 0xff, 0, 1).fill(i >> 8, 1, 2));
    };
    client.start();
    await client.send(bytes('go'));
    await waitFor(() => got.length === total, 5_000, 'replies');
    expect(got).toEqual(Array.from({ length: total }, (_, i) => i));
    await client.close();
  });

  it('pauses reading while more than 1024 received messages wait for delivery (two multi-message records in one read)', async () => {
    const { client, server, a } = pair();
    let pauses = 0;
    let resumes = 0;
    Object.assign(a, { pause: () => void pauses++, resume: () => void resumes++ });
    const got: number[] = [];
    server.onmessage = () => undefined;
    client.onmessage = (d) => void got.push(d[0]! | (d[1]! << 8));
    client.start();
    await client.send(bytes('hello'));
    await waitFor(() => server.state === 'open', 5_000, 'server open');
    const before = (server as unknown as { socket: FakeSocket }).socket.sent.length;
    // 2000 messages of 3 bytes in one turn: records of 1024 and 976 messages (~5 KB each),
    // written as one socket message, so one receive() posts all 2000 at once.
    for (let i = 0; i < 2000; i++) void server.send(Uint8Array.of(i & 0xff, i >> 8, 7));
    await waitFor(() => got.length === 2000, 5_000, 'messages');
    expect((server as unknown as { socket: FakeSocket }).socket.sent.length - before).toBe(1);
    expect(got).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    expect(pauses).toBe(1);
    expect(resumes).toBe(1);
    await client.close();
  });

  it('never writes a socket message above maxWriteBatch, even for a record larger than it', async () => {
    const { client, server, b } = pair(undefined, undefined, undefined, { ...options, maxWriteBatch: 20_000 });
    const got: Uint8Array[] = [];
    client.onmessage = (d) => void got.push(d);
    server.onmessage = () => void server.send(Uint8Array.from({ length: 100 * 1024 }, (_, i) => i % 251));
    client.start();
    await client.send(bytes('go'));
    await waitFor(() => got.length === 1, 5_000, 'reply');
    expect(got[0]).toEqual(Uint8Array.from({ length: 100 * 1024 }, (_, i) => i % 251));
    expect(b.sent.length).toBeGreaterThan(6);
    for (const w of b.sent) expect(w.length).toBeLessThanOrEqual(20_000);
    await client.close();
  });

  it('writes each handshake flight in the same turn it is produced, with the messages queued behind it', async () => {
    const { client, server, a, b } = pair();
    // Deliver by hand, synchronously, to see what each side writes before the turn ends.
    a.send = (data, done) => void (a.sent.push(data), done());
    b.send = (data, done) => void (b.sent.push(data), done());
    const got: string[] = [];
    server.onmessage = (d) => void got.push(str(d));
    client.start();
    const queued = client.send(bytes('1-RTT'));
    expect(a.sent).toHaveLength(1); // ClientHello
    server.receive(a.sent[0]!, true);
    expect(b.sent).toHaveLength(1); // ServerHello ... Finished, one socket message, written at once
    client.receive(b.sent[0]!, true);
    expect(client.state).toBe('open');
    expect(a.sent).toHaveLength(2); // Credential ... Finished and the queued message
    server.receive(a.sent[1]!, true);
    expect(server.state).toBe('open');
    await queued;
    await waitFor(() => got.length === 1, 5_000, 'queued message');
    expect(got).toEqual(['1-RTT']);
  });

  it('a queued send settles with the final flight; a confirm send only once the server has spoken', async () => {
    const { client, server } = pair();
    const got: string[] = [];
    server.onmessage = (d) => {
      got.push(str(d));
      if (got.length === 2) void server.send(bytes('answer'));
    };
    client.start();
    let confirmed = false;
    await client.send(bytes('notification'));
    const request = client.send(bytes('request'), true).then(() => (confirmed = true));
    await waitFor(() => got.length === 2, 5_000, 'both messages');
    await request;
    expect(confirmed).toBe(true);
    await client.close();
  });

  it('a refused client: the queued send rejects with the typed error before onclose fires', async () => {
    const rogue = makeAgent(fixtureCrypto(), makeIssuer(fixtureCrypto(), 'issuer://rogue-conn'), 'agent://rogue/conn').identity;
    const a = new FakeSocket();
    const b = new FakeSocket();
    a.peer = b;
    b.peer = a;
    const client = new Connection(a, Session.client({ backend, identity: localIdentity(rogue), trust: trustFor() }), options);
    const server = new Connection(b, Session.server({ backend, identity: localIdentity(agent('agent://pqmcp-test/server')), trust: trustFor() }), options);
    a.connection = client;
    b.connection = server;
    const order: string[] = [];
    let rejection: PqmcpError | undefined;
    client.onerror = () => void order.push('error');
    client.onclose = () => void order.push('close');
    client.start();
    const sent = client.send(bytes('initialize'), true).catch((e: PqmcpError) => {
      rejection = e;
      order.push('rejected');
    });
    await client.closed;
    await sent;
    expect(rejection).toBeInstanceOf(PeerAlertError);
    expect(order.indexOf('rejected')).toBeLessThan(order.indexOf('close'));
    expect(order.filter((e) => e === 'close')).toHaveLength(1);
    await server.closed;
  });

  it('contains throwing callbacks and fires onclose exactly once', async () => {
    const { client, server } = pair();
    const errors: PqmcpError[] = [];
    let closes = 0;
    server.onmessage = () => {
      throw new Error('application bug');
    };
    server.onerror = (e) => void errors.push(e);
    server.onclose = () => void closes++;
    client.start();
    await client.send(bytes('boom'));
    await waitFor(() => errors.length === 1, 5_000, 'contained error');
    expect(errors[0]).toBeInstanceOf(InternalError);
    expect(server.state).toBe('open');
    await Promise.all([server.close(), server.close(), client.close()]);
    server.socketClosed(1006);
    await new Promise((r) => setTimeout(r, 10));
    expect(closes).toBe(1);
  });

  describe('deliveryWaitsForDrain (the server side)', () => {
    const holding = { ...options, highWaterMark: 64 * 1024, deliveryWaitsForDrain: true };

    it('holds received messages while more than highWaterMark bytes wait to be written, then delivers them in order', async () => {
      const { client, server, b } = pair(trustFor(), trustFor(), 'agent://pqmcp-test/client', holding);
      const got: string[] = [];
      server.onmessage = (d) => void got.push(str(d));
      client.start();
      await client.send(bytes('m0'));
      await waitFor(() => got.length === 1, 5_000, 'first message');
      // The peer stops reading: the server's socket holds more than the mark.
      b.bufferedAmount = 64 * 1024 + 1;
      for (let i = 1; i <= 20; i++) await client.send(bytes(`m${i}`));
      await new Promise((r) => setTimeout(r, 50));
      expect(got).toEqual(['m0']);
      // The peer reads again: the poll notices, everything held arrives in order.
      b.bufferedAmount = 0;
      await waitFor(() => got.length === 21, 5_000, 'held messages');
      expect(got).toEqual(Array.from({ length: 21 }, (_, i) => `m${i}`));
      await client.close();
    });

    it('the client side (option off) never holds', async () => {
      const { client, server, a } = pair();
      const got: string[] = [];
      client.onmessage = (d) => void got.push(str(d));
      client.start();
      await client.send(bytes('hello'));
      a.bufferedAmount = 64 * 1024 * 1024;
      for (let i = 0; i < 5; i++) void server.send(bytes(`s${i}`));
      await waitFor(() => got.length === 5, 5_000, 'messages to the client');
      a.bufferedAmount = 0;
      await client.close();
    });

    it('a socket read of tiny multi-message entries is decoded only as the inbox drains (review F3), then delivered whole and in order', async () => {
      const a = new FakeSocket();
      const b = new FakeSocket();
      a.peer = b;
      b.peer = a;
      const client = new Connection(a, Session.client({ backend, identity: localIdentity(agent('agent://pqmcp-test/client')), trust: trustFor() }), options);
      const session = Session.server({ backend, identity: localIdentity(agent('agent://pqmcp-test/server')), trust: trustFor(), maxMessagesPerCall: MAX_MESSAGES_PER_TURN });
      const server = new Connection(b, session, holding);
      a.connection = client;
      b.connection = server;
      const got: string[] = [];
      server.onmessage = (d) => void got.push(str(d));
      client.start();
      await client.send(bytes('m'));
      await waitFor(() => got.length === 1, 5_000, 'first message');
      b.bufferedAmount = 1024 * 1024; // the server's replies are backed up: delivery is held
      const total = 20_000;
      for (let i = 0; i < total; i++) void client.send(bytes(String(i % 10))); // one turn: one socket message of 0x06 records
      // The read has happened once the session stops at its cap. (Not `bufferedBytes === 0`:
      // that holds before the socket message arrives too, and on a starved CPU the sealing of
      // 20,000 messages outlasted the 100 ms below, so the checks ran before the read.)
      await waitFor(() => session.stalled, 10_000, 'the read');
      await new Promise((r) => setTimeout(r, 100));
      expect(got).toEqual(['m']);
      // Decoded and undelivered: at most the inbox mark plus one call's worth; the rest is still wire bytes (3 per message).
      expect(session.stalled).toBe(true);
      expect(session.bufferedBytes).toBeGreaterThan((total - MAX_UNDELIVERED_MESSAGES - MAX_MESSAGES_PER_TURN - 1024) * 3);
      b.bufferedAmount = 0;
      await waitFor(() => got.length === total + 1, 10_000, 'held messages');
      expect(got.slice(1)).toEqual(Array.from({ length: total }, (_, i) => String(i % 10)));
      expect(session.stalled).toBe(false);
      await client.close();
    });

    it('messages held when the connection ends are delivered, in order, before onclose', async () => {
      const { client, server, b } = pair(trustFor(), trustFor(), 'agent://pqmcp-test/client', holding);
      const order: string[] = [];
      server.onmessage = (d) => void order.push(str(d));
      server.onclose = () => void order.push('close');
      client.start();
      await client.send(bytes('m0'));
      await waitFor(() => order.length === 1, 5_000, 'first message');
      b.bufferedAmount = 1024 * 1024;
      await client.send(bytes('m1'));
      await client.send(bytes('m2'));
      await new Promise((r) => setTimeout(r, 30));
      expect(order).toEqual(['m0']);
      await client.close();
      await server.closed;
      expect(order).toEqual(['m0', 'm1', 'm2', 'close']);
    });
  });
});

/** A socket pair that pings: the peer answers, and an answer is read only while this side reads (as on TCP). */
class PingSocket extends FakeSocket {
  pings = 0;
  private paused = false;
  private pongHeld = false;
  ping(): void {
    this.pings++;
    setImmediate(() => (this.paused ? (this.pongHeld = true) : this.connection?.heard('pong')));
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
    if (this.pongHeld) {
      this.pongHeld = false;
      this.connection?.heard('pong');
    }
  }
}

describe('keepalive and the handshake', () => {
  it('the keepalive starts when the handshake completes: a server whose handshake crypto is out longer than the pong timeout (reading nothing meanwhile) keeps its client, and pings it after', async () => {
    const a = new PingSocket();
    const b = new PingSocket();
    a.peer = b;
    b.peer = a;
    const serverIdentity = localIdentity(agent('agent://pqmcp-test/server'));
    const pool = await CryptoPool.start(backend, undefined, serverIdentity.keyPair, { workers: 0, maxQueue: 8, ratePerSource: 0 });
    const client = new Connection(a, Session.client({ backend, identity: localIdentity(agent('agent://pqmcp-test/client')), trust: trustFor() }), options);
    const server = new Connection(b, Session.server({ backend, identity: serverIdentity, trust: trustFor(), deferCrypto: true }), { ...options, keepAliveMs: 20, keepAliveTimeoutMs: 60 });
    a.connection = client;
    b.connection = server;
    // Each crypto step takes 200 ms (a queue under a flood): the server reads nothing meanwhile.
    server.oncompute = async (request) => {
      await new Promise((r) => setTimeout(r, 200));
      return pool.run('s', request);
    };
    const errors: PqmcpError[] = [];
    server.onerror = (e) => void errors.push(e);
    const got: string[] = [];
    server.onmessage = (d) => void got.push(str(d));
    let pingsBefore = -1;
    server.onhandshake = () => void (pingsBefore = b.pings);
    client.start();
    await client.send(bytes('after a slow handshake'), true);
    await waitFor(() => got.length === 1, 5_000, 'the message');
    expect(pingsBefore).toBe(0); // not one ping before the handshake completed (400 ms)
    await new Promise((r) => setTimeout(r, 200));
    expect(b.pings).toBeGreaterThan(2); // and the keepalive runs after it, answered
    expect(errors).toEqual([]);
    expect(server.state).toBe('open');
    // A peer that stops answering is still dropped.
    a.connection = undefined;
    (a as unknown as { ping: () => void }).ping = () => {};
    b.ping = () => void b.pings++;
    await waitFor(() => errors.length > 0, 5_000, 'the keepalive timeout');
    expect(errors[0]).toBeInstanceOf(KeepAliveTimeoutError);
    await pool.close();
  });
});


describe('keepalive while the connection itself holds the peer unread', () => {
  it("a server paused by its own KeyUpdate ration longer than the pong deadline keeps its client: the pong is read when the backlog drains, the message after it is delivered; a peer that stops answering is still dropped", async () => {
    const a = new PingSocket();
    const b = new PingSocket();
    a.peer = b;
    b.peer = a;
    const client = new Connection(a, Session.client({ backend, identity: localIdentity(agent('agent://pqmcp-test/client')), trust: trustFor() }), options);
    // One KeyUpdate at once, then one every 200 ms: four take the server ~600 ms, reading
    // nothing meanwhile ('backlog'), ten times its 60 ms pong deadline.
    const session = Session.server({ backend, identity: localIdentity(agent('agent://pqmcp-test/server')), trust: trustFor(), keyUpdateRate: { rate: 5, burst: 1 } });
    const server = new Connection(b, session, { ...options, keepAliveMs: 20, keepAliveTimeoutMs: 60 });
    a.connection = client;
    b.connection = server;
    const errors: PqmcpError[] = [];
    server.onerror = (e) => void errors.push(e);
    const got: string[] = [];
    server.onmessage = (d) => void got.push(str(d));
    client.start();
    await client.send(bytes('first'));
    await waitFor(() => got.length === 1, 5_000, 'the first message');
    const enqueue = (client as unknown as { enqueue(r: Uint8Array[]): void }).enqueue.bind(client);
    for (let i = 0; i < 4; i++) enqueue(client.session.updateKeys(false));
    await client.send(bytes('behind four KeyUpdates'));
    await waitFor(() => got.length === 2 || errors.length > 0, 5_000, 'the message behind the KeyUpdates');
    expect(errors).toEqual([]);
    expect(got).toEqual(['first', 'behind four KeyUpdates']);
    const pings = b.pings;
    expect(pings).toBeGreaterThan(0); // it pinged while paused, and its pong waited unread
    expect(errors).toEqual([]);
    expect(server.state).toBe('open');
    await waitFor(() => b.pings > pings + 2, 5_000, 'more pings, answered'); // the keepalive goes on
    expect(errors).toEqual([]);
    // A peer that stops answering is still dropped.
    a.connection = undefined;
    (a as unknown as { ping: () => void }).ping = () => {};
    b.ping = () => void b.pings++;
    await waitFor(() => errors.length > 0, 5_000, 'the keepalive timeout');
    expect(errors[0]).toBeInstanceOf(KeepAliveTimeoutError);
  });
});

describe("keepalive: the peer's own pings (review 10, R10-7)", () => {
  /**
   * A connected pair in which one side (`judge`) runs its keepalive (30 ms, 300 ms) and its
   * pings go unanswered from now on, while the other side's keepalive is off (its pings are
   * sent by hand: `judge.heard('ping')`).
   */
  async function heldPair(judgeSide: 'client' | 'server', peerPingsProveLive: boolean): Promise<{ judge: Connection; errors: PqmcpError[] }> {
    const a = new PingSocket();
    const b = new PingSocket();
    a.peer = b;
    b.peer = a;
    const keepAlive = (side: 'client' | 'server') => (side === judgeSide ? { keepAliveMs: 30, keepAliveTimeoutMs: 300, peerPingsProveLive } : { keepAliveMs: 0 });
    const client = new Connection(a, Session.client({ backend, identity: localIdentity(agent('agent://pqmcp-test/client')), trust: trustFor() }), { ...options, ...keepAlive('client') });
    const server = new Connection(b, Session.server({ backend, identity: localIdentity(agent('agent://pqmcp-test/server')), trust: trustFor() }), { ...options, ...keepAlive('server') });
    a.connection = client;
    b.connection = server;
    const judge = judgeSide === 'client' ? client : server;
    const errors: PqmcpError[] = [];
    judge.onerror = (e) => void errors.push(e);
    const got: string[] = [];
    server.onmessage = (d) => void got.push(str(d));
    client.start();
    await client.send(bytes('hello'));
    await waitFor(() => got.length === 1, 5_000, 'the message');
    // From now on the judge's pings are not answered (the peer holds it unread).
    (judgeSide === 'client' ? a : b).ping = () => {};
    return { judge, errors };
  }

  it('a client whose pings go unanswered keeps the session while its server pings it, and times out once the server is silent', async () => {
    const { judge: client, errors } = await heldPair('client', true);
    const pinging = setInterval(() => client.heard('ping'), 20);
    try {
      // Over twice the ping interval plus its deadline; the pings (20 ms apart) tolerate a ~300 ms stall.
      await new Promise((r) => setTimeout(r, 800));
      expect(errors).toEqual([]);
      expect(client.state).toBe('open');
    } finally {
      clearInterval(pinging);
    }
    await waitFor(() => errors.length > 0, 5_000, 'the keepalive timeout');
    expect(errors[0]).toBeInstanceOf(KeepAliveTimeoutError);
  });

  for (const side of ['client', 'server'] as const) {
    it(`without peerPingsProveLive (the server's default), a ${side}'s peer's pings do not stand in for its pongs`, async () => {
      const { judge, errors } = await heldPair(side, false);
      const pinging = setInterval(() => judge.heard('ping'), 20);
      try {
        await waitFor(() => errors.length > 0, 5_000, 'the keepalive timeout');
      } finally {
        clearInterval(pinging);
      }
      expect(errors[0]).toBeInstanceOf(KeepAliveTimeoutError);
    });
  }
});

describe('keepalive just after its own hold ends (ReadPause.heldWithin)', () => {
  it('a server whose consumer held the client unread gives it keepAliveTimeoutMs of reading before judging it: a pong behind what was held still counts', async () => {
    // Fake timers and clock for the keepalive; the sockets deliver on setImmediate (real).
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'] });
    try {
      const a = new FakeSocket();
      const b = new PingSocket();
      a.peer = b;
      b.peer = a;
      const pings: number[] = [];
      b.ping = () => void pings.push(performance.now()); // its pong comes when the test says
      const client = new Connection(a, Session.client({ backend, identity: localIdentity(agent('agent://pqmcp-test/client')), trust: trustFor() }), { ...options, keepAliveMs: 0 });
      const server = new Connection(b, Session.server({ backend, identity: localIdentity(agent('agent://pqmcp-test/server')), trust: trustFor() }), { ...options, keepAliveMs: 1_000, keepAliveTimeoutMs: 500 });
      a.connection = client;
      b.connection = server;
      const errors: PqmcpError[] = [];
      server.onerror = (e) => void errors.push(e);
      const got: string[] = [];
      server.onmessage = (d) => void got.push(str(d));
      client.start();
      void client.send(bytes('hello'));
      for (let i = 0; i < 10_000 && got.length === 0; i++) await new Promise((r) => setImmediate(r));
      expect(got).toEqual(['hello']);
      const t0 = performance.now();
      server.pause('consumer');
      vi.advanceTimersByTime(1_500); // a ping at +1000; its deadline passes held: pinged again
      vi.advanceTimersByTime(400);
      server.resume('consumer'); // +1900; the next deadline is at +2000
      vi.advanceTimersByTime(200);
      server.heard('pong'); // +2100: read behind what was held
      vi.advanceTimersByTime(800);
      expect(errors).toEqual([]); // before: KeepAliveTimeoutError at +2000
      expect(server.state).toBe('open');
      expect(pings.map((t) => t - t0)).toEqual([1_000, 1_500, 2_000]);
      // A client that does not answer at all is still judged.
      vi.advanceTimersByTime(700); // ping at +3000, deadline at +3500
      expect(errors[0]).toBeInstanceOf(KeepAliveTimeoutError);
    } finally {
      vi.useRealTimers();
    }
  });
});
