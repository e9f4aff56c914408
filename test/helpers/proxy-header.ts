/**
 * PROXY protocol headers for tests (the sender's side, which src/ does not have), and a
 * minimal TCP relay on 127.0.0.x that puts one in front of each connection it forwards,
 * like HAProxy `send-proxy-v2` or nginx stream `proxy_protocol on`.
 */
import { connect, createServer, isIP, type Server, type Socket } from 'node:net';

const SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** "PROXY TCP4|TCP6 src dst sport dport\r\n" (family from the source address). */
export function v1Header(src: string, dst: string, sport = 40_000, dport = 443): Buffer {
  return Buffer.from(`PROXY TCP${isIP(src)} ${src} ${dst} ${sport} ${dport}\r\n`, 'latin1');
}

function ipBytes(address: string): Buffer {
  if (isIP(address) === 4) return Buffer.from(address.split('.').map(Number));
  const [head, tail = ''] = address.split('::') as [string, string?];
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const h = groups(head);
  const t = groups(tail);
  const all = address.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), 2 * i));
  return out;
}

export interface V2Options {
  /** 0 LOCAL, 1 PROXY (default). */
  command?: number;
  /** The family/protocol byte; default from the source address (0x11 or 0x21). */
  familyProtocol?: number;
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
  /** Raw address block instead of src/dst/ports. */
  block?: Buffer;
  /** TLVs appended after the addresses. */
  tlvs?: { type: number; value: Buffer }[];
  /** Version/command byte override. */
  versionCommand?: number;
  /** Length field override. */
  length?: number;
}

export function v2Header(o: V2Options = {}): Buffer {
  const command = o.command ?? 1;
  let block = o.block;
  if (block === undefined && o.src !== undefined) {
    const ports = Buffer.alloc(4);
    ports.writeUInt16BE(o.sport ?? 40_000, 0);
    ports.writeUInt16BE(o.dport ?? 443, 2);
    block = Buffer.concat([ipBytes(o.src), ipBytes(o.dst ?? (isIP(o.src) === 4 ? '127.0.0.1' : '::1')), ports]);
  }
  block ??= Buffer.alloc(0);
  const tlvs = Buffer.concat((o.tlvs ?? []).map((t) => Buffer.concat([Buffer.from([t.type, t.value.length >> 8, t.value.length & 0xff]), t.value])));
  const body = Buffer.concat([block, tlvs]);
  const fixed = Buffer.alloc(4);
  fixed[0] = o.versionCommand ?? (0x20 | command);
  fixed[1] = o.familyProtocol ?? (o.src === undefined ? 0x00 : isIP(o.src) === 4 ? 0x11 : 0x21);
  fixed.writeUInt16BE(o.length ?? body.length, 2);
  return Buffer.concat([SIGNATURE, fixed, body]);
}

export interface RelayOptions {
  /** Where to forward (the listener). */
  target: { host: string; port: number };
  /** The relay's own address on its way to the target (the trusted proxy). Default 127.0.0.1. */
  localAddress?: string;
  /** The header for a connection from `client` (default: v2 naming the client's address). */
  header?: (client: Socket) => Buffer;
  /** Write the header one byte per event-loop turn (a header split across reads). */
  trickle?: boolean;
  /** Send the header together with the client's first bytes in one write. */
  coalesce?: boolean;
}

/** A TCP relay that speaks PROXY protocol to its target. close() ends it and every relayed connection. */
export class ProxyRelay {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  private constructor(server: Server) {
    this.server = server;
  }

  static async start(host: string, options: RelayOptions): Promise<ProxyRelay> {
    const server = createServer({ pauseOnConnect: true });
    const relay = new ProxyRelay(server);
    server.on('connection', (client) => relay.relay(client, options));
    await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
    return relay;
  }

  get url(): string {
    const a = this.server.address() as { address: string; port: number };
    return `ws://${a.address}:${a.port}/`;
  }

  private relay(client: Socket, o: RelayOptions): void {
    const header = o.header ? o.header(client) : v2Header({ src: client.remoteAddress!, dst: client.localAddress!, sport: client.remotePort!, dport: client.localPort! });
    const upstream = connect({ host: o.target.host, port: o.target.port, localAddress: o.localAddress ?? '127.0.0.1' });
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('close', () => upstream.end());
    upstream.on('close', () => client.destroy());
    upstream.once('connect', async () => {
      if (o.trickle) {
        for (const byte of header) {
          upstream.write(Buffer.of(byte));
          await new Promise((r) => setTimeout(r, 2));
        }
      } else if (o.coalesce) {
        const first = await new Promise<Buffer>((resolve) => {
          client.once('data', (d: Buffer) => {
            client.pause();
            resolve(d);
          });
          client.resume();
        });
        upstream.write(Buffer.concat([header, first]));
      } else {
        upstream.write(header);
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
