/**
 * Soak: mixed traffic on real sockets for a while, with periodic key updates, and no memory
 * growth. Two phases of DURATION / 2 each:
 * A. MCP sessions through the listener (small calls, 64 KiB results, progress
 *    notifications, structured results): every call answered, memory flat.
 * B. The same, plus raw pqmcp Connections (the transports' public engine) with
 *    keyUpdateInterval = 32, so each direction changes keys every 32 records; messages of
 *    0 B .. 256 KiB are hashed end to end and echoed; a tap with the client's secrets counts
 *    the KeyUpdates on the wire.
 * Memory (heap + ArrayBuffers after forced collections) is sampled every 2 s; growth after a
 * warm-up (see growthOf) is bounded by 24 MB.
 *
 * Duration: 20 s in CI; PQMCP_SOAK_MS sets it (PQMCP_LOAD=full: 180 s).
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { liveMemory } from '../helpers/memory.js';
import { WebSocket, WebSocketServer } from 'ws';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { Session, type SessionOptions } from '../../src/session/session.js';
import { Connection, SUBPROTOCOL, type MessageSocket } from '../../src/transport/index.js';
import { attachWebSocket, wsMessageSocket } from '../../src/transport/ws-socket.js';
import { agent, fixtureCrypto, trustFor } from '../helpers/identities.js';
import { Cleanup, connectClient, startFeatureServer, waitFor } from '../helpers/mcp.js';
import { WireTap } from '../adversarial/harness.js';

const DURATION = Number(process.env.PQMCP_SOAK_MS ?? (process.env.PQMCP_LOAD === 'full' ? 180_000 : 20_000));

const MB = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** The transports' own `ws` adapter, with every write shown to `onWrite` first (a wire tap). */
function tapped(socket: MessageSocket, onWrite: (data: Uint8Array) => void): MessageSocket {
  const send = socket.send.bind(socket);
  socket.send = (data, done) => {
    onWrite(data);
    send(data, done);
  };
  return socket;
}

const cleanup = new Cleanup();
afterAll(() => cleanup.run());

const CONNECTION_OPTIONS = { handshakeTimeoutMs: 30_000, keepAliveMs: 0, keepAliveTimeoutMs: 10_000, highWaterMark: 1024 * 1024, closeTimeoutMs: 2_000, maxWriteBatch: 256 * 1024, deliveryWaitsForDrain: false };

/** Sample live memory every 2 s until `deadline`. */
async function sampleUntil(deadline: number, samples: number[]): Promise<void> {
  while (Date.now() + 2_000 <= deadline) {
    await new Promise((r) => setTimeout(r, 2_000));
    samples.push(liveMemory());
  }
}

/**
 * Growth after a warm-up (the first sample, or the first quarter): the last sample over the
 * first, or with six samples or more, the median of the last three over the median of the
 * first three (so one sample caught mid-burst does not decide).
 */
function growthOf(samples: number[]): number {
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  const warm = samples.slice(Math.max(1, Math.floor(samples.length / 4)));
  if (warm.length < 2) return Number.NaN;
  return warm.length >= 6 ? median(warm.slice(-3)) - median(warm.slice(0, 3)) : warm[warm.length - 1]! - warm[0]!;
}

const phaseB: { samples: number[] } = { samples: [] };

describe(`soak: ${DURATION / 1000} s of mixed traffic with periodic key updates`, () => {
  it('every message arrives intact, keys change every 32 records, MCP traffic does not grow memory', { timeout: DURATION + 120_000 }, async () => {
    const backend = fixtureCrypto();
    const { url } = await startFeatureServer(cleanup, { backend: 'native' });
    const mcp = await Promise.all(Array.from({ length: 6 }, () => connectClient(cleanup, url, { backend: 'native' })));
    const stats = { mcpCalls: 0, sent: 0, bytes: 0 };
    const failures: unknown[] = [];
    const mcpLoop = (deadline: number) =>
      mcp.map(async ({ client }, i) => {
        for (let n = 0; Date.now() < deadline; n++) {
          const kind = (n + i) % 4;
          if (kind === 0) await client.callTool({ name: 'echo', arguments: { text: `soak ${i}/${n}` } });
          else if (kind === 1) await client.callTool({ name: 'big', arguments: { bytes: 64 * 1024 } });
          else if (kind === 2) await client.callTool({ name: 'progress', arguments: { steps: 5 } }, undefined, { onprogress: () => {} });
          else await client.callTool({ name: 'add', arguments: { a: n, b: i } });
          stats.mcpCalls++;
        }
      });

    // --- phase A: MCP only -----------------------------------------------------------------
    const samplesA: number[] = [];
    const endA = Date.now() + DURATION / 2;
    await Promise.all([...mcpLoop(endA), sampleUntil(endA, samplesA)].map((p) => p.catch((e: unknown) => void failures.push(e))));
    const callsA = stats.mcpCalls;

    // --- phase B: MCP plus raw Connections with frequent key updates ------------------------
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 1024 * 1024, handleProtocols: () => SUBPROTOCOL });
    cleanup.add(() => new Promise<void>((r) => wss.close(() => r())));
    await new Promise((r) => wss.once('listening', r));
    const port = (wss.address() as { port: number }).port;
    const base = (id: string): SessionOptions => ({ backend, identity: agent(id), trust: trustFor(), keyUpdateInterval: 32 });
    const received = { server: 0, client: 0 };
    const corrupted = { server: 0, client: 0 };
    const serverConnections: Connection[] = [];
    wss.on('connection', (ws) => {
      const c = new Connection(wsMessageSocket(ws), Session.server(base('agent://pqmcp-test/server')), CONNECTION_OPTIONS);
      attachWebSocket(ws, c);
      serverConnections.push(c);
      // Echo each message back, as a well-behaved application does: one send at a time, and
      // stop reading while too many echoes wait (send() only bounds what one awaited call
      // queues; see the pipelining case in test/adversarial/resources.test.ts).
      let chain = Promise.resolve();
      let waiting = 0;
      c.onmessage = (data) => {
        received.server++;
        if (Buffer.from(data.subarray(0, 32)).toString('hex') !== sha(data.subarray(32))) corrupted.server++;
        if (++waiting > 64) c.pause();
        chain = chain
          .then(() => c.send(data))
          .catch(() => {})
          .then(() => {
            if (--waiting < 16) c.resume();
          });
      };
    });
    const pairs = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const secrets: Record<string, Uint8Array> = {};
        const session = Session.client({ ...base('agent://pqmcp-test/client'), keyLog: (l, s) => void (secrets[l] = s) });
        const tap = new WireTap(backend, 'client', secrets, session, false);
        const ws = new WebSocket(`ws://127.0.0.1:${port}/`, [SUBPROTOCOL], { perMessageDeflate: false });
        cleanup.add(() => ws.terminate());
        await new Promise((r, j) => ws.once('open', r).once('error', j));
        const c = new Connection(
          tapped(wsMessageSocket(ws), (d) => tap.push(d)),
          session,
          CONNECTION_OPTIONS,
        );
        attachWebSocket(ws, c);
        c.onmessage = (data) => {
          received.client++;
          if (Buffer.from(data.subarray(0, 32)).toString('hex') !== sha(data.subarray(32))) corrupted.client++;
        };
        c.start();
        return { c, tap };
      }),
    );
    const endB = Date.now() + DURATION / 2;
    const rawLoops = pairs.map(async ({ c }, i) => {
      for (let n = 0; Date.now() < endB; n++) {
        const size = n % 50 === 0 ? 256 * 1024 : (n * 7919 + i * 104729) % 4096;
        const body = randomBytes(size);
        const msg = new Uint8Array(32 + size);
        msg.set(Buffer.from(sha(body), 'hex'));
        msg.set(body, 32);
        await c.send(msg);
        stats.sent++;
        stats.bytes += msg.length;
        if (n % 16 === 15) await new Promise((r) => setImmediate(r));
      }
    });
    await Promise.all([...mcpLoop(endB), ...rawLoops, sampleUntil(endB, phaseB.samples)].map((p) => p.catch((e: unknown) => void failures.push(e))));

    await waitFor(() => received.client === stats.sent && received.server === stats.sent, 30_000, 'every raw message echoed');
    const keyUpdates = pairs.reduce((n, p) => n + p.tap.items.filter((i) => i.kind === 'keyUpdate').length, 0);
    await Promise.all(pairs.map(({ c }) => c.close()));
    await Promise.all(mcp.map(({ client }) => client.close()));
    await waitFor(() => serverConnections.every((c) => c.state === 'closed'), 10_000, 'server connections closed');

    console.log(
      `[soak] ${DURATION / 1000} s: ${stats.mcpCalls} MCP calls (${callsA} in phase A), ${stats.sent} raw messages (${MB(stats.bytes)}) each echoed, ` +
        `${keyUpdates} client key updates on the wire. Phase A memory ${samplesA.map(MB).join(', ')} (growth ${MB(growthOf(samplesA))}); ` +
        `phase B ${phaseB.samples.map(MB).join(', ')} (growth ${MB(growthOf(phaseB.samples))})`,
    );
    expect(failures).toEqual([]);
    expect(corrupted).toEqual({ server: 0, client: 0 });
    expect(callsA).toBeGreaterThan(0);
    // Keys change every 32 records (several small messages may share one record, 0x06).
    const records = pairs.reduce((n, p) => n + p.tap.applicationRecords, 0);
    expect(keyUpdates).toBeGreaterThanOrEqual(Math.floor(records / 32) - 4);
    // Every raw message crossed the wire inside records the tap opened.
    expect(pairs.reduce((n, p) => n + p.tap.applicationMessages, 0)).toBeGreaterThanOrEqual(stats.sent);
    // One sample per 2 s of phase A when the machine keeps up; a loaded one may skip some.
    expect(samplesA.length).toBeGreaterThanOrEqual(Math.max(4, Math.floor((DURATION / 4_000) * 0.75)));
    expect(growthOf(samplesA)).toBeLessThan(24 * 1024 * 1024);
  });

  it('phase B (sustained inbound traffic with key updates) does not grow memory', () => {
    expect(phaseB.samples.length).toBeGreaterThanOrEqual(4);
    expect(growthOf(phaseB.samples)).toBeLessThan(24 * 1024 * 1024);
  });
});
