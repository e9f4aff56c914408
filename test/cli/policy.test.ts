/**
 * `pqmcp serve --policy --quotas` with the MCP reference server (server-everything, a
 * stdio child) behind it and real SDK clients over pqmcp: each allow and deny path, the
 * filtered lists, sampling and elicitation gated per agent, a broken policy on SIGHUP
 * (refused, old one in force, sessions kept) then a good one (applied to the live session,
 * list_changed sent), quota exhaustion and recovery; and `pqmcp policy check|explain|schema`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { PqmcpClientTransport } from '../../src/transport/client.js';
import { loadIdentity, loadTrustStore } from '../../src/identity/files.js';
import { createNativeBackend } from '../../src/crypto/native.js';
import { EVERYTHING, cli, cliInProcess, killAll, startGateway, tempDir, writeAgent, writeIssuer, writeTrust } from './helpers.js';
import type { CliProcess, Files } from './helpers.js';
import { allText, everythingClient, newClientSeen } from '../helpers/everything.js';
import type { ClientSeen } from '../helpers/everything.js';
import { waitFor } from '../helpers/mcp.js';

const SERVER_ID = 'agent://cli-policy/gateway';
const tmp = tempDir('policy');
const policyFile = join(tmp.dir, 'mcp.cedar');
const quotasFile = join(tmp.dir, 'quotas.json');

const POLICY = `// server-everything behind the gateway
@id("basic-tools")
permit(principal in Issuer::"issuer://cli-policy", action == Action::"tools/call", resource)
  when { ["echo", "get-sum", "trigger-sampling-request", "trigger-elicitation-request"].contains(resource.name) };

@id("ops-sampling")
permit(principal, action == Action::"sampling/createMessage", resource)
  when { principal.hasTag("team") && principal.getTag("team") == "ops" };

@id("roots-for-all")
permit(principal, action == Action::"roots/list", resource);

@id("static-docs")
permit(principal, action == Action::"resources/read", resource)
  when { resource.uri like "demo://resource/static/document/*" };

@id("simple-prompt")
permit(principal, action == Action::"prompts/get", resource == Prompt::"simple-prompt");
`;

let gateway: CliProcess;
let url: string;
let trustFile: string;
let research: Files;
let ops: Files;
let limited: Files;
let solo: Files;
const backend = createNativeBackend();
const clients: Client[] = [];

async function connect(files: Files): Promise<{ client: Client; seen: ClientSeen }> {
  const seen = newClientSeen();
  const { client } = everythingClient('policy-test', seen);
  const identity = await loadIdentity(files.key, { backend });
  const transport = new PqmcpClientTransport(url, { identity, trust: await loadTrustStore(trustFile), backend, expectedServerId: SERVER_ID });
  await client.connect(transport);
  clients.push(client);
  // server-everything registers more tools once initialized, and says so.
  await waitFor(() => seen.toolListChanged > 0, 10_000, 'tools/list_changed after initialized');
  return { client, seen };
}

/** A tool call's text (the SDK's result type also allows a task-era shape without content). */
async function callText(client: Client, name: string, args: Record<string, unknown>): Promise<string> {
  return allText((await client.callTool({ name, arguments: args })) as CallToolResult);
}

async function refusal(p: Promise<unknown>): Promise<McpError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(McpError);
  return err as McpError;
}

const toolNames = async (client: Client): Promise<string[]> => (await client.listTools()).tools.map((t) => t.name).sort();

beforeAll(async () => {
  const issuer = writeIssuer(tmp.dir, 'issuer://cli-policy', 'issuer');
  const server = writeAgent(tmp.dir, issuer, SERVER_ID, 'gateway');
  research = writeAgent(tmp.dir, issuer, 'agent://cli-policy/research', 'research', { scopes: ['tools:call'], attributes: { team: 'research' } });
  ops = writeAgent(tmp.dir, issuer, 'agent://cli-policy/ops', 'ops', { attributes: { team: 'ops' } });
  limited = writeAgent(tmp.dir, issuer, 'agent://cli-policy/limited', 'limited');
  solo = writeAgent(tmp.dir, issuer, 'agent://cli-policy/solo', 'solo');
  trustFile = writeTrust(join(tmp.dir, 'trust.json'), issuer);
  writeFileSync(policyFile, POLICY);
  writeFileSync(quotasFile, JSON.stringify({ intervalSeconds: 5, agents: { 'agent://cli-policy/limited': { calls: 4 }, 'agent://cli-policy/solo': { sessions: 1 } } }));
  ({ gateway, url } = await startGateway(['--identity', server.key, '--trust', trustFile, '--policy', policyFile, '--quotas', quotasFile], [process.execPath, EVERYTHING, 'stdio']));
});

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {});
  await gateway?.stop();
  killAll();
  tmp.remove();
});

describe('pqmcp serve --policy with server-everything', () => {
  it('logs the policy and quotas in force', () => {
    expect(gateway.stderr).toMatch(/listening on ws:\/\/\S+ .*; policy \S+mcp\.cedar \(5 policies\); quotas \S+quotas\.json/);
  });

  it('allows and refuses per policy, filters lists, gates sampling and elicitation', async () => {
    const { client, seen } = await connect(research);
    expect(await toolNames(client)).toEqual(['echo', 'get-sum', 'trigger-elicitation-request', 'trigger-sampling-request']);
    expect(await callText(client, 'echo', { message: 'hello' })).toContain('hello');
    const env = await refusal(client.callTool({ name: 'get-env', arguments: {} }));
    expect(env.code).toBe(-32003);
    expect(env.message).toBe('MCP error -32003: pqmcp: not permitted by policy: tools/call tool "get-env"');

    const resources = (await client.listResources()).resources.map((r) => r.uri);
    expect(resources.length).toBeGreaterThan(0);
    expect(resources.every((u) => u.startsWith('demo://resource/static/document/'))).toBe(true);
    expect((await client.readResource({ uri: resources[0]! })).contents).toHaveLength(1);
    expect((await refusal(client.readResource({ uri: 'demo://resource/dynamic/text/1' }))).code).toBe(-32003);
    expect((await client.listResourceTemplates()).resourceTemplates).toEqual([]);
    expect((await client.listPrompts()).prompts.map((p) => p.name)).toEqual(['simple-prompt']);
    expect((await client.getPrompt({ name: 'simple-prompt' })).messages.length).toBeGreaterThan(0);
    expect((await refusal(client.getPrompt({ name: 'args-prompt', arguments: { city: 'Paris' } }))).code).toBe(-32003);

    // Sampling is for ops only; elicitation for nobody. The server's tool sees the refusal.
    const sampled = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'hi', maxTokens: 10 } });
    expect(JSON.stringify(sampled)).toMatch(/not permitted by policy: sampling\/createMessage/);
    const elicited = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
    expect(JSON.stringify(elicited)).toMatch(/not permitted by policy: elicitation\/create/);
    expect(seen.sampling).toEqual([]);
    expect(seen.elicitForm).toEqual([]);
  });

  it('lets an ops agent sample', async () => {
    const { client, seen } = await connect(ops);
    const text = await callText(client, 'trigger-sampling-request', { prompt: 'one line', maxTokens: 10 });
    expect(text).toContain('model heard:');
    expect(seen.sampling).toHaveLength(1);
  });

  it('SIGHUP with a broken policy keeps the old one and the session; a good one applies to the live session with list_changed', async () => {
    const { client, seen } = await connect(research);
    const changedBefore = seen.toolListChanged;
    writeFileSync(policyFile, `${POLICY}\npermit(principal, action == Action::"tools/call", resource) when { principal.nickname == "x" };`);
    gateway.child.kill('SIGHUP');
    await gateway.waitForStderr(/policy \S+mcp\.cedar NOT reloaded, the previous one stays in force: .*mcp\.cedar:\d+:\d+: .*nickname/);
    expect(await callText(client, 'echo', { message: 'still here' })).toContain('still here');
    expect((await refusal(client.callTool({ name: 'get-env', arguments: {} }))).code).toBe(-32003);

    writeFileSync(policyFile, `${POLICY}\n@id("env-for-research") permit(principal, action == Action::"tools/call", resource == Tool::"get-env") when { principal.hasTag("team") && principal.getTag("team") == "research" };`);
    gateway.child.kill('SIGHUP');
    await gateway.waitForStderr(/policy \S+mcp\.cedar reloaded: 6 policies in force/);
    await waitFor(() => seen.toolListChanged > changedBefore, 10_000, 'tools/list_changed after the reload');
    expect(await toolNames(client)).toContain('get-env');
    expect(await callText(client, 'get-env', {})).toContain('PATH');
  });

  it('quotas: an agent that exhausts its calls is told which quota and when to retry, and recovers', async () => {
    const { client } = await connect(limited); // initialize, tools/list after list_changed...
    let err: McpError | undefined;
    // 4 calls per 5 s window: reached within a window however slow the machine is.
    for (let i = 0; i < 20 && err === undefined; i++) {
      err = await client.callTool({ name: 'echo', arguments: { message: `${i}` } }).then(() => undefined, (e: unknown) => e as McpError);
    }
    expect(err).toBeInstanceOf(McpError);
    expect(err!.code).toBe(-32004);
    expect(err!.message).toMatch(/pqmcp: quota exceeded: calls per agent \(4 per 5 s\); retry after [1-5] s$/);
    const data = err!.data as { quota: string; scope: string; retryAfterMs: number };
    expect(data).toMatchObject({ quota: 'calls', scope: 'agent' });
    await new Promise((r) => setTimeout(r, data.retryAfterMs + 50));
    expect(await callText(client, 'echo', { message: 'after the window' })).toContain('after the window');
  });
});

describe('pqmcp serve --quotas sessions', () => {
  it('a session over its agent\'s sessions quota is refused before any MCP server is started for it', async () => {
    const { client } = await connect(solo);
    expect(await callText(client, 'echo', { message: 'first' })).toContain('first');
    const startsBefore = gateway.stderr.match(/session \S+ started: agent:\/\/cli-policy\/solo /g)?.length ?? 0;
    expect(startsBefore).toBe(1);

    const identity = await loadIdentity(solo.key, { backend });
    const second = new Client({ name: 'second', version: '1.0.0' });
    const transport = new PqmcpClientTransport(url, { identity, trust: await loadTrustStore(trustFile), backend, expectedServerId: SERVER_ID });
    const err = (await second.connect(transport).then(() => undefined, (e: unknown) => e)) as McpError;
    expect(err).toBeInstanceOf(McpError);
    // The quotas hook answers the request itself (as for any request over a quota)...
    expect(err.code).toBe(-32004);
    expect(err.message).toBe('MCP error -32004: pqmcp: quota exceeded: concurrent sessions per agent (1); close another session, then reconnect');
    // ...and the gateway refuses the session as soon as it opens.
    await gateway.waitForStderr(/session \S+ refused: quota exceeded: concurrent sessions per agent \(1\)/);
    // Refused sessions get no "started" line: no MCP server process was spawned for it.
    expect(gateway.stderr.match(/session \S+ started: agent:\/\/cli-policy\/solo /g)).toHaveLength(1);
    await second.close().catch(() => {});

    // When the first session ends, the slot is free again.
    await client.close();
    clients.splice(clients.indexOf(client), 1);
    await waitFor(() => /session \S+ ended: agent:\/\/cli-policy\/solo/.test(gateway.stderr), 10_000, 'the first session to end');
    const again = await connect(solo);
    expect(await callText(again.client, 'echo', { message: 'again' })).toContain('again');
  });
});

describe('pqmcp policy check | explain | schema', () => {
  // Each command's first run is a real process (its exit code), the further ones run in this
  // process (cliInProcess: each process would load the Cedar engine again).
  it('check: a sound policy lists its policies; a broken one exits 2 naming each problem with its line', async () => {
    const good = join(tmp.dir, 'good.cedar');
    writeFileSync(good, POLICY);
    const ok = await cli(['policy', 'check', good]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/ok: \S+good\.cedar: 5 policies valid against the pqmcp schema/);
    expect(ok.stdout).toMatch(/^ {2}permit ops-sampling \(line 6\)$/m);
    const bad = join(tmp.dir, 'bad.cedar');
    writeFileSync(bad, 'permit(principal, action, resource);\nforbid(principal, action == Action::"tools/run", resource);\n');
    const res = await cliInProcess(['policy', 'check', bad]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/bad\.cedar:2:\d+: .*tools\/run/);
    expect(res.stderr.trim().split('\n').at(-1)).toMatch(/^pqmcp: .*bad\.cedar: policies do not validate against the pqmcp schema \(ERR_POLICY_INVALID\)$/);
  });

  it('explain: which policy allowed or denied, and why; exit 0 allowed, 1 denied', async () => {
    const good = join(tmp.dir, 'explain.cedar');
    writeFileSync(good, `${POLICY}\n@id("no-env") forbid(principal, action == Action::"tools/call", resource == Tool::"get-env");`);
    const allow = await cli(['policy', 'explain', good, '--agent', ops.cred, '--method', 'sampling/createMessage']);
    expect(allow.code).toBe(0);
    expect(allow.stdout).toMatch(/^decision: allow$/m);
    expect(allow.stdout).toMatch(/reason: +permitted by ops-sampling/);
    expect(allow.stdout).toMatch(/explain\.cedar:6: permit ops-sampling\n  @id\("ops-sampling"\)\n  permit\(principal, action == Action::"sampling\/createMessage", resource\)/);
    const deny = await cliInProcess(['policy', 'explain', good, '--agent', research.cred, '--method', 'tools/call', '--tool', 'get-env', '--trust', trustFile, '--json']);
    expect(deny.code).toBe(1);
    const json = JSON.parse(deny.stdout) as { decision: string; reason: string; policies: Array<{ id: string; effect: string }> };
    expect(json).toMatchObject({ decision: 'deny', reason: 'forbidden by no-env', policies: [{ id: 'no-env', effect: 'forbid' }] });
    const none = await cliInProcess(['policy', 'explain', good, '--agent', research.cred, '--method', 'tools/call', '--tool', 'rm']);
    expect(none.code).toBe(1);
    expect(none.stdout).toMatch(/reason: +no policy permits it/);
  });

  it('schema prints the schema; serve refuses to start with a broken policy', async () => {
    const schema = await cli(['policy', 'schema']);
    expect(schema.stdout).toContain('entity Agent in [Issuer]');
    const bad = join(tmp.dir, 'broken.cedar');
    writeFileSync(bad, 'permit(principal, action, resource');
    const serve = await cli(['serve', '--identity', research.key, '--trust', trustFile, '--listen', '127.0.0.1:0', '--policy', bad, '--', process.execPath, EVERYTHING, 'stdio']);
    expect(serve.code).toBe(2);
    expect(serve.stderr).toMatch(/broken\.cedar:1:\d+: /);
    expect(serve.stderr).toMatch(/ERR_POLICY_INVALID/);
  });
});
