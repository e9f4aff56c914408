/**
 * MCP fixtures for transport tests: a feature-complete McpServer per session (tools with
 * structured output, resources with templates and subscriptions, prompts, completions,
 * logging, progress, cancellation, sampling, elicitation, authInfo echo), a real SDK Client
 * wired for sampling and elicitation, and a cleanup registry so every test closes what it
 * opened.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CreateMessageRequestSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { PqmcpClientTransport, serveMcp } from '../../src/transport/index.js';
import type { PqmcpClientOptions, PqmcpServer, PqmcpServerOptions, SessionFactory } from '../../src/transport/index.js';
import type { AgentIdentity } from '../../src/identity/index.js';
import type { VerifiedPeer } from '../../src/identity/trust.js';
import { agent, trustFor } from './identities.js';
import { featureServer } from './feature-server1.js';
import type { ServerStats } from './feature-server1.js';

// The feature server itself lives in feature-server1.ts (no pqmcp imports: it also runs as
// a stdio child of `pqmcp serve`, test/matrix/fixtures/feature-server.ts).
export { featureServer } from './feature-server1.js';
export type { ServerStats } from './feature-server1.js';

export const SERVER_ID = 'agent://pqmcp-test/server';

function newStats(): ServerStats & { markSlowStarted: () => void } {
  let mark!: () => void;
  const stats = {
    sessions: 0,
    handlerCalls: 0,
    cancelled: 0,
    peers: [] as VerifiedPeer[],
    slowStarted: new Promise<void>((r) => (mark = r)),
    markSlowStarted: () => {
      mark();
      stats.slowStarted = new Promise<void>((r) => (mark = r));
    },
  };
  return stats;
}

/** Closes everything a test opened, newest first. */
export class Cleanup {
  private readonly tasks: Array<() => Promise<unknown> | unknown> = [];
  add(task: () => Promise<unknown> | unknown): void {
    this.tasks.push(task);
  }
  async run(): Promise<void> {
    const tasks = this.tasks.splice(0).reverse();
    for (const task of tasks) {
      try {
        await task();
      } catch {
        // Best effort.
      }
    }
  }
}

export interface StartedServer {
  server: PqmcpServer;
  stats: ServerStats;
  url: string;
}

/** serveMcp with the feature server, on 127.0.0.1 and a free port. */
export async function startFeatureServer(cleanup: Cleanup, options: Partial<PqmcpServerOptions> = {}): Promise<StartedServer> {
  const stats = newStats();
  const server = await serveMcp({ identity: agent(SERVER_ID), trust: trustFor(), host: '127.0.0.1', port: 0, ...options }, (peer) => {
    stats.sessions++;
    stats.peers.push(peer);
    return featureServer(stats);
  });
  cleanup.add(() => server.close());
  return { server, stats, url: server.url };
}

/** serveMcp with any per-session factory (e.g. server-everything's createServer), registered for cleanup. */
export async function startServer(cleanup: Cleanup, factory: SessionFactory, options: Partial<PqmcpServerOptions> = {}): Promise<PqmcpServer> {
  const server = await serveMcp({ identity: agent(SERVER_ID), trust: trustFor(), host: '127.0.0.1', port: 0, ...options }, factory);
  cleanup.add(() => server.close());
  return server;
}

export interface ConnectedClient {
  client: Client;
  transport: PqmcpClientTransport;
  /** Sampling requests the server made of this client. */
  samplingRequests: number;
}

/** A real SDK Client (sampling + elicitation capable) over a pqmcp transport. */
export function makeClient(url: string, options: Partial<PqmcpClientOptions> & { identity?: AgentIdentity } = {}): ConnectedClient {
  const transport = new PqmcpClientTransport(url, { identity: agent('agent://pqmcp-test/client'), trust: trustFor(), expectedServerId: SERVER_ID, ...options });
  const client = new Client({ name: 'pqmcp-test-client', version: '1.0.0' }, { capabilities: { sampling: {}, elicitation: {} } });
  const connected: ConnectedClient = { client, transport, samplingRequests: 0 };
  client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
    connected.samplingRequests++;
    const content = request.params.messages[0]?.content;
    const text = content && !Array.isArray(content) && content.type === 'text' ? content.text : '';
    return { model: 'test-model', role: 'assistant', content: { type: 'text', text: text.toUpperCase() } };
  });
  client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { name: 'Ada' } }));
  return connected;
}

/** makeClient + connect, registered for cleanup. */
export async function connectClient(cleanup: Cleanup, url: string, options: Partial<PqmcpClientOptions> & { identity?: AgentIdentity } = {}): Promise<ConnectedClient> {
  const connected = makeClient(url, options);
  cleanup.add(() => connected.client.close());
  await connected.client.connect(connected.transport);
  return connected;
}

/** Resolve when `predicate` holds, polling every few ms; reject after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
