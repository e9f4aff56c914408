/**
 * The client's key shares made ahead of time (src/transport/key-shares.ts): the pool hands a
 * key pair out once, makes the next one on a later turn, and the client transport keys every
 * connection with a fresh one (made while the previous connection waited for its server, or
 * while this one's socket connected). Real SDK clients against serveMcp on 127.0.0.1.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createNativeBackend } from '../../src/crypto/native.js';
import type { CryptoBackend, XWingKeyPair } from '../../src/crypto/types.js';
import { KeySharePool } from '../../src/transport/key-shares.js';
import { Cleanup, connectClient, startFeatureServer, waitFor } from '../helpers/mcp.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
const native = createNativeBackend();
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** The native backend, recording each X-Wing key pair made (with the phase it was made in) and each one decapsulated with. */
function recordingBackend() {
  const made = new Map<string, number>();
  const pairs: XWingKeyPair[] = [];
  const used: string[] = [];
  let phase = 0;
  const backend: CryptoBackend = {
    ...native,
    xwing: {
      ...native.xwing,
      keygen(seed) {
        const kp = native.xwing.keygen(seed);
        made.set(hex(kp.publicKey), phase);
        pairs.push(kp);
        return kp;
      },
      decapsulate(kp, ct) {
        used.push(hex(kp.publicKey));
        return native.xwing.decapsulate(kp, ct);
      },
    },
  };
  return { backend, made, pairs, used, setPhase: (p: number) => void (phase = p) };
}

describe('KeySharePool', () => {
  it('hands a key pair out once and makes the next one on a later turn, one at a time', async () => {
    const { backend, made } = recordingBackend();
    const pool = new KeySharePool();
    expect(pool.take(backend)).toBeUndefined();
    pool.prepare(backend);
    pool.prepare(backend); // already on its way: not a second one
    expect(made.size).toBe(0); // never in the caller's turn
    await turn();
    expect(made.size).toBe(1);
    pool.prepare(backend); // one is ready: nothing more
    await turn();
    expect(made.size).toBe(1);
    const kp = pool.take(backend);
    expect(kp).toBeDefined();
    expect(made.has(hex(kp!.publicKey))).toBe(true);
    expect(pool.take(backend)).toBeUndefined();
  });

  it('soon() makes a fresh pair on a later turn; pools and backends do not share pairs', async () => {
    const a = recordingBackend();
    const b = recordingBackend();
    const pool = new KeySharePool();
    const pending = pool.soon(a.backend);
    expect(a.made.size).toBe(0);
    const [x, y] = await Promise.all([pending, pool.soon(a.backend)]);
    expect(hex(x.publicKey)).not.toBe(hex(y.publicKey));
    pool.prepare(a.backend);
    await turn();
    expect(pool.take(b.backend)).toBeUndefined();
    expect(new KeySharePool().take(a.backend)).toBeUndefined();
    const ready: XWingKeyPair | undefined = pool.take(a.backend);
    expect([x, y].map((k) => hex(k.publicKey))).not.toContain(hex(ready!.publicKey));
  });
});

describe('the client transport keys each connection with a fresh key pair made ahead', () => {
  it('sequential connections: every ClientHello key share is new; from the second on it was made during the previous connection', async () => {
    const { url } = await startFeatureServer(cleanup);
    const { backend, made, used, setPhase } = recordingBackend();
    for (let i = 1; i <= 4; i++) {
      setPhase(i);
      const { client } = await connectClient(cleanup, url, { backend });
      const result = await client.callTool({ name: 'echo', arguments: { text: `n${i}` } });
      expect(JSON.stringify(result)).toContain(`n${i}`);
      await client.close();
      expect(used).toHaveLength(i);
    }
    expect(new Set(used).size).toBe(4); // never reused
    expect(used.map((pk) => made.get(pk))).toEqual([1, 1, 2, 3]); // the first made while connecting, the rest ahead
  });
});

describe('a key pair that cannot be made', () => {
  it('fails the connection with the typed error and drops the socket that opened meanwhile', async () => {
    const { WebSocketServer } = await import('ws');
    const { PqmcpClientTransport } = await import('../../src/transport/client.js');
    const { InternalError } = await import('../../src/errors.js');
    const { agent, trustFor } = await import('../helpers/identities.js');
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (p) => [...p][0] ?? false });
    cleanup.add(() => new Promise((r) => wss.close(r)));
    await new Promise((r) => wss.once('listening', r));
    let accepted = 0;
    wss.on('connection', () => void accepted++);
    const broken: CryptoBackend = { ...native, xwing: { ...native.xwing, keygen: () => { throw new InternalError('no key pair here'); } } };
    const port = (wss.address() as { port: number }).port;
    const transport = new PqmcpClientTransport(`ws://127.0.0.1:${port}/`, { identity: agent('agent://pqmcp-test/client'), trust: trustFor(), expectedServerId: 'agent://pqmcp-test/server', backend: broken });
    await expect(transport.start()).rejects.toThrow(/no key pair here/);
    // Whether or not the upgrade completed first, no socket is left open.
    await waitFor(() => wss.clients.size === 0, 5_000, 'the socket dropped');
    await new Promise((r) => setTimeout(r, 100));
    expect(wss.clients.size).toBe(0);
    expect(accepted).toBeLessThanOrEqual(1);
  });
});

/** Disposed (review2 F1 follow-up): seed zero, and no backend decapsulates with it. */
function expectDisposed(kp: XWingKeyPair): void {
  expect(kp.seed.every((b) => b === 0)).toBe(true);
  const { ciphertext } = native.xwing.encapsulate(kp.publicKey);
  expect(() => native.xwing.decapsulate(kp, ciphertext)).toThrow(/disposed/);
}

describe('a failed connection attempt disposes of its key pair', () => {
  /** A bare ws server on 127.0.0.1 that hands each ClientHello's key share to `onHello` with its socket. */
  async function bareServer(onHello: (keyShare: Uint8Array, ws: import('ws').WebSocket) => void): Promise<number> {
    const { WebSocketServer } = await import('ws');
    const { decodeClientHello, unframeHandshake } = await import('../../src/wire/messages.js');
    const { HEADER_LENGTH } = await import('../../src/record/constants.js');
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (p) => [...p][0] ?? false });
    cleanup.add(() => new Promise((r) => wss.close(r)));
    cleanup.add(() => wss.clients.forEach((c) => c.terminate()));
    await new Promise((r) => wss.once('listening', r));
    wss.on('connection', (ws) => ws.once('message', (data: Buffer) => onHello(decodeClientHello(unframeHandshake(new Uint8Array(data).subarray(HEADER_LENGTH)).body).keyShare, ws)));
    return (wss.address() as { port: number }).port;
  }

  async function client(port: number, backend: CryptoBackend, extra: Record<string, unknown> = {}) {
    const { PqmcpClientTransport } = await import('../../src/transport/client.js');
    const { agent, trustFor } = await import('../helpers/identities.js');
    return new PqmcpClientTransport(`ws://127.0.0.1:${port}/`, { identity: agent('agent://pqmcp-test/client'), trust: trustFor(), expectedServerId: 'agent://pqmcp-test/server', backend, ...extra });
  }

  it('the handshake times out (the server reads the ClientHello and says nothing)', async () => {
    const { backend, pairs } = recordingBackend();
    let share: Uint8Array | undefined;
    const port = await bareServer((k) => void (share = k));
    const transport = await client(port, backend, { handshakeTimeoutMs: 400 });
    transport.onerror = () => undefined;
    await transport.start(); // the socket is open; the handshake goes on
    await expect(transport.handshake).rejects.toMatchObject({ code: 'ERR_HANDSHAKE_TIMEOUT' });
    const kp = pairs.find((p) => share !== undefined && hex(p.publicKey) === hex(share));
    expect(kp).toBeDefined();
    expectDisposed(kp!);
  });

  it('the server drops the socket after the ClientHello', async () => {
    const { backend, pairs } = recordingBackend();
    let share: Uint8Array | undefined;
    const port = await bareServer((k, ws) => {
      share = k;
      ws.terminate();
    });
    const transport = await client(port, backend);
    transport.onerror = () => undefined;
    await transport.start();
    await expect(transport.handshake).rejects.toMatchObject({ code: 'ERR_TRUNCATED' });
    const kp = pairs.find((p) => share !== undefined && hex(p.publicKey) === hex(share));
    expect(kp).toBeDefined();
    expectDisposed(kp!);
  });

  it('the dial fails (connection refused): the key pair made meanwhile is disposed of', async () => {
    const { backend, pairs } = recordingBackend();
    const port = await bareServer(() => undefined);
    await new Promise<void>((r) => {
      cleanup.run().then(() => r(), () => r()); // the port is closed again: nothing listens there
    });
    const transport = await client(port, backend);
    await expect(transport.start()).rejects.toMatchObject({ code: 'ERR_CONNECTION' });
    await waitFor(() => pairs.length > 0 && pairs.every((p) => p.seed.every((b) => b === 0)), 5_000, 'the key pair made while dialling is disposed of');
    for (const kp of pairs) expectDisposed(kp);
  });
});
