/**
 * The MCP reference server, `@modelcontextprotocol/server-everything`, behind pqmcp: a real
 * SDK Client over PqmcpClientTransport on 127.0.0.1 calls every tool the server lists (with
 * arguments checked against the tool's runtime inputSchema), reads its resources and
 * templates, gets every prompt and asks for completions, on each crypto backend pair:
 * noble and native on both sides, and mixed both ways.
 *
 * The client offers everything the server can use: sampling, form and URL elicitation, roots,
 * and task-augmented sampling/elicitation (with a task store), so all of the server's
 * conditional tools appear. They are registered only after `notifications/initialized`, so
 * the client waits for `notifications/tools/list_changed` before listing.
 *
 * Per pair the tool calls run concurrently on one session (many requests in flight); the
 * slowest is simulate-research-query (four 1 s stages by design), so a pair takes ~5-6 s,
 * most of it waiting on the server's timers. The four pairs run side by side (concurrent
 * suites: each its own listener, session and server-everything instance, whose per-session
 * state is keyed by session id), so the file takes about one pair's time, not four; within
 * a pair the other tests run in order (it.sequential), before and after the tool calls.
 */
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import type { CallToolResult, Prompt, Tool } from '@modelcontextprotocol/sdk/types.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import { createServer } from '@modelcontextprotocol/server-everything/dist/server/index.js';
import { PqmcpClientTransport } from '../../src/transport/index.js';
import type { PqmcpServerTransport } from '../../src/transport/index.js';
import type { BackendName } from '../../src/crypto/types.js';
import { agent, trustFor } from '../helpers/identities.js';
import { Cleanup, SERVER_ID, startServer, waitFor } from '../helpers/mcp.js';
import { EVERYTHING_ROOT, EXPECTED_TOOLS, SAMPLING_MODEL, allText, everythingClient, newClientSeen, sampleObject, texts } from '../helpers/everything.js';
import type { ClientSeen, JsonSchema, ToolName } from '../helpers/everything.js';

const CLIENT_ID = 'agent://pqmcp-test/everything-client';
const CALL_TIMEOUT_MS = 20_000;



/** Everything one connected client saw, for assertions. */
interface Harness extends ClientSeen {
  label: string;
  client: Client;
  transport: PqmcpClientTransport;
  serverTransport: PqmcpServerTransport;
  tools: Map<string, Tool>;
  prompts: Prompt[];
}

type Content = CallToolResult['content'][number];

const validator = new AjvJsonSchemaValidator();

/** Fails unless `args` is valid for the tool's inputSchema as the server listed it. */
function expectValidArgs(tool: Tool, args: Record<string, unknown>): void {
  const result = validator.getValidator(tool.inputSchema as never)(args);
  expect(result.valid, `${tool.name} arguments ${JSON.stringify(args)}: ${result.errorMessage ?? ''}`).toBe(true);
  const known = Object.keys(tool.inputSchema.properties ?? {});
  for (const key of Object.keys(args)) expect(known, `${tool.name}: unknown argument ${key}`).toContain(key);
}



function decode64(b64: string): Buffer {
  return Buffer.from(b64, 'base64');
}

async function connect(cleanup: Cleanup, clientBackend: BackendName, serverBackend: BackendName): Promise<Harness> {
  const serverTransports: PqmcpServerTransport[] = [];
  const server = await startServer(
    cleanup,
    (peer, transport) => {
      expect(peer.agentId).toBe(CLIENT_ID);
      const everything = createServer();
      serverTransports.push(transport);
      // Stops the simulated logging/update intervals and the task store's timers.
      void transport.closed.then(() => everything.cleanup(transport.sessionId));
      return everything.server;
    },
    { backend: serverBackend },
  );

  const seen = newClientSeen();
  const { client, taskStore } = everythingClient('pqmcp-everything-client', seen);
  cleanup.add(() => taskStore.cleanup());
  const transport = new PqmcpClientTransport(server.url, { identity: agent(CLIENT_ID), trust: trustFor(), expectedServerId: SERVER_ID, backend: clientBackend });
  // One object: the client's handlers record into `seen`, the tests read it through `h`.
  const h: Harness = Object.assign(seen, {
    label: `${clientBackend} client, ${serverBackend} server`,
    client,
    transport,
    serverTransport: undefined as unknown as PqmcpServerTransport,
    tools: new Map<string, Tool>(),
    prompts: [] as Prompt[],
  });


  cleanup.add(() => client.close());
  await client.connect(transport);
  await waitFor(() => serverTransports.length === 1, 5_000, 'the server session');
  h.serverTransport = serverTransports[0]!;
  // The conditional tools are registered in the server's oninitialized; each one announces itself.
  await waitFor(() => h.toolListChanged > 0, 5_000, 'tools/list_changed after initialized');
  await client.setLoggingLevel('debug');
  const { tools } = await client.listTools();
  for (const tool of tools) h.tools.set(tool.name, tool);
  h.prompts = (await client.listPrompts()).prompts;
  return h;
}

/** Call a tool with arguments valid for its listed inputSchema; asserts a non-error result with content. */
async function call(h: Harness, name: string, args: Record<string, unknown> = {}, onprogress?: (p: { progress: number; total?: number }) => void): Promise<CallToolResult> {
  const tool = h.tools.get(name);
  if (!tool) throw new Error(`${name} is not listed by the server`);
  expectValidArgs(tool, args);
  const result = (await h.client.callTool({ name, arguments: args }, undefined, { timeout: CALL_TIMEOUT_MS, ...(onprogress ? { onprogress } : {}) })) as CallToolResult;
  expect(result.isError ?? false, `${name}: ${allText(result)}`).toBe(false);
  expect(result.content.length, `${name} returned content`).toBeGreaterThan(0);
  return result;
}

function enumOf(h: Harness, tool: string, property: string): unknown[] {
  const values = (h.tools.get(tool)?.inputSchema.properties?.[property] as JsonSchema | undefined)?.enum;
  expect(values?.length, `${tool}.${property} enum`).toBeGreaterThan(0);
  return values!;
}

/** What each tool call asserts. Every case checks the concrete result, not just "no throw". */
const CASES: Record<ToolName, (h: Harness) => Promise<void>> = {
  async echo(h) {
    const result = await call(h, 'echo', { message: 'héllo over ML-KEM ✓' });
    expect(texts(result)).toEqual(['Echo: héllo over ML-KEM ✓']);
  },

  async 'get-annotated-message'(h) {
    const expected: Record<string, string> = { error: 'Error: Operation failed', success: 'Operation completed successfully', debug: 'Debug: Cache hit ratio' };
    for (const messageType of enumOf(h, 'get-annotated-message', 'messageType')) {
      const result = await call(h, 'get-annotated-message', { messageType, includeImage: messageType === 'debug' });
      const [first, second] = result.content;
      expect(first).toMatchObject({ type: 'text', annotations: { priority: expect.any(Number), audience: expect.any(Array) } });
      expect(first?.type === 'text' && first.text).toContain(expected[String(messageType)]);
      if (messageType === 'debug') expect(second).toMatchObject({ type: 'image', mimeType: 'image/png', annotations: { audience: ['user'] } });
      else expect(second).toBeUndefined();
    }
  },

  async 'get-env'(h) {
    const env = JSON.parse(allText(await call(h, 'get-env'))) as Record<string, string>;
    expect(env['PATH']).toBe(process.env['PATH']);
  },

  async 'get-resource-links'(h) {
    const result = await call(h, 'get-resource-links', { count: 4 });
    expect(result.content).toHaveLength(5);
    expect(result.content[0]).toMatchObject({ type: 'text', text: expect.stringContaining('4 resource links') });
    const links = result.content.slice(1);
    expect(links.map((l) => l.type)).toEqual(['resource_link', 'resource_link', 'resource_link', 'resource_link']);
    for (const link of links) {
      if (link.type !== 'resource_link') continue;
      expect(link.uri).toMatch(/^demo:\/\/resource\/dynamic\/(text|blob)\/[1-4]$/);
      // The links resolve through the server's resource templates.
      const read = await h.client.readResource({ uri: link.uri });
      expect(read.contents[0]?.uri).toBe(link.uri);
    }
  },

  async 'get-resource-reference'(h) {
    const text = await call(h, 'get-resource-reference', { resourceType: 'Text', resourceId: 2 });
    expect(text.content[1]).toMatchObject({ type: 'resource', resource: { uri: 'demo://resource/dynamic/text/2', mimeType: 'text/plain', text: expect.stringContaining('Resource 2: This is a plaintext resource') } });
    const blob = await call(h, 'get-resource-reference', { resourceType: 'Blob', resourceId: 3 });
    const embedded = blob.content[1];
    expect(embedded).toMatchObject({ type: 'resource', resource: { uri: 'demo://resource/dynamic/blob/3' } });
    const resource = embedded?.type === 'resource' ? embedded.resource : undefined;
    expect(resource && 'blob' in resource && decode64(resource.blob).toString()).toContain('Resource 3: This is a base64 blob');
  },

  async 'get-structured-content'(h) {
    for (const location of enumOf(h, 'get-structured-content', 'location')) {
      const result = await call(h, 'get-structured-content', { location });
      // The SDK client has already validated structuredContent against the tool's outputSchema.
      expect(result.structuredContent).toEqual({ temperature: expect.any(Number), conditions: expect.any(String), humidity: expect.any(Number) });
      expect(JSON.parse(allText(result))).toEqual(result.structuredContent);
    }
  },

  async 'get-sum'(h) {
    expect(allText(await call(h, 'get-sum', { a: 19, b: 23.5 }))).toBe('The sum of 19 and 23.5 is 42.5.');
  },

  async 'get-tiny-image'(h) {
    const result = await call(h, 'get-tiny-image');
    const image = result.content.find((c) => c.type === 'image');
    expect(image).toMatchObject({ type: 'image', mimeType: 'image/png' });
    const png = decode64(image?.type === 'image' ? image.data : '');
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  },

  async 'gzip-file-as-resource'(h) {
    // A data: URI, so the test needs no network (the tool's default fetches from GitHub).
    const payload = `pqmcp ${h.label}: ${'post-quantum '.repeat(200)}`;
    const data = `data:text/plain;base64,${Buffer.from(payload).toString('base64')}`;
    const tag = h.label.replace(/[^a-z]+/g, '-');
    const inline = await call(h, 'gzip-file-as-resource', { name: `${tag}-inline.txt.gz`, data, outputType: 'resource' });
    const embedded = inline.content[0];
    const resource = embedded?.type === 'resource' ? embedded.resource : undefined;
    expect(resource).toMatchObject({ uri: `demo://resource/session/${tag}-inline.txt.gz`, mimeType: 'application/gzip' });
    expect(gunzipSync(decode64(resource && 'blob' in resource ? resource.blob : '')).toString()).toBe(payload);

    const linked = await call(h, 'gzip-file-as-resource', { name: `${tag}-link.txt.gz`, data, outputType: 'resourceLink' });
    const link = linked.content[0];
    expect(link).toMatchObject({ type: 'resource_link', uri: `demo://resource/session/${tag}-link.txt.gz` });
    // The tool registered a session resource; read it back over the same session.
    const read = await h.client.readResource({ uri: link?.type === 'resource_link' ? link.uri : '' });
    const contents = read.contents[0];
    expect(gunzipSync(decode64(contents && 'blob' in contents ? contents.blob : '')).toString()).toBe(payload);
  },

  async 'toggle-simulated-logging'(h) {
    const sid = h.transport.sessionId!;
    const on = allText(await call(h, 'toggle-simulated-logging'));
    // extra.sessionId on the server is the pqmcp session id, the same on both sides.
    expect(on).toContain(`Started simulated, random-leveled logging for session ${sid}`);
    await waitFor(() => h.logs.some((l) => /level[- ]message - SessionId /i.test(l) && l.endsWith(sid)), 5_000, 'a simulated log message');
    expect(allText(await call(h, 'toggle-simulated-logging'))).toBe(`Stopped simulated logging for session ${sid}`);
  },

  async 'toggle-subscriber-updates'(h) {
    const uri = 'demo://resource/dynamic/text/5';
    await h.client.subscribeResource({ uri });
    await waitFor(() => h.logs.some((l) => l.includes(`Received Subscribe Resource request for URI: ${uri}`)), 5_000, 'the subscribe log');
    expect(allText(await call(h, 'toggle-subscriber-updates'))).toContain('Started simulated resource updated notifications');
    await waitFor(() => h.updates.includes(uri), 5_000, 'notifications/resources/updated');
    expect(allText(await call(h, 'toggle-subscriber-updates'))).toContain('Stopped simulated resource updates');
    await h.client.unsubscribeResource({ uri });
  },

  async 'trigger-long-running-operation'(h) {
    const progress: Array<{ progress: number; total?: number }> = [];
    const result = await call(h, 'trigger-long-running-operation', { duration: 0.2, steps: 4 }, (p) => progress.push(p));
    expect(allText(result)).toBe('Long running operation completed. Duration: 0.2 seconds, Steps: 4.');
    expect(progress.map((p) => [p.progress, p.total])).toEqual([
      [1, 4],
      [2, 4],
      [3, 4],
      [4, 4],
    ]);
  },

  async 'get-roots-list'(h) {
    const text = allText(await call(h, 'get-roots-list'));
    expect(text).toContain('Current MCP Roots (1 total)');
    expect(text).toContain(`URI: ${EVERYTHING_ROOT.uri}`);
    expect(h.rootsRequests).toBeGreaterThan(0);
  },

  async 'trigger-elicitation-request'(h) {
    const before = h.elicitForm.length;
    const text = allText(await call(h, 'trigger-elicitation-request'));
    expect(h.elicitForm.length).toBeGreaterThan(before);
    expect(text).toContain('✅ User provided the requested information!');
    expect(text).toContain('- Name: Ada Lovelace');
    expect(text).toContain('- Email: ada@example.com');
    expect(text).toContain('- Agreed to terms: true');
  },

  async 'trigger-url-elicitation'(h) {
    const url = `https://example.com/consent/${h.transport.sessionId!.slice(0, 8)}`;
    const text = allText(await call(h, 'trigger-url-elicitation', { url }));
    expect(text).toContain('✅ User completed the URL elicitation flow.');
    expect(h.elicitUrl).toContain(url);

    // The error path: -32042 (URL elicitation required) as a JSON-RPC error, then a retry
    // with the same arguments goes through the request path.
    const args = { url: `${url}/error-path`, errorPath: true };
    expectValidArgs(h.tools.get('trigger-url-elicitation')!, args);
    const error = await h.client.callTool({ name: 'trigger-url-elicitation', arguments: args }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(McpError);
    expect((error as McpError).code).toBe(ErrorCode.UrlElicitationRequired);
    expect((error as McpError).data).toMatchObject({ elicitations: [{ mode: 'url', url: expect.stringMatching(/^https:\/\//) }] });
    expect(allText(await call(h, 'trigger-url-elicitation', args))).toContain('✅ User completed the URL elicitation flow.');
    expect(h.elicitUrl).toContain(args.url);
  },

  async 'trigger-sampling-request'(h) {
    const text = allText(await call(h, 'trigger-sampling-request', { prompt: 'one line on X-Wing', maxTokens: 20 }));
    expect(h.sampling).toContain('Resource trigger-sampling-request context: one line on X-Wing');
    expect(text).toContain('LLM sampling result');
    expect(text).toContain('model heard: Resource trigger-sampling-request context: one line on X-Wing');
    expect(text).toContain(SAMPLING_MODEL);
  },

  async 'simulate-research-query'(h) {
    // taskSupport 'required': a plain tools/call is refused...
    await expect(h.client.callTool({ name: 'simulate-research-query', arguments: { topic: 'python' } })).rejects.toThrow(/task/);
    // ...and the task flow works: create, poll, input_required -> elicitation via tasks/result, result.
    const args = { topic: 'python', ambiguous: true };
    expectValidArgs(h.tools.get('simulate-research-query')!, args);
    const seen: string[] = [];
    let report = '';
    for await (const message of h.client.experimental.tasks.callToolStream({ name: 'simulate-research-query', arguments: args }, undefined, { task: { ttl: 60_000 }, timeout: CALL_TIMEOUT_MS })) {
      if (message.type === 'taskCreated') seen.push('created');
      else if (message.type === 'taskStatus') seen.push(message.task.status);
      else if (message.type === 'result') report = allText(message.result as CallToolResult);
      else throw message.error;
    }
    expect(seen[0]).toBe('created');
    expect(seen).toContain('input_required');
    expect(h.elicitRelatedTask).toBeGreaterThan(0);
    // The elicitation answer picked the first interpretation the server offered for "python".
    expect(report).toContain('# Research Report: python (programming)');
  },

  async 'trigger-sampling-request-async'(h) {
    const before = h.samplingTasks;
    const text = allText(await call(h, 'trigger-sampling-request-async', { prompt: 'async over PQ', maxTokens: 20 }));
    expect(h.samplingTasks).toBe(before + 1);
    expect(text).toContain('[COMPLETED] Async sampling completed!');
    expect(text).toContain('model heard: Resource trigger-sampling-request-async context: async over PQ');
  },

  async 'trigger-elicitation-request-async'(h) {
    const before = h.elicitTasks;
    const text = allText(await call(h, 'trigger-elicitation-request-async'));
    expect(h.elicitTasks).toBe(before + 1);
    expect(text).toContain('[COMPLETED] User provided the requested information!');
    expect(text).toContain('- Name: Ada Lovelace');
    expect(text).toContain('- Favorite Color: Red');
  },
};

/** Arguments for each prompt; checked against the prompt's listed arguments. */
const PROMPT_CASES: Record<string, { args: Record<string, string>; expect: (messages: Array<{ role: string; content: Content }>) => void }> = {
  'simple-prompt': {
    args: {},
    expect: (m) => expect(m).toEqual([{ role: 'user', content: { type: 'text', text: 'This is a simple prompt without arguments.' } }]),
  },
  'args-prompt': {
    args: { city: 'Paris', state: 'Texas' },
    expect: (m) => expect(m[0]?.content).toEqual({ type: 'text', text: "What's weather in Paris, Texas?" }),
  },
  'completable-prompt': {
    args: { department: 'Engineering', name: 'Alice' },
    expect: (m) => expect(m[0]?.content).toEqual({ type: 'text', text: 'Please promote Alice to the head of the Engineering team.' }),
  },
  'resource-prompt': {
    args: { resourceType: 'Blob', resourceId: '4' },
    expect: (m) => {
      expect(m).toHaveLength(2);
      expect(m[1]?.content).toMatchObject({ type: 'resource', resource: { uri: 'demo://resource/dynamic/blob/4', blob: expect.any(String) } });
    },
  },
};

const PAIRS: Array<[client: BackendName, server: BackendName]> = [
  ['native', 'native'],
  ['noble', 'noble'],
  ['noble', 'native'],
  ['native', 'noble'],
];

describe.each(PAIRS)('server-everything over pqmcp: %s client, %s server', { concurrent: true }, (clientBackend, serverBackend) => {
  const cleanup = new Cleanup();
  let h: Harness;

  beforeAll(async () => {
    h = await connect(cleanup, clientBackend, serverBackend);
  });
  afterAll(() => cleanup.run());

  it.sequential('initializes: server info, instructions, capabilities, verified identities and backends on both sides', () => {
    expect(h.client.getServerVersion()).toMatchObject({ name: 'mcp-servers/everything' });
    expect(h.client.getInstructions()?.length).toBeGreaterThan(100);
    expect(h.client.getServerCapabilities()).toMatchObject({ tools: { listChanged: true }, prompts: { listChanged: true }, resources: { subscribe: true, listChanged: true }, logging: {}, completions: {} });
    expect(h.transport.peer?.agentId).toBe(SERVER_ID);
    expect(h.transport.backend).toBe(clientBackend);
    expect(h.serverTransport.backend).toBe(serverBackend);
    expect(h.serverTransport.authInfo).toMatchObject({ clientId: CLIENT_ID, scopes: ['resources:read', 'tools:call'], extra: { backend: serverBackend, protocol: 'PQMCP/1' } });
    expect(h.serverTransport.sessionId).toBe(h.transport.sessionId);
  });

  it.sequential('lists every expected tool, including those registered after initialized', () => {
    expect([...h.tools.keys()].sort()).toEqual(expect.arrayContaining([...EXPECTED_TOOLS].sort()));
    expect(h.tools.get('simulate-research-query')?.execution?.taskSupport).toBe('required');
  });

  it.concurrent.each([...EXPECTED_TOOLS])('tool %s', async (name) => {
    await CASES[name](h);
  });

  it.sequential('calls any tool the server lists beyond the known ones with schema-derived arguments', async () => {
    const unknown = [...h.tools.values()].filter((t) => !(EXPECTED_TOOLS as readonly string[]).includes(t.name));
    for (const tool of unknown) {
      const args = sampleObject(tool.inputSchema as JsonSchema, true);
      const result = (await h.client.callTool({ name: tool.name, arguments: args }, undefined, { timeout: CALL_TIMEOUT_MS })) as CallToolResult;
      expect(result.content.length, tool.name).toBeGreaterThan(0);
    }
  });

  it.sequential('resources: lists and reads every static resource, templates, and refuses an unknown id', async () => {
    const { resources } = await h.client.listResources();
    const docs = resources.filter((r) => r.uri.startsWith('demo://resource/static/document/'));
    expect(docs.map((r) => r.name)).toEqual(expect.arrayContaining(['architecture.md', 'features.md', 'instructions.md']));
    for (const doc of docs) {
      const { contents } = await h.client.readResource({ uri: doc.uri });
      expect(contents[0]).toMatchObject({ uri: doc.uri, mimeType: doc.mimeType });
      expect(contents[0] && 'text' in contents[0] ? contents[0].text.length : 0, doc.uri).toBeGreaterThan(0);
    }

    const { resourceTemplates } = await h.client.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate).sort()).toEqual(['demo://resource/dynamic/blob/{resourceId}', 'demo://resource/dynamic/text/{resourceId}']);
    const text = (await h.client.readResource({ uri: 'demo://resource/dynamic/text/11' })).contents[0];
    expect(text && 'text' in text ? text.text : '').toMatch(/^Resource 11: This is a plaintext resource created at /);
    const blob = (await h.client.readResource({ uri: 'demo://resource/dynamic/blob/12' })).contents[0];
    expect(decode64(blob && 'blob' in blob ? blob.blob : '').toString()).toMatch(/^Resource 12: This is a base64 blob created at /);
    // Expected error: the template handler refuses a non-positive id.
    await expect(h.client.readResource({ uri: 'demo://resource/dynamic/text/0' })).rejects.toThrow(/Unknown resource/);
  });

  it.sequential('prompts: gets every listed prompt with valid arguments', async () => {
    expect(h.prompts.map((p) => p.name).sort()).toEqual(Object.keys(PROMPT_CASES).sort());
    for (const prompt of h.prompts) {
      const c = PROMPT_CASES[prompt.name]!;
      const declared = (prompt.arguments ?? []).map((a) => a.name);
      for (const arg of prompt.arguments ?? []) if (arg.required) expect(c.args, `${prompt.name} needs ${arg.name}`).toHaveProperty(arg.name);
      for (const key of Object.keys(c.args)) expect(declared, `${prompt.name} declares ${key}`).toContain(key);
      const result = await h.client.getPrompt({ name: prompt.name, arguments: c.args });
      c.expect(result.messages as Array<{ role: string; content: Content }>);
    }
    await expect(h.client.getPrompt({ name: 'resource-prompt', arguments: { resourceType: 'Video', resourceId: '1' } })).rejects.toThrow(McpError);
  });

  it.sequential('completions: prompt arguments (with context) and resource template variables', async () => {
    const complete = async (ref: Parameters<Client['complete']>[0]['ref'], name: string, value: string, context?: Record<string, string>) =>
      (await h.client.complete({ ref, argument: { name, value }, ...(context ? { context: { arguments: context } } : {}) })).completion.values;
    const prompt = (name: string) => ({ type: 'ref/prompt' as const, name });
    expect(await complete(prompt('completable-prompt'), 'department', 'S')).toEqual(['Sales', 'Support']);
    expect(await complete(prompt('completable-prompt'), 'name', '', { department: 'Marketing' })).toEqual(['Grace', 'Henry', 'Iris']);
    expect(await complete(prompt('resource-prompt'), 'resourceType', 'B')).toEqual(['Blob']);
    expect(await complete(prompt('resource-prompt'), 'resourceId', '0')).toEqual([]);
    const template = { type: 'ref/resource' as const, uri: 'demo://resource/dynamic/text/{resourceId}' };
    expect(await complete(template, 'resourceId', '42')).toEqual(['42']);
  });

  it.sequential('the client answered the server: sampling, form/URL/task elicitation, roots', () => {
    // Order-independent: these ran in the concurrent tool tests above.
    expect(h.sampling.length).toBeGreaterThan(0);
    expect(h.samplingTasks).toBeGreaterThan(0);
    expect(h.elicitForm.length).toBeGreaterThan(0);
    expect(h.elicitUrl.length).toBeGreaterThan(1);
    expect(h.elicitTasks).toBeGreaterThan(0);
    expect(h.rootsRequests).toBeGreaterThan(0);
    expect(h.logs.some((l) => l === 'Roots updated: 1 root(s) received from client')).toBe(true);
  });
});
