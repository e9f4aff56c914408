/**
 * Hostile connection floods against a pqmcp listener, for the flood tests (test/load/) and
 * the flood benchmark (suites/flood.ts). Loopback only: every source address must be in
 * 127.0.0.0/8, and every flood is bounded in connections and in time.
 *
 *   idle        WebSockets that never send; each re-opened as soon as the server closes it
 *   slowloris   after the upgrade, a valid ClientHello trickled one byte a second
 *   silence     a valid ClientHello, then nothing; re-opened when closed
 *   replay      one recorded ClientHello, re-sent on a new connection as soon as the server
 *               answers the previous one (full rate)
 *   keyupdate   (authenticated) `connections` sessions that each send batches of 31
 *               KeyUpdates with update_requested and a ping request (the most the
 *               32-in-a-row rule lets through), keeping two batches unanswered: as fast as
 *               the server processes them, without the attacker burning its own CPU on
 *               batches that would only wait in socket buffers; up to `maxKeyUpdates` in all
 *   partial     (authenticated) `connections` sessions that each send 64 KiB fragments of
 *               one 64 MiB message as fast as the server reads, never its final fragment;
 *               a holder stops once the server has not read from it for 500 ms
 *
 * The authenticated floods run the test suite's Attacker (test/adversarial/attacker.ts) with
 * a credential the server trusts (`attacker`): a real handshake, then raw records.
 * Each of `connections` slots keeps one connection open and re-opens it when it closes,
 * cycling through `sources` (localAddress) so the server sees that many client addresses.
 */
import { WebSocket } from 'ws';
import { SUBPROTOCOL } from '../../src/transport/options.js';
import { concat } from '../../src/bytes.js';
import { endpointOfUrl } from '../../src/handshake/endpoint.js';
import { InnerType } from '../../src/record/index.js';
import { Attacker, type AttackerOptions } from '../../test/adversarial/attacker.js';

export type FloodKind = 'idle' | 'slowloris' | 'silence' | 'replay' | 'keyupdate' | 'partial';

/** What the authenticated floods handshake with (AttackerOptions, built by the caller). */
export type FloodAttacker = AttackerOptions;

export interface FloodOptions {
  url: string;
  kind: FloodKind;
  /** Source addresses, each in 127.0.0.0/8. */
  sources: readonly string[];
  /** Connections kept open at once. */
  connections: number;
  /** Valid ClientHello records (slowloris, silence: cycled; replay: the first only). */
  hellos: readonly Uint8Array[];
  /** Hard cap on connections opened in all. Default 50 000. */
  maxOpened?: number;
  /** keyupdate, partial: the trusted identity to handshake as. */
  attacker?: FloodAttacker;
  /** keyupdate: KeyUpdates sent in all at most. Default 1 000 000. */
  maxKeyUpdates?: number;
}

export interface FloodStats {
  opened: number;
  /** keyupdate: KeyUpdates sent; partial: fragment bytes sent. */
  sent?: number;
  /** Closes by code (4006 busy, 4004 timeout, 1006 abnormal...). */
  closes: Record<number, number>;
}

/** A 127.0.0.x address list: `count` sources starting at 127.0.0.`first`. */
export function loopbackSources(count: number, first = 10): string[] {
  if (first + count > 255) throw new Error('too many loopback sources');
  return Array.from({ length: count }, (_, i) => `127.0.0.${first + i}`);
}

export class Flood {
  readonly stats: FloodStats = { opened: 0, closes: {} };
  private running = true;
  private readonly sockets = new Set<WebSocket>();
  private readonly timers = new Set<ReturnType<typeof setInterval>>();
  private next = 0;

  constructor(private readonly options: FloodOptions) {
    for (const s of options.sources) if (!/^127\.\d+\.\d+\.\d+$/.test(s)) throw new Error(`flood sources must be loopback: ${s}`);
    if (!/^wss?:\/\/127\./.test(options.url)) throw new Error('floods target loopback only');
    if (options.kind === 'keyupdate' || options.kind === 'partial') {
      if (!options.attacker) throw new Error(`${options.kind} flood needs an attacker identity`);
      for (let i = 0; i < options.connections; i++) void this.authenticated(i, options.attacker);
    } else for (let i = 0; i < options.connections; i++) this.open(i);
  }

  /** One authenticated attacker session (keyupdate, partial): handshake, then misbehave until stopped. */
  private async authenticated(slot: number, attackerOptions: FloodAttacker): Promise<void> {
    const { sources, kind } = this.options;
    this.stats.opened++;
    const ws = new WebSocket(this.options.url, [SUBPROTOCOL], { localAddress: sources[slot % sources.length]!, perMessageDeflate: false });
    this.sockets.add(ws);
    const attacker = new Attacker('client', { ...attackerOptions, endpoint: endpointOfUrl(new URL(this.options.url)) });
    let done = false;
    let wake: (() => void) | undefined;
    const established = new Promise<boolean>((resolve) => {
      ws.on('error', () => {});
      ws.on('close', (code) => {
        this.sockets.delete(ws);
        this.stats.closes[code] = (this.stats.closes[code] ?? 0) + 1;
        done = true;
        resolve(false);
        wake?.();
      });
      ws.on('message', (data: Buffer) => {
        const out = attacker.receive(new Uint8Array(data));
        if (out.length > 0 && ws.readyState === ws.OPEN) ws.send(concat(...out));
        if (attacker.result) resolve(true);
        wake?.();
      });
      ws.on('open', () => ws.send(concat(...attacker.start())));
    });
    if (!(await established)) return;
    const live = (): boolean => this.running && !done && ws.readyState === ws.OPEN;
    const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
    if (kind === 'keyupdate') {
      const max = this.options.maxKeyUpdates ?? 1_000_000;
      // Every answer (to the ping ending each batch) is one application message.
      const unanswered = (): number => batches - attacker.messages.length;
      let batches = 0;
      while (live() && (this.stats.sent ?? 0) < max) {
        if (unanswered() >= 2) {
          await new Promise<void>((r) => (wake = r));
          wake = undefined;
          continue;
        }
        const batch: Uint8Array[] = [];
        for (let i = 0; i < 31; i++) batch.push(...attacker.sendKeyUpdate(true));
        batch.push(...attacker.sendApplication(new TextEncoder().encode(JSON.stringify({ jsonrpc: '2.0', id: ++batches, method: 'ping' }))));
        this.stats.sent = (this.stats.sent ?? 0) + 31;
        ws.send(concat(...batch));
        await turn();
      }
      return;
    }
    // partial: fragments of a 64 MiB message, 15 per WebSocket message (under maxPayload), never the final one.
    const fragment = new Uint8Array(65536).fill(0x20);
    let left = 64 * 16 - 1;
    let blockedSince = 0;
    while (live() && left > 0) {
      if (ws.bufferedAmount > 2 * 1024 * 1024) {
        blockedSince ||= Date.now();
        if (Date.now() - blockedSince > 500) return; // the server stopped reading: hold what it has
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      blockedSince = 0;
      const n = Math.min(15, left);
      left -= n;
      ws.send(concat(...Array.from({ length: n }, () => attacker.seal(InnerType.applicationFragment, fragment))));
      this.stats.sent = (this.stats.sent ?? 0) + n * 65536;
      await turn();
    }
  }

  /** Stop re-opening and drop every connection. */
  async stop(): Promise<void> {
    this.running = false;
    for (const t of this.timers) clearInterval(t);
    this.timers.clear();
    const closing = [...this.sockets].map((ws) => new Promise<void>((resolve) => (ws.readyState === ws.CLOSED ? resolve() : (ws.once('close', () => resolve()), ws.terminate()))));
    await Promise.all(closing);
  }

  private open(slot: number): void {
    if (!this.running || this.stats.opened >= (this.options.maxOpened ?? 50_000)) return;
    const { sources, kind, hellos } = this.options;
    const localAddress = sources[this.next++ % sources.length]!;
    this.stats.opened++;
    const ws = new WebSocket(this.options.url, [SUBPROTOCOL], { localAddress, perMessageDeflate: false });
    this.sockets.add(ws);
    let timer: ReturnType<typeof setInterval> | undefined;
    ws.on('error', () => {});
    ws.on('close', (code) => {
      this.sockets.delete(ws);
      if (timer) {
        clearInterval(timer);
        this.timers.delete(timer);
      }
      this.stats.closes[code] = (this.stats.closes[code] ?? 0) + 1;
      if (this.running) setImmediate(() => this.open(slot));
    });
    const hello = hellos[slot % hellos.length];
    ws.on('open', () => {
      if (kind === 'idle') return;
      if (!hello) throw new Error(`${kind} flood needs ClientHellos`);
      if (kind === 'silence') ws.send(hello);
      else if (kind === 'replay') {
        ws.send(hellos[0]!);
        ws.once('message', () => ws.terminate());
      } else {
        let offset = 0;
        timer = setInterval(() => {
          if (offset < hello.length && ws.readyState === ws.OPEN) ws.send(hello.subarray(offset, ++offset));
        }, 1_000);
        this.timers.add(timer);
      }
    });
  }
}
