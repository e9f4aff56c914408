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
 *
 * Each of `connections` slots keeps one connection open and re-opens it when it closes,
 * cycling through `sources` (localAddress) so the server sees that many client addresses.
 */
import { WebSocket } from 'ws';
import { SUBPROTOCOL } from '../../src/transport/options.js';

export type FloodKind = 'idle' | 'slowloris' | 'silence' | 'replay';

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
}

export interface FloodStats {
  opened: number;
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
    for (let i = 0; i < options.connections; i++) this.open(i);
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
