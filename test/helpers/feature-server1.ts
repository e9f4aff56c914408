/**
 * The 1.x feature server: one McpServer with every MCP feature the transport tests exercise
 * (tools with structured output, resources with templates and subscriptions, prompts,
 * completions, logging, progress, cancellation, sampling, elicitation, authInfo echo), and
 * the matrix's variant of it (helpers/matrix.ts). Imports only the 1.x server SDK and zod,
 * so it also starts quickly as a stdio child of `pqmcp serve`
 * (test/matrix/fixtures/feature-server.ts). helpers/mcp2.ts is its 2.x twin.
 */
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import { SubscribeRequestSchema, UnsubscribeRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { VerifiedPeer } from '../../src/identity/trust.js';
import { peerEnv } from './peer-env.js';
import type { FeatureStats } from './peer-env.js';

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

/** The 1.x feature server (featureServer above) plus the two tools the matrix reads across processes. */
export function featureServer1(stats: FeatureStats): McpServer {
  let mark = (): void => {};
  const shared = {
    sessions: 0,
    peers: [],
    get handlerCalls() {
      return stats.handlerCalls;
    },
    set handlerCalls(n: number) {
      stats.handlerCalls = n;
    },
    get cancelled() {
      return stats.cancelled;
    },
    set cancelled(n: number) {
      stats.cancelled = n;
    },
    slowStarted: new Promise<void>((r) => (mark = r)),
    markSlowStarted: () => mark(),
  };
  const mcp = featureServer(shared);
  mcp.registerTool('peer-env', {}, async () => ({ content: [{ type: 'text', text: process.env['PQMCP_PEER_ID'] ?? '' }], structuredContent: peerEnv() }));
  mcp.registerTool('stats', {}, async () => ({ content: [{ type: 'text', text: JSON.stringify(stats) }], structuredContent: { ...stats } }));
  return mcp;
}

