/**
 * The misbehaving-peer harness, socket level: the byte-level `Attacker` behind a real
 * WebSocket on 127.0.0.1, with one knob per socket misbehaviour, plus raw-TCP helpers for
 * what `ws` itself would never send, and leak checks for the honest side.
 *
 *   HostileClient.connect(url, attackerOptions, { frames: 'bytes', delayMs: 1000 })  // slowloris
 *   HostileServer.start(attackerOptions, { text: true })                            // a server that sends text frames
 *   rawWebSocket(url)                                                                // hand-written frames over TCP
 *
 * Sharp edges:
 * - Every socket, server and timer a helper opens is registered with the `Cleanup` passed
 *   in, so a failing test still releases them.
 * - `resources()` counts the process's active handles by type (sockets, servers, timers):
 *   compare before and after a test, after the honest side says it is closed.
 */
import { createHook } from 'node:async_hooks';
import { connect, type Socket } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { concat } from '../../src/bytes.js';
import { SUBPROTOCOL } from '../../src/transport/index.js';
import { endpointOfUrl } from '../../src/handshake/endpoint.js';
import type { Cleanup } from '../helpers/mcp.js';
import { Attacker, RawDeframer, type AttackerOptions } from './harness.js';

export interface SocketKnobs {
  /** How outgoing bytes become WebSocket messages: one per flight (default), one per byte, or any split. */
  frames?: 'flight' | 'bytes' | ((stream: Uint8Array) => Uint8Array[]);
  /** Send text frames instead of binary ones. */
  text?: boolean;
  /** Wait this long between WebSocket messages (with frames: 'bytes', a slowloris). */
  delayMs?: number;
  /** Stop writing after this many records (the socket stays open: a half-open peer). */
  silentAfterRecords?: number;
  /** Never read from the TCP socket once the handshake completes (the peer's writes pile up). */
  stopReadingAfterHandshake?: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Drives an Attacker over one WebSocket, applying the socket knobs to everything it writes. */
class Driver {
  private queue: Promise<void> = Promise.resolve();
  private records = 0;
  private stoppedReading = false;
  /** Close code and reason the peer (or the socket) ended with. */
  readonly closed: Promise<{ code: number; reason: string }>;
  /**
   * Resolves when the attacker's handshake completes; rejects, naming the close code and
   * reason, if the socket closes first (a test awaiting it fails at once and says why,
   * instead of waiting for its own timeout).
   */
  readonly handshake: Promise<void>;
  private onHandshake!: () => void;

  constructor(
    readonly ws: WebSocket,
    readonly attacker: Attacker,
    private readonly knobs: SocketKnobs,
  ) {
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    this.handshake = new Promise((resolve, reject) => {
      this.onHandshake = resolve;
      void this.closed.then(({ code, reason }) => reject(new Error(`the socket closed (${code} ${reason}) before the attacker's handshake completed`)));
    });
    this.handshake.catch(() => {}); // only a test that awaits it hears of it
    ws.on('error', () => {});
    ws.on('message', (data: Buffer) => {
      const out = this.attacker.receive(new Uint8Array(data));
      if (this.attacker.result) this.handshakeDone();
      this.write(out);
    });
  }

  private handshakeDone(): void {
    this.onHandshake();
    if (this.knobs.stopReadingAfterHandshake && !this.stoppedReading) {
      this.stoppedReading = true;
      this.tcp.pause();
    }
  }

  /** The TCP socket under the WebSocket. */
  get tcp(): Socket {
    return (this.ws as unknown as { _socket: Socket })._socket;
  }

  /** Write records, cut into WebSocket messages as the knobs say; resolves once all are handed to `ws`. */
  write(records: Uint8Array[]): Promise<void> {
    let allowed = records;
    const limit = this.knobs.silentAfterRecords;
    if (limit !== undefined) {
      allowed = records.slice(0, Math.max(0, limit - this.records));
    }
    this.records += records.length;
    if (allowed.length === 0) return this.queue;
    const stream = concat(...allowed);
    const f = this.knobs.frames ?? 'flight';
    const chunks = f === 'flight' ? [stream] : f === 'bytes' ? Array.from(stream, (b) => Uint8Array.of(b)) : f(stream);
    this.queue = this.queue.then(async () => {
      for (const c of chunks) {
        if (this.ws.readyState !== WebSocket.OPEN) return;
        this.ws.send(this.knobs.text ? Buffer.from(c).toString('latin1') : c, { binary: !this.knobs.text });
        if (this.knobs.delayMs) await sleep(this.knobs.delayMs);
      }
    });
    return this.queue;
  }
}

/** A hostile client: a real WebSocket to a pqmcp listener, driven by an Attacker. */
export class HostileClient extends Driver {
  static async connect(url: string, options: AttackerOptions, knobs: SocketKnobs, cleanup: Cleanup): Promise<HostileClient> {
    const ws = new WebSocket(url, [SUBPROTOCOL], { perMessageDeflate: false });
    cleanup.add(() => ws.terminate());
    // The endpoint an honest client would name for this URL, unless the test chose one.
    const withEndpoint = options.endpoint !== undefined ? options : { ...options, endpoint: endpointOfUrl(new URL(url)) };
    const client = new HostileClient(ws, new Attacker('client', withEndpoint), knobs);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('close', () => reject(new Error('closed before open')));
      ws.once('error', reject);
    });
    void client.write(client.attacker.start());
    return client;
  }
}

/** A hostile pqmcp server: each connection gets its own Attacker in the server role. */
export class HostileServer {
  readonly drivers: Driver[] = [];

  private constructor(
    readonly wss: WebSocketServer,
    readonly url: string,
  ) {}

  static async start(options: AttackerOptions, knobs: SocketKnobs, cleanup: Cleanup): Promise<HostileServer> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, handleProtocols: () => SUBPROTOCOL });
    cleanup.add(
      () =>
        new Promise<void>((resolve) => {
          for (const c of wss.clients) c.terminate();
          wss.close(() => resolve());
        }),
    );
    await new Promise((r) => wss.once('listening', r));
    const port = (wss.address() as { port: number }).port;
    const server = new HostileServer(wss, `ws://127.0.0.1:${port}/`);
    wss.on('connection', (ws) => void server.drivers.push(new Driver(ws, new Attacker('server', options), knobs)));
    return server;
  }
}

/**
 * A raw TCP connection that has completed the WebSocket upgrade for pqmcp: the test writes
 * frames by hand (client frames must be masked: `frame()` does it).
 */
export async function rawWebSocket(url: string, cleanup: Cleanup): Promise<{ socket: Socket; closed: Promise<void>; received: () => Buffer }> {
  const u = new URL(url);
  const socket = connect(Number(u.port), u.hostname);
  cleanup.add(() => socket.destroy());
  socket.on('error', () => {});
  let buffer = Buffer.alloc(0);
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  socket.write(
    `GET ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${SUBPROTOCOL}\r\n\r\n`,
  );
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer): void => {
      buffer = Buffer.concat([buffer, d]);
      const end = buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      if (!buffer.subarray(0, 12).toString().includes('101')) return reject(new Error(`upgrade refused: ${buffer.toString()}`));
      buffer = buffer.subarray(end + 4);
      socket.on('data', (more: Buffer) => void (buffer = Buffer.concat([buffer, more])));
      resolve();
    };
    socket.on('data', onData);
  });
  return { socket, closed, received: () => buffer };
}

/** One masked client WebSocket frame. `declaredLength` lies about the payload length when given. */
export function wsFrame(opcode: number, payload: Uint8Array, opts: { fin?: boolean; declaredLength?: number } = {}): Uint8Array {
  const length = opts.declaredLength ?? payload.length;
  const head: number[] = [(opts.fin === false ? 0 : 0x80) | opcode];
  if (length < 126) head.push(0x80 | length);
  else if (length < 65536) head.push(0x80 | 126, length >> 8, length & 0xff);
  else {
    head.push(0x80 | 127);
    const big = BigInt(length);
    for (let i = 7; i >= 0; i--) head.push(Number((big >> BigInt(8 * i)) & 0xffn));
  }
  const mask = [0x11, 0x22, 0x33, 0x44];
  return concat(Uint8Array.from([...head, ...mask]), Uint8Array.from(payload, (b, i) => b ^ mask[i % 4]!));
}

/** Active handles of this process, counted by type (see process.getActiveResourcesInfo). */
export function resources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

/**
 * Wait (bounded) until no handle type has more instances than in `before`; returns what is
 * still in excess (empty when clean).
 */
export async function leaksSince(before: Record<string, number>, types = ['TCPSocketWrap', 'TCPServerWrap', 'Timeout', 'Immediate'], timeoutMs = 5_000): Promise<Record<string, number>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = resources();
    const excess: Record<string, number> = {};
    for (const t of types) if ((now[t] ?? 0) > (before[t] ?? 0)) excess[t] = (now[t] ?? 0) - (before[t] ?? 0);
    if (Object.keys(excess).length === 0 || Date.now() > deadline) return excess;
    await sleep(20);
  }
}

/**
 * Track handles created from now on (timers, TCP sockets and servers, immediates), ref'd or
 * not: `settle()` waits (bounded) until all of them are gone and returns, by type, those
 * still alive. Stricter than `resources()`, which cannot see unref'd timers.
 */
export function trackHandles(types = ['Timeout', 'TCPWRAP', 'TCPSERVERWRAP', 'Immediate']): { live(): Record<string, number>; settle(timeoutMs?: number): Promise<Record<string, number>> } {
  const live = new Map<number, string>();
  let own = false; // the tracker's own polling timers are not counted
  const hook = createHook({
    init(id, type) {
      if (!own && types.includes(type)) live.set(id, type);
    },
    destroy(id) {
      live.delete(id);
    },
  }).enable();
  const count = (): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const t of live.values()) out[t] = (out[t] ?? 0) + 1;
    return out;
  };
  return {
    live: count,
    async settle(timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      while (live.size > 0 && Date.now() < deadline) {
        own = true;
        const tick = sleep(25);
        own = false;
        await tick;
      }
      hook.disable();
      return count();
    },
  };
}

export type ProxyDirection = 'c2s' | 's2c';

/**
 * A man in the middle between a pqmcp client and server: two WebSocket legs, the byte
 * stream of each direction cut into records and passed through `hook`, which may rewrite,
 * drop or add records, or kill both TCP connections (as a network fault would).
 */
export class MitmProxy {
  /** Records seen so far, per direction and in total (the index passed to the hook). */
  readonly seen: Record<ProxyDirection, number> = { c2s: 0, s2c: 0 };
  total = 0;
  killed = false;
  /** When set, a leg that ends does not end the other one (a proxy that keeps half-open connections). */
  keepOtherLeg = false;
  private readonly legs = new Set<WebSocket>();

  private constructor(
    readonly wss: WebSocketServer,
    readonly url: string,
  ) {}

  /**
   * Start a proxy to `target`. `hook(dir, record, index)` returns the records to forward, or
   * 'kill' to destroy both legs' TCP connections before forwarding anything more.
   */
  static async start(
    target: string,
    cleanup: Cleanup,
    hook: (dir: ProxyDirection, record: Uint8Array, index: number, proxy: MitmProxy) => Uint8Array[] | 'kill' | 'kill-client-leg' | 'kill-server-leg' = (_d, r) => [r],
  ): Promise<MitmProxy> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, handleProtocols: () => SUBPROTOCOL });
    await new Promise((r) => wss.once('listening', r));
    const proxy = new MitmProxy(wss, `ws://127.0.0.1:${(wss.address() as { port: number }).port}/`);
    cleanup.add(
      () =>
        new Promise<void>((resolve) => {
          proxy.kill();
          wss.close(() => resolve());
        }),
    );
    wss.on('connection', (client) => {
      const server = new WebSocket(target, [SUBPROTOCOL], { perMessageDeflate: false });
      proxy.legs.add(client).add(server);
      const pending: Uint8Array[] = [];
      const deframers = { c2s: new RawDeframer(), s2c: new RawDeframer() };
      const forward = (dir: ProxyDirection, data: Uint8Array): void => {
        if (proxy.killed) return;
        const out: Uint8Array[] = [];
        for (const record of deframers[dir].push(data)) {
          const index = proxy.total++;
          proxy.seen[dir]++;
          const result = hook(dir, record, index, proxy);
          if (result === 'kill') {
            proxy.kill();
            return;
          }
          if (result === 'kill-client-leg' || result === 'kill-server-leg') {
            // Only one TCP connection dies; the other stays open and silent.
            proxy.keepOtherLeg = true;
            proxy.killed = true;
            destroy(result === 'kill-client-leg' ? client : server);
            return;
          }
          out.push(...result);
        }
        if (out.length === 0) return;
        const to = dir === 'c2s' ? server : client;
        if (dir === 'c2s' && server.readyState === WebSocket.CONNECTING) pending.push(concat(...out));
        else if (to.readyState === WebSocket.OPEN) to.send(concat(...out));
      };
      client.on('error', () => {});
      server.on('error', () => {});
      client.on('message', (d: Buffer) => forward('c2s', new Uint8Array(d)));
      server.on('message', (d: Buffer) => forward('s2c', new Uint8Array(d)));
      server.on('open', () => {
        for (const p of pending.splice(0)) server.send(p);
      });
      // A proxy passes a close on; an abnormal end becomes an abnormal end.
      const relay = (from: WebSocket, to: WebSocket) =>
        from.on('close', (code: number, reason: Buffer) => {
          proxy.legs.delete(from);
          if (proxy.keepOtherLeg) return;
          if (to.readyState === WebSocket.OPEN && code >= 1000 && code !== 1005 && code !== 1006) to.close(code, reason);
          else to.terminate();
        });
      relay(client, server);
      relay(server, client);
    });
    return proxy;
  }

  /** Destroy every leg's TCP connection now (no close frames). */
  kill(): void {
    this.killed = true;
    for (const ws of this.legs) destroy(ws);
    this.legs.clear();
  }
}

/** Destroy a WebSocket's TCP connection at once (a reset, as a network fault would). */
function destroy(ws: WebSocket): void {
  (ws as unknown as { _socket?: Socket })._socket?.destroy();
  ws.terminate();
}
