/**
 * The SDK matrix, table-driven: every MCP feature of an era, run the same way through any
 * pairing of client and server SDK majors (1.x `@modelcontextprotocol/sdk`, 2.x
 * `@modelcontextprotocol/client` / `server`) and either protocol era, over any transport
 * (pqmcp in the library, or stdio into `pqmcp connect` in front of `pqmcp serve`).
 *
 * A `Driver` is one connected client of either major behind one small interface; `FEATURES`
 * is the list of checks, each naming the eras it exists in. The library and CLI tests only
 * choose pairings and transports.
 */
import { expect } from 'vitest';
import { Client as Client1 } from '@modelcontextprotocol/sdk/client/index.js';
import type { Transport as Transport1 } from '@modelcontextprotocol/sdk/shared/transport.js';
import { CreateMessageRequestSchema, ElicitRequestSchema, LoggingMessageNotificationSchema, ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { Client as Client2, LOG_LEVEL_META_KEY } from '@modelcontextprotocol/client';
import type { McpSubscription, Transport as Transport2 } from '@modelcontextprotocol/client';
import { waitFor } from './mcp.js';
import type { FeatureStats } from './mcp2.js';

export type Major = 1 | 2;
export type Era = 'legacy' | 'modern';
/** The SDK's protocol revisions for each era. */
export const ERA_VERSION: Record<Era, string> = { legacy: '2025-11-25', modern: '2026-07-28' };

/** How a 2.x client negotiates: the default (2025 initialize), a pin, or auto (probe, fall back). */
export type Negotiation = 'default' | 'auto' | 'pin-2026';

export interface CallOptions {
  onprogress?: (p: { progress: number; total?: number }) => void;
  signal?: AbortSignal;
}

export interface CallResult {
  text: string;
  structured?: Record<string, unknown>;
  isError: boolean;
}

/** One connected client, either major, as the features drive it. */
export interface Driver {
  readonly major: Major;
  era(): Era;
  protocolVersion(): string | undefined;
  listTools(): Promise<string[]>;
  call(name: string, args?: Record<string, unknown>, options?: CallOptions): Promise<CallResult>;
  listResources(): Promise<string[]>;
  listTemplates(): Promise<string[]>;
  read(uri: string): Promise<string>;
  completeResource(uriTemplate: string, name: string, value: string): Promise<string[]>;
  listPrompts(): Promise<string[]>;
  prompt(name: string, args: Record<string, string>): Promise<string>;
  completePrompt(name: string, arg: string, value: string): Promise<string[]>;
  /** 2025 era: resources/subscribe; 2026-07-28: a subscriptions/listen stream. */
  subscribe(uri: string): Promise<void>;
  unsubscribe(uri: string): Promise<void>;
  /** 2025 era: logging/setLevel; 2026-07-28: the per-request logLevel envelope key. */
  setLogLevel(level: 'debug' | 'info' | 'warning' | 'error'): Promise<void>;
  readonly seen: { updates: string[]; logs: Array<{ level: string; data: unknown }>; sampling: string[]; elicitations: number };
  close(): Promise<void>;
}

function toResult(result: object): CallResult {
  const r = result as { content?: unknown; structuredContent?: unknown; isError?: unknown };
  const content = (r.content ?? []) as Array<{ type: string; text?: string }>;
  return {
    text: content.map((c) => (c.type === 'text' ? (c.text ?? '') : '')).join(''),
    ...(r.structuredContent !== undefined ? { structured: r.structuredContent as Record<string, unknown> } : {}),
    isError: r.isError === true,
  };
}

const CALL_TIMEOUT = 30_000;
const samplingAnswer = (prompt: string): string => prompt.toUpperCase();

/** A 1.x SDK Client (sampling and elicitation capable), connected over `transport`. */
export async function driver1(transport: Transport1): Promise<Driver> {
  const client = new Client1({ name: 'pqmcp-matrix-1x', version: '1.0.0' }, { capabilities: { sampling: {}, elicitation: {} } });
  const seen: Driver['seen'] = { updates: [], logs: [], sampling: [], elicitations: 0 };
  client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
    const content = request.params.messages[0]?.content;
    const prompt = content && !Array.isArray(content) && content.type === 'text' ? content.text : '';
    seen.sampling.push(prompt);
    return { model: 'test-model', role: 'assistant', content: { type: 'text', text: samplingAnswer(prompt) } };
  });
  client.setRequestHandler(ElicitRequestSchema, async () => {
    seen.elicitations++;
    return { action: 'accept', content: { name: 'Ada' } };
  });
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void seen.logs.push({ level: n.params.level, data: n.params.data }));
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void seen.updates.push(n.params.uri));
  await client.connect(transport);
  return {
    major: 1,
    era: () => 'legacy',
    protocolVersion: () => (transport as { protocolVersion?: string }).protocolVersion ?? '2025-11-25',
    listTools: async () => (await client.listTools()).tools.map((t) => t.name),
    call: async (name, args = {}, o = {}) =>
      toResult(await client.callTool({ name, arguments: args }, undefined, { timeout: CALL_TIMEOUT, ...(o.onprogress ? { onprogress: o.onprogress } : {}), ...(o.signal ? { signal: o.signal } : {}) })),
    listResources: async () => (await client.listResources()).resources.map((r) => r.uri),
    listTemplates: async () => (await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate),
    read: async (uri) => String(((await client.readResource({ uri })).contents[0] as { text?: string } | undefined)?.text ?? ''),
    completeResource: async (uri, name, value) => (await client.complete({ ref: { type: 'ref/resource', uri }, argument: { name, value } })).completion.values,
    listPrompts: async () => (await client.listPrompts()).prompts.map((p) => p.name),
    prompt: async (name, args) => {
      const c = (await client.getPrompt({ name, arguments: args })).messages[0]?.content;
      return c && c.type === 'text' ? c.text : '';
    },
    completePrompt: async (name, arg, value) => (await client.complete({ ref: { type: 'ref/prompt', name }, argument: { name: arg, value } })).completion.values,
    subscribe: async (uri) => void (await client.subscribeResource({ uri })),
    unsubscribe: async (uri) => void (await client.unsubscribeResource({ uri })),
    setLogLevel: async (level) => void (await client.setLoggingLevel(level)),
    seen,
    close: () => client.close(),
  };
}

/** A 2.x SDK Client (sampling and elicitation capable), negotiating as `negotiation` says. */
export async function driver2(transport: Transport2, negotiation: Negotiation): Promise<Driver> {
  const versionNegotiation = negotiation === 'auto' ? { mode: 'auto' as const } : negotiation === 'pin-2026' ? { mode: { pin: '2026-07-28' } } : undefined;
  const client = new Client2({ name: 'pqmcp-matrix-2x', version: '1.0.0' }, { capabilities: { sampling: {}, elicitation: {} }, ...(versionNegotiation ? { versionNegotiation } : {}) });
  const seen: Driver['seen'] = { updates: [], logs: [], sampling: [], elicitations: 0 };
  client.setRequestHandler('sampling/createMessage', async (request) => {
    const content = request.params.messages[0]?.content;
    const prompt = content && !Array.isArray(content) && content.type === 'text' ? content.text : '';
    seen.sampling.push(prompt);
    return { model: 'test-model', role: 'assistant' as const, content: { type: 'text' as const, text: samplingAnswer(prompt) } };
  });
  client.setRequestHandler('elicitation/create', async () => {
    seen.elicitations++;
    return { action: 'accept' as const, content: { name: 'Ada' } };
  });
  client.setNotificationHandler('notifications/message', (n) => void seen.logs.push({ level: n.params.level, data: n.params.data }));
  client.setNotificationHandler('notifications/resources/updated', (n) => void seen.updates.push(n.params.uri));
  await client.connect(transport);
  const modern = (): boolean => client.getProtocolEra() === 'modern';
  let logLevel: 'debug' | 'info' | 'warning' | 'error' | undefined;
  const subscriptions = new Map<string, McpSubscription>();
  const options = (): { timeout: number } => ({ timeout: CALL_TIMEOUT });
  // 2026-07-28 has no logging/setLevel: the level travels per request in the _meta envelope.
  // The 2.4 Client does not attach it on its own (RequestOptions has no logLevel), so the
  // request carries it in params._meta, which the client merges into the envelope.
  const meta = (): { _meta?: Record<string, unknown> } => (modern() && logLevel ? { _meta: { [LOG_LEVEL_META_KEY]: logLevel } } : {});
  return {
    major: 2,
    era: () => (modern() ? 'modern' : 'legacy'),
    protocolVersion: () => client.getNegotiatedProtocolVersion(),
    listTools: async () => (await client.listTools(undefined, options())).tools.map((t) => t.name),
    call: async (name, args = {}, o = {}) =>
      toResult(await client.callTool({ name, arguments: args, ...meta() }, { ...options(), ...(o.onprogress ? { onprogress: o.onprogress } : {}), ...(o.signal ? { signal: o.signal } : {}) })),
    listResources: async () => (await client.listResources(undefined, options())).resources.map((r) => r.uri),
    listTemplates: async () => (await client.listResourceTemplates(undefined, options())).resourceTemplates.map((t) => t.uriTemplate),
    read: async (uri) => String(((await client.readResource({ uri }, options())).contents[0] as { text?: string } | undefined)?.text ?? ''),
    completeResource: async (uri, name, value) => (await client.complete({ ref: { type: 'ref/resource', uri }, argument: { name, value } }, options())).completion.values,
    listPrompts: async () => (await client.listPrompts(undefined, options())).prompts.map((p) => p.name),
    prompt: async (name, args) => {
      const c = (await client.getPrompt({ name, arguments: args }, options())).messages[0]?.content;
      return c && c.type === 'text' ? c.text : '';
    },
    completePrompt: async (name, arg, value) => (await client.complete({ ref: { type: 'ref/prompt', name }, argument: { name: arg, value } }, options())).completion.values,
    subscribe: async (uri) => {
      if (!modern()) return void (await client.subscribeResource({ uri }, options()));
      const sub = await client.listen({ resourceSubscriptions: [uri] });
      expect(sub.honoredFilter.resourceSubscriptions).toEqual([uri]);
      subscriptions.set(uri, sub);
    },
    unsubscribe: async (uri) => {
      if (!modern()) return void (await client.unsubscribeResource({ uri }, options()));
      const sub = subscriptions.get(uri);
      subscriptions.delete(uri);
      await sub?.close();
      expect(await sub?.closed).toBe('local');
    },
    setLogLevel: async (level) => {
      if (modern()) logLevel = level;
      else await client.setLoggingLevel(level, options());
    },
    seen,
    close: () => client.close(),
  };
}

export { featureServer1 } from './feature-server1.js';

/** Reads the server's counters through its `stats` tool (works across processes). */
async function serverStats(d: Driver): Promise<FeatureStats> {
  return (await d.call('stats')).structured as unknown as FeatureStats;
}

async function pollStats(d: Driver, predicate: (s: FeatureStats) => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (predicate(await serverStats(d))) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface Feature {
  name: string;
  eras: readonly Era[];
  run(d: Driver): Promise<void>;
}

const BOTH: readonly Era[] = ['legacy', 'modern'];
const LARGE = 4 * 1024 * 1024;

/** Every MCP feature each era has, as checks over a Driver. */
export const FEATURES: readonly Feature[] = [
  {
    name: 'tools: list, call, structured content',
    eras: BOTH,
    run: async (d) => {
      expect(await d.listTools()).toEqual(expect.arrayContaining(['echo', 'add', 'whoami', 'big', 'slow', 'progress', 'sample', 'elicit', 'log', 'touch']));
      expect((await d.call('echo', { text: 'héllo ✓' })).text).toBe('héllo ✓');
      expect((await d.call('add', { a: 2, b: 3 })).structured).toEqual({ sum: 5 });
    },
  },
  {
    name: 'resources: list, read, templates, completion',
    eras: BOTH,
    run: async (d) => {
      expect(await d.listResources()).toEqual(expect.arrayContaining(['config://app', 'notes://alpha', 'notes://beta']));
      expect(await d.read('config://app')).toBe('{"mode":"secure"}');
      expect(await d.listTemplates()).toContain('notes://{id}');
      expect(await d.read('notes://gamma')).toBe('note gamma');
      expect(await d.completeResource('notes://{id}', 'id', 'g')).toEqual(['gamma']);
    },
  },
  {
    name: 'resource subscriptions and update notifications',
    eras: BOTH,
    run: async (d) => {
      await d.subscribe('config://app');
      expect((await d.call('touch', { uri: 'config://app' })).text).toBe('notified');
      await waitFor(() => d.seen.updates.length === 1, 10_000, 'resource update');
      expect(d.seen.updates).toEqual(['config://app']);
      await d.unsubscribe('config://app');
      await d.call('touch', { uri: 'config://app' });
      // The answer to a later request arrives after any update the touch caused.
      await d.call('echo', { text: 'barrier' });
      expect(d.seen.updates).toEqual(['config://app']);
    },
  },
  {
    name: 'prompts and prompt-argument completion',
    eras: BOTH,
    run: async (d) => {
      expect(await d.listPrompts()).toContain('greet');
      expect(await d.prompt('greet', { name: 'Ada' })).toBe('Hello, Ada!');
      expect(await d.completePrompt('greet', 'name', 'A')).toEqual(['Ada', 'Alan']);
    },
  },
  {
    name: 'logging: level filter',
    eras: BOTH,
    run: async (d) => {
      await d.setLogLevel('info');
      await d.call('log', { level: 'debug', text: 'hidden' });
      await d.call('log', { level: 'warning', text: 'shown' });
      await waitFor(() => d.seen.logs.length >= 1, 10_000, 'log message');
      await d.call('echo', { text: 'barrier' });
      expect(d.seen.logs).toEqual([{ level: 'warning', data: 'shown' }]);
    },
  },
  {
    name: 'progress notifications',
    eras: BOTH,
    run: async (d) => {
      const seen: number[] = [];
      expect((await d.call('progress', { steps: 5 }, { onprogress: (p) => void seen.push(p.progress) })).text).toBe('5 steps');
      expect(seen).toEqual([1, 2, 3, 4, 5]);
    },
  },
  {
    name: 'cancellation reaches the server handler',
    eras: BOTH,
    run: async (d) => {
      const before = await serverStats(d);
      const ac = new AbortController();
      const call = d.call('slow', { ms: 30_000 }, { signal: ac.signal });
      call.catch(() => {});
      await pollStats(d, (s) => s.handlerCalls > before.handlerCalls, 'the slow tool to start');
      ac.abort('user gave up');
      await expect(call).rejects.toThrow();
      await pollStats(d, (s) => s.cancelled === before.cancelled + 1, 'server-side cancellation');
    },
  },
  {
    name: 'sampling (2025: server -> client request; 2026-07-28: input_required round trip)',
    eras: BOTH,
    run: async (d) => {
      const before = d.seen.sampling.length;
      expect((await d.call('sample', { prompt: 'hi there' })).text).toBe('model said: HI THERE');
      expect(d.seen.sampling.slice(before)).toEqual(['hi there']);
    },
  },
  {
    name: 'elicitation (2025: server -> client request; 2026-07-28: input_required round trip)',
    eras: BOTH,
    run: async (d) => {
      const before = d.seen.elicitations;
      expect((await d.call('elicit')).text).toBe('accept:Ada');
      expect(d.seen.elicitations).toBe(before + 1);
    },
  },
  {
    name: 'a 4 MiB result and a 4 MiB argument',
    eras: BOTH,
    run: async (d) => {
      expect((await d.call('big', { bytes: LARGE })).text.length).toBe(LARGE);
      expect((await d.call('echo', { text: 'y'.repeat(LARGE) })).text.length).toBe(LARGE);
    },
  },
  {
    name: '100 requests in flight at once',
    eras: BOTH,
    run: async (d) => {
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) => d.call('echo', { text: `m${i}` })));
      expect(results.map((r) => r.text)).toEqual(Array.from({ length: 100 }, (_, i) => `m${i}`));
    },
  },
];

/** The server side of a pairing. 2.x serves through `serveStdio` where the era needs it. */
export type ServerKind = '1.x' | '2.x connect' | '2.x serveStdio';

export interface Pairing {
  name: string;
  client: Major;
  server: ServerKind;
  negotiation: Negotiation;
  /** The era the pairing must land on. */
  era: Era;
}

/** Every pairing of SDK majors and eras the SDKs support. */
export const PAIRINGS: readonly Pairing[] = [
  { name: '1.x client, 1.x server', client: 1, server: '1.x', negotiation: 'default', era: 'legacy' },
  { name: '2.x client, 2.x server, 2025-11-25', client: 2, server: '2.x connect', negotiation: 'default', era: 'legacy' },
  { name: '2.x client, 2.x server (serveStdio), 2025-11-25', client: 2, server: '2.x serveStdio', negotiation: 'default', era: 'legacy' },
  { name: '2.x client pinned to 2026-07-28, 2.x server (serveStdio)', client: 2, server: '2.x serveStdio', negotiation: 'pin-2026', era: 'modern' },
  { name: '1.x client, 2.x server', client: 1, server: '2.x connect', negotiation: 'default', era: 'legacy' },
  { name: '2.x client (auto: probes, falls back), 1.x server', client: 2, server: '1.x', negotiation: 'auto', era: 'legacy' },
];

