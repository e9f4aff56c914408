/**
 * The feature server of helpers/mcp.ts on MCP SDK 2.x: the same tools, resources, prompts
 * and completions, with the same names and answers, written the 2.x way. Sampling and
 * elicitation are written once as multi-round-trip requests (`inputRequired`): on a
 * 2026-07-28 connection the client fulfils them and retries; on a 2025-era connection the
 * SDK's legacy shim turns them into real server -> client requests. Used by the SDK matrix
 * (library and CLI) so both majors serve identical behaviour.
 */
import { McpServer, ResourceTemplate, completable, inputRequired, inputResponse } from '@modelcontextprotocol/server';
import type { CallToolResult } from '@modelcontextprotocol/server';
import * as z from 'zod4';
import { peerEnv } from './peer-env.js';
import type { FeatureStats } from './peer-env.js';

export type { FeatureStats } from './peer-env.js';

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(new Error('aborted'));
    });
  });

const text = (t: string): CallToolResult => ({ content: [{ type: 'text', text: t }] });

/**
 * The 2.x feature server. `peerFromFactory` is the verified agent id the session factory
 * was given (pqmcp's serveMcp / 'session' event): the `whoami` tool reports where the
 * handler found the caller, `ctx.http.authInfo` (the transport's auth, 2.x's design) or,
 * where the SDK does not deliver it, the factory's peer.
 */
export function featureServer2(stats: FeatureStats, peerFromFactory?: string): McpServer {
  const mcp = new McpServer({ name: 'pqmcp-feature-server', version: '1.0.0' }, { capabilities: { logging: {}, resources: { subscribe: true } } });
  const subscriptions = new Set<string>();
  const count = (): void => void stats.handlerCalls++;

  mcp.registerTool('echo', { description: 'echo text', inputSchema: { text: z.string() } }, async ({ text: t }) => {
    count();
    return text(t);
  });
  mcp.registerTool('add', { inputSchema: { a: z.number(), b: z.number() }, outputSchema: { sum: z.number() } }, async ({ a, b }) => {
    count();
    return { content: [{ type: 'text', text: String(a + b) }], structuredContent: { sum: a + b } };
  });
  mcp.registerTool('whoami', {}, async (ctx) => {
    count();
    const auth = ctx.http?.authInfo;
    const via = auth ? 'ctx.http.authInfo' : peerFromFactory !== undefined ? 'factory' : process.env['PQMCP_PEER_ID'] !== undefined ? 'env' : 'none';
    const clientId = auth?.clientId ?? peerFromFactory ?? process.env['PQMCP_PEER_ID'] ?? '';
    return { content: [{ type: 'text', text: clientId }], structuredContent: { clientId, via, scopes: auth?.scopes ?? [] } };
  });
  mcp.registerTool('big', { inputSchema: { bytes: z.number().int().nonnegative() } }, async ({ bytes }) => {
    count();
    return text('x'.repeat(bytes));
  });
  mcp.registerTool('slow', { inputSchema: { ms: z.number() } }, async ({ ms }, ctx) => {
    count();
    try {
      await sleep(ms, ctx.mcpReq.signal);
    } catch {
      stats.cancelled++;
      throw new Error('cancelled');
    }
    return text('done');
  });
  mcp.registerTool('peer-env', {}, async () => ({ ...text(process.env['PQMCP_PEER_ID'] ?? ''), structuredContent: peerEnv() }));
  mcp.registerTool('stats', {}, async () => ({ content: [{ type: 'text', text: JSON.stringify(stats) }], structuredContent: { ...stats } }));
  mcp.registerTool('progress', { inputSchema: { steps: z.number().int().positive() } }, async ({ steps }, ctx) => {
    count();
    const token = ctx.mcpReq._meta?.progressToken;
    for (let i = 1; i <= steps; i++) {
      if (token !== undefined) await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: steps } });
    }
    return text(`${steps} steps`);
  });
  mcp.registerTool('sample', { inputSchema: { prompt: z.string() } }, async ({ prompt }, ctx) => {
    count();
    const answer = inputResponse(ctx.mcpReq.inputResponses, 'answer');
    if (answer.kind === 'sampling') {
      const content = answer.result.content;
      const said = !Array.isArray(content) && content.type === 'text' ? content.text : '';
      return text(`model said: ${said}`);
    }
    return inputRequired({ inputRequests: { answer: inputRequired.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens: 50 }) } });
  });
  mcp.registerTool('elicit', {}, async (ctx) => {
    count();
    const answer = inputResponse(ctx.mcpReq.inputResponses, 'name');
    if (answer.kind === 'elicit') return text(`${answer.action}:${String(answer.content?.['name'] ?? '')}`);
    return inputRequired({
      inputRequests: { name: inputRequired.elicit({ message: 'Your name?', requestedSchema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] } }) },
    });
  });
  mcp.registerTool('log', { inputSchema: { level: z.enum(['debug', 'info', 'warning', 'error']), text: z.string() } }, async ({ level, text: t }, ctx) => {
    count();
    await ctx.mcpReq.log(level, t, 'feature');
    return text('logged');
  });
  mcp.registerTool('touch', { inputSchema: { uri: z.string() } }, async ({ uri }) => {
    count();
    // On a 2025-era connection the server knows the client's subscriptions; on 2026-07-28
    // the entry's listen router delivers the update to whichever stream asked for it.
    const subscribed = subscriptions.has(uri) || mcp.server.getNegotiatedProtocolVersion() === '2026-07-28';
    if (subscribed) await mcp.server.sendResourceUpdated({ uri });
    return text(subscribed ? 'notified' : 'not subscribed');
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
  mcp.server.setRequestHandler('resources/subscribe', async (request) => {
    subscriptions.add(request.params.uri);
    return {};
  });
  mcp.server.setRequestHandler('resources/unsubscribe', async (request) => {
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
