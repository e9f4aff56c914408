/**
 * No code at all: the MCP reference server (server-everything, a stdio process) behind
 * `pqmcp serve`, and an SDK Client whose StdioClientTransport runs `pqmcp connect`, exactly
 * as a desktop agent or IDE would launch a stdio MCP server. Three real processes plus the
 * per-session child; every hop but the WebSocket is stdio.
 *
 * The client initializes, lists and calls every tool (sampling, elicitation, roots,
 * progress, logging, subscriptions and the task-based tools included), reads resources and
 * templates, and gets every prompt. Then an untrusted agent and a wrong --expect are
 * refused with a clear message and a non-zero exit.
 */
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import { CLI_ARGS, CLI_COMMAND, CliProcess, EVERYTHING, ROOT, killAll, startGateway, tempDir, writeAgent, writeIssuer, writeTrust } from './helpers.js';
import type { Files } from './helpers.js';
import { EVERYTHING_ROOT, EXPECTED_TOOLS, allText, everythingClient, newClientSeen } from '../helpers/everything.js';
import type { JsonSchema } from '../helpers/everything.js';
import { waitFor } from '../helpers/mcp.js';

const SERVER_ID = 'agent://cli-test/gateway';
const CLIENT_ID = 'agent://cli-test/desktop';
const CALL = { timeout: 20_000 };

const tmp = tempDir('everything');
let gateway: CliProcess;
let url: string;
let trustFile: string;
let client: Client;
let transport: StdioClientTransport;
let bridgeStderr = '';
let tools = new Map<string, Tool>();
const seen = newClientSeen();
let clientFiles: Files;
let rogueFiles: Files;

function bridgeArgs(files: Files, expect = SERVER_ID): string[] {
  return [...CLI_ARGS, 'connect', url, '--identity', files.key, '--trust', trustFile, '--expect', expect];
}

beforeAll(async () => {
  const issuer = writeIssuer(tmp.dir, 'issuer://cli-test', 'issuer');
  const rogue = writeIssuer(tmp.dir, 'issuer://rogue', 'rogue-issuer');
  const server = writeAgent(tmp.dir, issuer, SERVER_ID, 'gateway');
  clientFiles = writeAgent(tmp.dir, issuer, CLIENT_ID, 'desktop', { scopes: ['tools:call'] });
  rogueFiles = writeAgent(tmp.dir, rogue, 'agent://rogue/desktop', 'rogue');
  trustFile = writeTrust(`${tmp.dir}/trust.json`, issuer);
  ({ gateway, url } = await startGateway(['--identity', server.key, '--trust', trustFile], [process.execPath, EVERYTHING, 'stdio']));

  ({ client } = everythingClient('desktop-agent', seen));

  transport = new StdioClientTransport({ command: CLI_COMMAND, args: bridgeArgs(clientFiles), cwd: ROOT, stderr: 'pipe' });
  transport.stderr?.on('data', (d: Buffer) => (bridgeStderr += d.toString('utf8')));
  await client.connect(transport);
  await waitFor(() => seen.toolListChanged > 0, 10_000, 'tools/list_changed after initialized');
  await client.setLoggingLevel('debug');
  tools = new Map((await client.listTools()).tools.map((t) => [t.name, t]));
});

afterAll(async () => {
  await client?.close().catch(() => {});
  await gateway?.stop();
  killAll();
  tmp.remove();
});

async function call(name: string, args: Record<string, unknown> = {}, onprogress?: (p: { progress: number; total?: number }) => void): Promise<CallToolResult> {
  expect(tools.has(name), `${name} is listed`).toBe(true);
  const result = (await client.callTool({ name, arguments: args }, undefined, { ...CALL, ...(onprogress ? { onprogress } : {}) })) as CallToolResult;
  expect(result.isError ?? false, `${name}: ${allText(result)}`).toBe(false);
  return result;
}

describe('server-everything behind pqmcp serve, reached through pqmcp connect', () => {
  it('initializes: the real server answers through gateway and bridge; both logs name the verified peers', async () => {
    expect(client.getServerVersion()).toMatchObject({ name: 'mcp-servers/everything' });
    expect(client.getServerCapabilities()).toMatchObject({ tools: { listChanged: true }, prompts: {}, resources: { subscribe: true }, logging: {} });
    expect(bridgeStderr).toMatch(new RegExp(`pqmcp connect: connected to ${SERVER_ID} \\(key [0-9a-f]{16}, issuer issuer://cli-test\\)`));
    const start = await gateway.waitForStderr(/session ([0-9a-f]{8}) started: (\S+) \(key ([0-9a-f]{16}), issuer issuer:\/\/cli-test, scopes tools:call\) from 127\.0\.0\.1; MCP server pid (\d+)/);
    expect(start[2]).toBe(CLIENT_ID);
    expect(clientFiles.fingerprint.startsWith(start[3]!)).toBe(true);
  });

  it('lists every tool, including those registered after initialized', () => {
    expect([...tools.keys()].sort()).toEqual([...EXPECTED_TOOLS].sort());
  });

  it('calls the plain tools', async () => {
    expect(allText(await call('echo', { message: 'héllo through two stdio hops ✓' }))).toBe('Echo: héllo through two stdio hops ✓');
    expect(allText(await call('get-sum', { a: 19, b: 23.5 }))).toBe('The sum of 19 and 23.5 is 42.5.');
    const annotated = await call('get-annotated-message', { messageType: 'debug', includeImage: true });
    expect(annotated.content[1]).toMatchObject({ type: 'image', mimeType: 'image/png' });
    const image = (await call('get-tiny-image')).content.find((c) => c.type === 'image');
    expect(image?.type === 'image' && Buffer.from(image.data, 'base64').subarray(1, 4).toString()).toBe('PNG');
    const location = (tools.get('get-structured-content')?.inputSchema.properties?.['location'] as JsonSchema).enum![0];
    const structured = await call('get-structured-content', { location });
    expect(structured.structuredContent).toEqual({ temperature: expect.any(Number), conditions: expect.any(String), humidity: expect.any(Number) });
    const links = await call('get-resource-links', { count: 2 });
    expect(links.content.filter((c) => c.type === 'resource_link')).toHaveLength(2);
    const reference = await call('get-resource-reference', { resourceType: 'Text', resourceId: 2 });
    expect(reference.content[1]).toMatchObject({ type: 'resource', resource: { uri: 'demo://resource/dynamic/text/2' } });
  });

  it('the per-session child sees the verified agent in its environment (get-env)', async () => {
    const env = JSON.parse(allText(await call('get-env'))) as Record<string, string>;
    expect(env['PQMCP_PEER_ID']).toBe(CLIENT_ID);
    expect(env['PQMCP_PEER_FINGERPRINT']).toBe(clientFiles.fingerprint);
    expect(env['PQMCP_PEER_ISSUER']).toBe('issuer://cli-test');
    expect(env['PQMCP_PEER_SCOPES']).toBe('tools:call');
  });

  it('gzip-file-as-resource: a session resource, read back', async () => {
    const payload = `pqmcp ${'post-quantum '.repeat(100)}`;
    const data = `data:text/plain;base64,${Buffer.from(payload).toString('base64')}`;
    const linked = await call('gzip-file-as-resource', { name: 'bridge.txt.gz', data, outputType: 'resourceLink' });
    const link = linked.content[0];
    expect(link).toMatchObject({ type: 'resource_link', uri: 'demo://resource/session/bridge.txt.gz' });
    const read = await client.readResource({ uri: link?.type === 'resource_link' ? link.uri : '' });
    const contents = read.contents[0];
    expect(gunzipSync(Buffer.from(contents && 'blob' in contents ? contents.blob : '', 'base64')).toString()).toBe(payload);
  });

  it('progress notifications reach the caller (trigger-long-running-operation)', async () => {
    const progress: number[] = [];
    const result = await call('trigger-long-running-operation', { duration: 0.2, steps: 4 }, (p) => progress.push(p.progress));
    expect(allText(result)).toBe('Long running operation completed. Duration: 0.2 seconds, Steps: 4.');
    // The SDK's stdio client handles a notification a microtask after the response read in
    // the same chunk, so the last progress often loses the race to the result. The same
    // happens with server-everything launched directly over stdio, without pqmcp.
    expect(progress.slice(0, 3)).toEqual([1, 2, 3]);
    expect(progress.length).toBeLessThanOrEqual(4);
  });

  it('logging and resource subscriptions (toggle-simulated-logging, toggle-subscriber-updates)', async () => {
    expect(allText(await call('toggle-simulated-logging'))).toContain('Started simulated, random-leveled logging');
    await waitFor(() => seen.logs.some((l) => /level[- ]message/i.test(l)), 10_000, 'a simulated log message');
    expect(allText(await call('toggle-simulated-logging'))).toContain('Stopped simulated logging');
    const uri = 'demo://resource/dynamic/text/5';
    await client.subscribeResource({ uri });
    expect(allText(await call('toggle-subscriber-updates'))).toContain('Started simulated resource updated notifications');
    await waitFor(() => seen.updates.includes(uri), 10_000, 'notifications/resources/updated');
    expect(allText(await call('toggle-subscriber-updates'))).toContain('Stopped simulated resource updates');
    await client.unsubscribeResource({ uri });
  });

  it('server -> client requests: roots, sampling, form and URL elicitation', async () => {
    expect(allText(await call('get-roots-list'))).toContain(`URI: ${EVERYTHING_ROOT.uri}`);
    expect(seen.rootsRequests).toBeGreaterThan(0);
    const sampled = allText(await call('trigger-sampling-request', { prompt: 'one line on X-Wing', maxTokens: 20 }));
    expect(sampled).toContain('model heard: Resource trigger-sampling-request context: one line on X-Wing');
    const elicited = allText(await call('trigger-elicitation-request'));
    expect(elicited).toContain('✅ User provided the requested information!');
    expect(elicited).toContain('- Name: Ada Lovelace');
    const consent = 'https://example.com/consent/bridge';
    expect(allText(await call('trigger-url-elicitation', { url: consent }))).toContain('✅ User completed the URL elicitation flow.');
    expect(seen.elicitUrl).toContain(consent);
  });

  it('task-based tools: async sampling and elicitation, and simulate-research-query', async () => {
    expect(allText(await call('trigger-sampling-request-async', { prompt: 'async over PQ', maxTokens: 20 }))).toContain('[COMPLETED] Async sampling completed!');
    expect(seen.samplingTasks).toBe(1);
    expect(allText(await call('trigger-elicitation-request-async'))).toContain('[COMPLETED] User provided the requested information!');
    expect(seen.elicitTasks).toBe(1);
    const statuses: string[] = [];
    let report = '';
    for await (const message of client.experimental.tasks.callToolStream({ name: 'simulate-research-query', arguments: { topic: 'python', ambiguous: true } }, undefined, { task: { ttl: 60_000 }, ...CALL })) {
      if (message.type === 'taskStatus') statuses.push(message.task.status);
      else if (message.type === 'result') report = allText(message.result as CallToolResult);
      else if (message.type === 'error') throw message.error;
    }
    expect(statuses).toContain('input_required');
    expect(report).toContain('# Research Report: python');
  });

  it('reads resources and templates, gets every prompt', async () => {
    const { resources } = await client.listResources();
    expect(resources.length).toBeGreaterThan(0);
    for (const r of resources.slice(0, 4)) expect((await client.readResource({ uri: r.uri })).contents[0]?.uri).toBe(r.uri);
    const { resourceTemplates } = await client.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate)).toContain('demo://resource/dynamic/text/{resourceId}');
    expect((await client.readResource({ uri: 'demo://resource/dynamic/blob/3' })).contents[0]).toMatchObject({ uri: 'demo://resource/dynamic/blob/3', blob: expect.any(String) });

    const args: Record<string, Record<string, string>> = {
      'simple-prompt': {},
      'args-prompt': { city: 'Paris', state: 'Texas' },
      'completable-prompt': { department: 'Engineering', name: 'Alice' },
      'resource-prompt': { resourceType: 'Text', resourceId: '1' },
    };
    const { prompts } = await client.listPrompts();
    expect(prompts.map((p) => p.name).sort()).toEqual(Object.keys(args).sort());
    for (const p of prompts) {
      const got = await client.getPrompt({ name: p.name, arguments: args[p.name]! });
      expect(got.messages.length, p.name).toBeGreaterThan(0);
    }
    expect((await client.getPrompt({ name: 'args-prompt', arguments: args['args-prompt']! })).messages[0]?.content).toEqual({ type: 'text', text: "What's weather in Paris, Texas?" });
    const completion = await client.complete({ ref: { type: 'ref/prompt', name: 'completable-prompt' }, argument: { name: 'department', value: 'Eng' } });
    expect(completion.completion.values).toContain('Engineering');
  });

  it('an untrusted agent is refused: clear message on stderr, an error for its initialize, exit 1', async () => {
    const bridge = new CliProcess(['connect', url, '--identity', rogueFiles.key, '--trust', trustFile, '--expect', SERVER_ID]);
    bridge.write({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'rogue', version: '1' } } });
    expect(await bridge.exited).toBe(1);
    const lines = bridge.stderr.trim().split('\n');
    expect(lines.at(-1)).toBe(
      "pqmcp: the server refused this agent: peer aborted the session with alert 48 (unknownIssuer): the server does not trust the issuer of this agent's credential; its operator adds that issuer to its trust file (pqmcp trust add-issuer), or this agent gets a credential from an issuer the server trusts (ERR_PEER_ALERT)",
    );
    expect(bridge.stderr).not.toMatch(/\n\s+at /);
    expect(bridge.messages()).toEqual([{ jsonrpc: '2.0', id: 1, error: { code: -32000, message: lines.at(-1) } }]);
    await gateway.waitForStderr(/connection from 127\.0\.0\.1 failed: issuer "issuer:\/\/rogue" is not trusted \(ERR_UNTRUSTED_ISSUER\)/);
  });

  it('an SDK client using the untrusted identity sees the reason in connect()', async () => {
    const rogueClient = new Client({ name: 'rogue', version: '1.0.0' });
    const rogueTransport = new StdioClientTransport({ command: CLI_COMMAND, args: bridgeArgs(rogueFiles), cwd: ROOT, stderr: 'pipe' });
    await expect(rogueClient.connect(rogueTransport)).rejects.toThrow(/the server refused this agent: .*unknownIssuer/);
    await rogueClient.close().catch(() => {});
  });

  it('a server that is not the expected agent is refused by the bridge', async () => {
    const bridge = new CliProcess(['connect', url, '--identity', clientFiles.key, '--trust', trustFile, '--expect', 'agent://cli-test/somebody-else']);
    expect(await bridge.exited).toBe(1);
    expect(bridge.stderr.trim().split('\n').at(-1)).toBe(
      `pqmcp: the server's identity was refused: expected peer "agent://cli-test/somebody-else" but it presented "${SERVER_ID}" (ERR_UNEXPECTED_PEER)`,
    );
    expect(bridge.stdout).toBe('');
  });

  it('closing the client ends the bridge cleanly and the gateway logs the session end with message counts', async () => {
    await client.close();
    const end = await gateway.waitForStderr(new RegExp(`session [0-9a-f]{8} ended: ${CLIENT_ID}, (\\d+) messages in, (\\d+) out, [^;]+; client closed the session`));
    expect(Number(end[1])).toBeGreaterThan(30);
    expect(Number(end[2])).toBeGreaterThan(30);
    // The gateway keeps serving after all that.
    expect(gateway.child.exitCode).toBeNull();
  });
});
