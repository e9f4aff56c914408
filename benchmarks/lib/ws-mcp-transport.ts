/**
 * BASELINE ONLY, not part of pqmcp: the smallest sensible MCP Transport over a plain `ws`
 * WebSocket (one JSON-RPC message per text frame, no security), so the benchmarks can run
 * the same SDK Client / McpServer pair over plain ws and wss and compare it with pqmcp.
 *
 * It behaves like the SDK's own WebSocketClientTransport: send() resolves once the frame is
 * handed to `ws` (no confirmation, no backpressure), start() resolves on 'open', and
 * close() fires onclose once the socket has closed.
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { WebSocket } from 'ws';
import type { ClientOptions, RawData } from 'ws';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

export const BASELINE_SUBPROTOCOL = 'mcp';

export class WsMcpTransport implements Transport {
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: ((message: JSONRPCMessage) => void) | undefined;
  sessionId?: string | undefined;
  /** When 'open' fired (performance.now()), client side only. */
  openedAt: number | undefined;
  /** TLS details of a wss connection (group, cipher, protocol), client side only. */
  readonly tls: Record<string, string> = {};
  private ws: WebSocket | undefined;
  private closed = false;

  /** Client: connect to `url` on start(). Server: wrap an accepted socket. */
  constructor(
    private readonly target: { url: string; options?: ClientOptions } | { socket: WebSocket },
  ) {}

  /** The underlying socket (after start). */
  get socket(): WebSocket | undefined {
    return this.ws;
  }

  async start(): Promise<void> {
    if ('socket' in this.target) {
      this.attach(this.target.socket);
      return;
    }
    const ws = new WebSocket(this.target.url, BASELINE_SUBPROTOCOL, { ...this.target.options, perMessageDeflate: false });
    ws.once('upgrade', (res: IncomingMessage) => {
      const socket = res.socket as TLSSocket;
      if (typeof socket.getEphemeralKeyInfo !== 'function') return;
      this.tls.group = (socket.getEphemeralKeyInfo() as { name?: string } | null)?.name ?? 'unknown';
      this.tls.cipher = socket.getCipher().name;
      this.tls.protocol = socket.getProtocol() ?? 'unknown';
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => {
        this.openedAt = performance.now();
        resolve();
      });
      ws.once('error', reject);
    });
    this.attach(ws);
  }

  async send(message: JSONRPCMessage): Promise<void> {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) throw new Error('not connected');
    ws.send(JSON.stringify(message));
  }

  async close(): Promise<void> {
    const ws = this.ws;
    if (!ws || this.closed) return this.fireClose();
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      ws.close();
    });
  }

  private attach(ws: WebSocket): void {
    this.ws = ws;
    ws.on('error', (err: Error) => this.onerror?.(err));
    ws.on('close', () => this.fireClose());
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (isBinary) return this.onerror?.(new Error('binary frame on a JSON-RPC text channel'));
      let message: JSONRPCMessage;
      try {
        message = JSON.parse(String(data)) as JSONRPCMessage;
      } catch (err) {
        return this.onerror?.(err as Error);
      }
      this.onmessage?.(message);
    });
  }

  private fireClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.onclose?.();
  }
}
