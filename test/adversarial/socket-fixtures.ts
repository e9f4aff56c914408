/**
 * Shared pieces of the socket-level adversarial tests: a pqmcp listener with an MCP server
 * per session that records every transport event, the identities an attacker presents, and
 * the JSON-RPC bytes it sends.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { PqmcpError } from '../../src/errors.js';
import type { AgentIdentity } from '../../src/identity/index.js';
import { listen } from '../../src/transport/index.js';
import type { PqmcpServer, PqmcpServerOptions, PqmcpServerTransport } from '../../src/transport/index.js';
import { agent, fixtureCrypto, trustFor } from '../helpers/identities.js';
import { SERVER_ID, type Cleanup } from '../helpers/mcp.js';
import type { AttackerOptions } from './harness.js';

export { SERVER_ID };

/** What the honest server saw. */
export interface ServerLog {
  server: PqmcpServer;
  url: string;
  /** Failures before a session was handed over ('clientError'). */
  clientErrors: PqmcpError[];
  /** Sessions handed to the application. */
  sessions: PqmcpServerTransport[];
  /** Per-session transport errors and closes, in order. */
  transportEvents: string[];
  transportErrors: PqmcpError[];
  handlerCalls: number;
}

/** A tiny MCP server: `echo` and `blob` (n bytes of text). */
function tools(log: ServerLog): McpServer {
  const mcp = new McpServer({ name: 'adversarial', version: '1.0.0' });
  mcp.registerTool('echo', { inputSchema: { text: z.string() } }, async ({ text }) => {
    log.handlerCalls++;
    return { content: [{ type: 'text', text }] };
  });
  mcp.registerTool('blob', { inputSchema: { bytes: z.number().int().nonnegative() } }, async ({ bytes }) => {
    log.handlerCalls++;
    return { content: [{ type: 'text', text: 'b'.repeat(bytes) }] };
  });
  return mcp;
}

/** A listener on 127.0.0.1 (native backend) whose sessions run `tools`, with every event logged. */
export async function honestServer(cleanup: Cleanup, options: Partial<PqmcpServerOptions> = {}): Promise<ServerLog> {
  const server = await listen({ identity: agent(SERVER_ID), trust: trustFor(), backend: 'native', ...options });
  cleanup.add(() => server.close());
  const log: ServerLog = { server, url: server.url, clientErrors: [], sessions: [], transportEvents: [], transportErrors: [], handlerCalls: 0 };
  server.on('clientError', (e) => void log.clientErrors.push(e));
  server.on('session', (transport) => {
    log.sessions.push(transport);
    void tools(log)
      .connect(transport)
      .then(() => {
        const { onerror, onclose } = transport;
        transport.onerror = (e) => {
          log.transportEvents.push('error');
          log.transportErrors.push(e as PqmcpError);
          onerror?.(e);
        };
        transport.onclose = () => {
          log.transportEvents.push('close');
          onclose?.();
        };
      });
  });
  return log;
}

/** Open TCP connections on the listener's HTTP server. */
export function connections(log: ServerLog): Promise<number> {
  return new Promise((resolve, reject) => log.server.httpServer.getConnections((err, n) => (err ? reject(err) : resolve(n))));
}

/** Attacker options with an identity the honest server trusts (or the one given). */
export function attackerAs(identity: AgentIdentity = agent('agent://pqmcp-test/hostile'), extra: Partial<AttackerOptions> = {}): AttackerOptions {
  return { backend: fixtureCrypto(), identity, trust: trustFor(), ...extra };
}

const encoder = new TextEncoder();

/** A JSON-RPC message as the bytes of one pqmcp application message. */
export function jsonrpc(message: Record<string, unknown>): Uint8Array {
  return encoder.encode(JSON.stringify({ jsonrpc: '2.0', ...message }));
}

export const INITIALIZE = jsonrpc({ id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'hostile', version: '1' } } });
export const INITIALIZED = jsonrpc({ method: 'notifications/initialized' });
