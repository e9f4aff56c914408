/**
 * MCP fixtures for transport tests: a feature-complete McpServer per session (tools with
 * structured output, resources with templates and subscriptions, prompts, completions,
 * logging, progress, cancellation, sampling, elicitation, authInfo echo), a real SDK Client
 * wired for sampling and elicitation, and a cleanup registry so every test closes what it
 * opened.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import { CreateMessageRequestSchema, ElicitRequestSchema, SubscribeRequestSchema, UnsubscribeRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { PqmcpClientTransport, serveMcp } from '../../src/transport/index.js';
import type { PqmcpClientOptions, PqmcpServer, PqmcpServerOptions, SessionFactory } from '../../src/transport/index.js';
import type { AgentIdentity } from '../../src/identity/index.js';
import type { VerifiedPeer } from '../../src/identity/trust.js';
import { agent, trustFor } from './identities.js';

export const SERVER_ID = 'agent://pqmcp-test/server';

/** Counters the feature server updates, shared by all its sessions. */
export interface ServerStats {
  sessions: number;
  /** Every tool, resource or prompt handler invocation. */
  handlerCalls: number;
  cancelled: number;
  /** Resolves the next time a 'slow' tool starts. */
  slowStarted: Promise<void>;
  peers: VerifiedPeer[];
}

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

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(new Error('aborted'));
    });
  });

/** One McpServer with every MCP feature the transport tests exercise. */
export function featureServer(stats: ServerStats & { markSlowStarted: () => void }): McpServer {
  const mcp = new McpServer({ name: 'pqmcp-feature-server', version: '1.0.0' }, { capabilities: { logging: {}, resources: { subscribe: true } } });
  const subscriptions = new Set<string>();
  const count = (): void => void stats.handlerCalls++;

  mcp.registerTool('echo', { description: 'echo text', inputSchema: { text: z.string() } }, async ({ text }) => {
    count();
    return { content: [{ type: 'text', text }] };
  });
  mcp.registerTool('add', { inputSchema: { a: z.number(), b: z.number() }, outputSchema: { sum: z.number() } }, async ({ a, b }) => {
    count();
    return { content: [{ type: 'text', text: String(a + b) }], structuredContent: { sum: a + b } };
  });
  mcp.registerTool(
    'whoami',
    { outputSchema: { clientId: z.string(), scopes: z.array(z.string()), token: z.string(), expiresAt: z.number(), issuer: z.string(), suite: z.string(), backend: z.string(), serial: z.string() } },
    async (extra) => {
      count();
      const auth = extra.authInfo;
      const e = (auth?.extra ?? {}) as Record<string, unknown>;
      const out = {
        clientId: auth?.clientId ?? '',
        scopes: auth?.scopes ?? [],
        token: auth?.token ?? '',
        expiresAt: auth?.expiresAt ?? 0,
        issuer: String(e['issuer']),
        suite: String(e['suite']),
        backend: String(e['backend']),
        serial: String(e['serial']),
      };
      return { content: [{ type: 'text', text: out.clientId }], structuredContent: out };
    },
  );
  mcp.registerTool('big', { inputSchema: { bytes: z.number().int().nonnegative() } }, async ({ bytes }) => {
    count();
    return { content: [{ type: 'text', text: 'x'.repeat(bytes) }] };
  });
  mcp.registerTool('slow', { inputSchema: { ms: z.number() } }, async ({ ms }, extra) => {
    count();
    stats.markSlowStarted();
    try {
      await sleep(ms, extra.signal);
    } catch {
      stats.cancelled++;
      throw new Error('cancelled');
    }
    return { content: [{ type: 'text', text: 'done' }] };
  });
  mcp.registerTool('progress', { inputSchema: { steps: z.number().int().positive() } }, async ({ steps }, extra) => {
    count();
    const token = extra._meta?.progressToken;
    for (let i = 1; i <= steps; i++) {
      if (token !== undefined) await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: steps } });
    }
    return { content: [{ type: 'text', text: `${steps} steps` }] };
  });
  mcp.registerTool('sample', { inputSchema: { prompt: z.string() } }, async ({ prompt }) => {
    count();
    const result = await mcp.server.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens: 50 });
    const text = result.content.type === 'text' ? result.content.text : '';
    return { content: [{ type: 'text', text: `model said: ${text}` }] };
  });
  mcp.registerTool('elicit', {}, async () => {
    count();
    const result = await mcp.server.elicitInput({
      message: 'Your name?',
      requestedSchema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
    });
    return { content: [{ type: 'text', text: `${result.action}:${String(result.content?.['name'] ?? '')}` }] };
  });
  mcp.registerTool('log', { inputSchema: { level: z.enum(['debug', 'info', 'warning', 'error']), text: z.string() } }, async ({ level, text }, extra) => {
    count();
    await mcp.server.sendLoggingMessage({ level, logger: 'feature', data: text }, extra.sessionId);
    return { content: [{ type: 'text', text: 'logged' }] };
  });
  mcp.registerTool('touch', { inputSchema: { uri: z.string() } }, async ({ uri }) => {
    count();
    const subscribed = subscriptions.has(uri);
    if (subscribed) await mcp.server.sendResourceUpdated({ uri });
    return { content: [{ type: 'text', text: subscribed ? 'notified' : 'not subscribed' }] };
  });

  mcp.registerResource('config', 'config://app', { mimeType: 'application/json' }, async (uri) => {
    count();
    return { contents: [{ uri: uri.href, mimeType: 'application/json', text: '{"mode":"secure"}' }] };
  });
  mcp.registerResource(
    'note',
    new ResourceTemplate('notes://{id}', {
      list: async () => ({ resources: [{ uri: 'notes://alpha', name: 'alpha' }, { uri: 'notes://beta', name: 'beta' }] }),
      complete: { id: (value) => ['alpha', 'beta', 'gamma'].filter((n) => n.startsWith(value)) },
    }),
    { mimeType: 'text/plain' },
    async (uri, { id }) => {
      count();
      return { contents: [{ uri: uri.href, text: `note ${String(id)}` }] };
    },
  );
  mcp.server.setRequestHandler(SubscribeRequestSchema, async (request) => {
    subscriptions.add(request.params.uri);
    return {};
  });
  mcp.server.setRequestHandler(UnsubscribeRequestSchema, async (request) => {
    subscriptions.delete(request.params.uri);
    return {};
  });

  mcp.registerPrompt(
    'greet',
    { description: 'greet someone', argsSchema: { name: completable(z.string(), (value) => ['Ada', 'Alan', 'Grace'].filter((n) => n.startsWith(value))) } },
    ({ name }) => {
      count();
      return { messages: [{ role: 'user', content: { type: 'text', text: `Hello, ${name}!` } }] };
    },
  );
  return mcp;
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
