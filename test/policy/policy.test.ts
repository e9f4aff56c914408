/**
 * Authorization with real Cedar policies through real SDK clients and servers over real
 * sockets: each allow and deny path (tools, resources, templates, prompts, completions,
 * sampling, elicitation), filtered lists, notes for an auditor, reloads (good, broken, by
 * file change) that keep sessions and announce list changes, and load-time validation.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { McpError, ToolListChangedNotificationSchema, ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { PolicyErrorCode, PolicyInvalidError, loadPolicy } from '../../src/policy/index.js';
import type { Policy, PolicyNote, ReloadEvent } from '../../src/policy/index.js';
import { CANCELLED_HOLD_MS, MAX_TRACKED, MessagePipeline } from '../../src/transport/index.js';
import type { JsonRpcMessage, MessageHook } from '../../src/transport/index.js';
import { fixtureCrypto, makeAgent, testIssuer } from '../helpers/identities.js';
import { Cleanup, connectClient, startFeatureServer, waitFor } from '../helpers/mcp.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
const dir = mkdtempSync(join(tmpdir(), 'pqmcp-policy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

export const POLICY = `
// Every agent of the test issuer: a few tools.
@id("everyone-basic")
permit(principal in Issuer::"issuer://pqmcp-test", action == Action::"tools/call", resource)
  when { ["echo", "whoami", "sample", "elicit", "touch"].contains(resource.name) };

@id("notes-readers")
permit(principal, action in [Action::"resources/read", Action::"resources/subscribe"], resource)
  when { resource.uri like "notes://*" && principal.scopes.contains("resources:read") };

@id("greeters")
permit(principal, action in [Action::"prompts/get", Action::"completion/complete"], resource == Prompt::"greet");

@id("ops-add")
permit(principal, action == Action::"tools/call", resource == Tool::"add")
  when { principal.hasTag("team") && principal.getTag("team") == "ops" };

@id("ops-sampling")
permit(principal, action == Action::"sampling/createMessage", resource)
  when { principal.hasTag("team") && principal.getTag("team") == "ops" };

@id("no-beta")
forbid(principal, action == Action::"resources/read", resource == Resource::"notes://beta");
`;

const ops = makeAgent(fixtureCrypto(), testIssuer(), 'agent://pqmcp-test/ops', { scopes: ['tools:call'], attributes: { team: 'ops' } }).identity;

const names = (items: Array<{ name: string }>): string[] => items.map((i) => i.name).sort();
const uris = (items: Array<{ uri?: string; uriTemplate?: string }>): string[] => items.map((i) => i.uri ?? i.uriTemplate ?? '').sort();

/** Records each answered request's policy note, as an auditor would. */
function auditor(log: Array<{ method: string; note: PolicyNote | undefined; error: boolean }>): MessageHook {
  return {
    name: 'auditor',
    toPeer(m, ctx) {
      if (m.method === undefined && ctx.request?.direction === 'fromPeer') log.push({ method: ctx.request.method, note: ctx.request.notes['policy'] as PolicyNote | undefined, error: m.error !== undefined });
    },
  };
}

async function refusal(p: Promise<unknown>): Promise<McpError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(McpError);
  return err as McpError;
}

describe('Cedar policy through real SDK peers', () => {
  it('allows what a policy permits, refuses the rest with a stable error, and filters every list', async () => {
    const log: Array<{ method: string; note: PolicyNote | undefined; error: boolean }> = [];
    const policy = await loadPolicy({ text: POLICY });
    const { url, stats } = await startFeatureServer(cleanup, { policy, hooks: [auditor(log)] });
    const { client, samplingRequests } = await connectClient(cleanup, url);

    expect(names((await client.listTools()).tools)).toEqual(['echo', 'elicit', 'sample', 'touch', 'whoami']);
    expect(uris((await client.listResources()).resources)).toEqual(['notes://alpha']);
    expect(uris((await client.listResourceTemplates()).resourceTemplates)).toEqual(['notes://{id}']);
    expect(names((await client.listPrompts()).prompts)).toEqual(['greet']);

    // Allowed: each reaches the server.
    let before = stats.handlerCalls;
    expect((await client.callTool({ name: 'echo', arguments: { text: 'hi' } })).content).toEqual([{ type: 'text', text: 'hi' }]);
    expect((await client.readResource({ uri: 'notes://alpha' })).contents[0]).toMatchObject({ text: 'note alpha' });
    expect((await client.getPrompt({ name: 'greet', arguments: { name: 'Ada' } })).messages).toHaveLength(1);
    expect((await client.complete({ ref: { type: 'ref/prompt', name: 'greet' }, argument: { name: 'name', value: 'A' } })).completion.values).toEqual(['Ada', 'Alan']);
    expect(stats.handlerCalls).toBe(before + 3);

    // Denied: none reaches the server; the error names the request, not the policy.
    before = stats.handlerCalls;
    const add = await refusal(client.callTool({ name: 'add', arguments: { a: 1, b: 2 } }));
    expect(add.code).toBe(PolicyErrorCode.denied);
    expect(add.message).toBe('MCP error -32003: pqmcp: not permitted by policy: tools/call tool "add"');
    const beta = await refusal(client.readResource({ uri: 'notes://beta' }));
    expect(beta.message).toMatch(/not permitted by policy: resources\/read resource "notes:\/\/beta"$/);
    expect(beta.message).not.toMatch(/no-beta|forbid/);
    expect((await refusal(client.readResource({ uri: 'config://app' }))).code).toBe(PolicyErrorCode.denied);
    expect((await refusal(client.subscribeResource({ uri: 'config://app' }))).code).toBe(PolicyErrorCode.denied);
    expect((await refusal(client.complete({ ref: { type: 'ref/resource', uri: 'notes://{id}' }, argument: { name: 'id', value: 'a' } }))).code).toBe(PolicyErrorCode.denied);
    expect((await refusal(client.setLoggingLevel('debug'))).message).toMatch(/not permitted by policy: logging\/setLevel$/);
    expect(stats.handlerCalls).toBe(before);

    // Server-to-client requests: sampling and elicitation are refused for this agent; the
    // tool that asked sees the refusal, the client is never asked.
    const sampled = await client.callTool({ name: 'sample', arguments: { prompt: 'x' } });
    expect(sampled.isError).toBe(true);
    expect(JSON.stringify(sampled.content)).toMatch(/not permitted by policy: sampling\/createMessage/);
    const elicited = await client.callTool({ name: 'elicit', arguments: {} });
    expect(JSON.stringify(elicited.content)).toMatch(/not permitted by policy: elicitation\/create/);
    expect(samplingRequests).toBe(0);

    // The auditor, outside the policy, sees each decision with the deciding policies.
    const find = (method: string, error: boolean) => log.find((e) => e.method === method && e.error === error)?.note;
    expect(find('tools/call', true)).toEqual({ decision: 'deny', policies: [], reason: 'no policy permits it' });
    expect(find('tools/call', false)).toEqual({ decision: 'allow', policies: ['everyone-basic'], reason: 'permitted by everyone-basic' });
    expect(log.find((e) => e.method === 'resources/read' && e.note?.policies.includes('no-beta'))?.note?.reason).toBe('forbidden by no-beta');
    expect(find('tools/list', false)?.reason).toBe('listed 5 of 10');
  });

  it('decides per agent: attributes (tags) and issuer grant an ops agent more, sampling included', async () => {
    const policy = await loadPolicy({ text: POLICY });
    const { url } = await startFeatureServer(cleanup, { policy });
    const connected = await connectClient(cleanup, url, { identity: ops });
    expect(names((await connected.client.listTools()).tools)).toContain('add');
    expect((await connected.client.callTool({ name: 'add', arguments: { a: 2, b: 3 } })).structuredContent).toEqual({ sum: 5 });
    const sampled = await connected.client.callTool({ name: 'sample', arguments: { prompt: 'hi' } });
    expect(sampled.content).toEqual([{ type: 'text', text: 'model said: HI' }]);
    expect(connected.samplingRequests).toBe(1);
    // No resources:read scope: notes are hidden and refused.
    expect((await connected.client.listResources()).resources).toEqual([]);
    expect((await refusal(connected.client.readResource({ uri: 'notes://alpha' }))).code).toBe(PolicyErrorCode.denied);
  });

  it('reloads: a broken policy is refused and the old one stays; a good one applies to live sessions, which get list_changed', async () => {
    const file = join(dir, 'reload.cedar');
    writeFileSync(file, POLICY);
    const events: ReloadEvent[] = [];
    const policy: Policy = await loadPolicy({ file, watch: false, onReload: (e) => void events.push(e) });
    cleanup.add(() => policy.close());
    const { url, server } = await startFeatureServer(cleanup, { policy });
    const { client } = await connectClient(cleanup, url);
    let listChanged = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => void listChanged++);
    const updates: string[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updates.push(n.params.uri));
    await client.subscribeResource({ uri: 'notes://alpha' });
    expect((await client.callTool({ name: 'touch', arguments: { uri: 'notes://alpha' } })).content).toEqual([{ type: 'text', text: 'notified' }]);
    expect(updates).toEqual(['notes://alpha']);

    // Broken: does not parse. Then: parses but does not validate (an unknown attribute).
    writeFileSync(file, `${POLICY}\npermit(principal, action, resource`);
    expect(() => policy.reload()).toThrow(PolicyInvalidError);
    const invalid = (() => {
      try {
        policy.reload(`permit(principal, action == Action::"tools/call", resource) when { principal.team == "x" };`);
      } catch (err) {
        return err as PolicyInvalidError;
      }
    })();
    expect(invalid?.code).toBe('ERR_POLICY_INVALID');
    expect(invalid?.problems.join('\n')).toMatch(/reload\.cedar:1:\d+: .*attribute `team` on entity type `Agent` not found/);
    expect(events.map((e) => e.ok)).toEqual([false, false]);
    // The old policy is in force and the session is alive.
    await expect(client.callTool({ name: 'add', arguments: { a: 1, b: 1 } })).rejects.toThrow(/not permitted by policy/);
    expect((await client.callTool({ name: 'echo', arguments: { text: 'still here' } })).content).toEqual([{ type: 'text', text: 'still here' }]);
    expect(listChanged).toBe(0);

    // Good: everyone may add now, notes://alpha is no longer readable.
    writeFileSync(file, `${POLICY}\n@id("all-add") permit(principal, action == Action::"tools/call", resource == Tool::"add");\n@id("no-alpha") forbid(principal, action == Action::"resources/read", resource == Resource::"notes://alpha");`);
    policy.reload();
    expect(events.at(-1)).toEqual({ ok: true, source: file, policies: 8 });
    await waitFor(() => listChanged === 1, 5_000, 'tools/list_changed');
    // The same text again (a SIGHUP for other files) announces nothing: the answer to a later
    // request would have come after the notification.
    policy.reload();
    await client.listTools();
    expect(listChanged).toBe(1);
    expect((await client.callTool({ name: 'add', arguments: { a: 1, b: 1 } })).structuredContent).toEqual({ sum: 2 });
    expect(names((await client.listTools()).tools)).toContain('add');
    // The update for a resource the agent may no longer read is dropped (it would have
    // arrived before the tool's answer: messages keep their order).
    expect((await client.callTool({ name: 'touch', arguments: { uri: 'notes://alpha' } })).content).toEqual([{ type: 'text', text: 'notified' }]);
    expect(updates).toEqual(['notes://alpha']);
    expect(server.sessions.size).toBe(1);
  });

  it('a client reusing the id of its tools/list in flight gets that request refused, and its list stays filtered (review 8)', async () => {
    const policy = await loadPolicy({ text: POLICY });
    const errors: string[] = [];
    const { url, server } = await startFeatureServer(cleanup, { policy });
    server.on('session', (t) => {
      t.onerror = (e) => void errors.push((e as { code?: string }).code ?? '');
    });
    const { client, transport } = await connectClient(cleanup, url);
    const answers: Array<{ id?: unknown; result?: { tools?: Array<{ name: string }> }; error?: { code: number } }> = [];
    const deliver = transport.onmessage!;
    transport.onmessage = (m, extra) => {
      if ((m as { id?: unknown }).id === 1000) answers.push(m as (typeof answers)[number]);
      else deliver(m, extra);
    };
    // Both in one turn: the second would have taken the first's place in the correlation
    // table, and the tools/list answer would then have passed the policy as a ping's.
    const sent = [transport.send({ jsonrpc: '2.0', id: 1000, method: 'tools/list', params: {} }), transport.send({ jsonrpc: '2.0', id: 1000, method: 'ping' })];
    await Promise.all(sent);
    await waitFor(() => answers.length === 2, 5_000, 'both answers');
    expect(answers.find((a) => a.error !== undefined)?.error?.code).toBe(-32600);
    expect(names(answers.find((a) => a.result?.tools !== undefined)!.result!.tools!)).toEqual(['echo', 'elicit', 'sample', 'touch', 'whoami']);
    expect(errors).toContain('ERR_REQUEST_ID_REUSED');
    // The session goes on.
    expect(names((await client.listTools()).tools)).toEqual(['echo', 'elicit', 'sample', 'touch', 'whoami']);
  });

  /** A listener whose policy is loaded from a watched file holding POLICY, and a client connected to it. */
  async function watchedPolicy(name: string): Promise<{ file: string; events: ReloadEvent[]; client: Awaited<ReturnType<typeof connectClient>>['client'] }> {
    const file = join(dir, name);
    writeFileSync(file, POLICY);
    const events: ReloadEvent[] = [];
    const policy = await loadPolicy({ file, onReload: (e) => void events.push(e) });
    cleanup.add(() => policy.close());
    const { url } = await startFeatureServer(cleanup, { policy });
    const { client } = await connectClient(cleanup, url);
    return { file, events, client };
  }

  it('watches its file: a save in place seen half-way (the file truncated, its content not yet written) keeps the policy in force', async () => {
    const { file, events, client } = await watchedPolicy('in-place.cedar');
    // The truncation of a save in place, and a writer that stalls past the watcher's 50 ms.
    writeFileSync(file, '');
    await waitFor(() => events.length >= 1, 5_000, 'the empty file reported');
    expect(events).toMatchObject([{ ok: false, source: file, error: { message: expect.stringContaining('empty, taken as a save in progress') } }]);
    // Once: more changes while it stays empty are not reported again.
    writeFileSync(file, '  \n');
    await new Promise((r) => setTimeout(r, 300));
    expect(events).toHaveLength(1);
    expect((await client.callTool({ name: 'echo', arguments: { text: 'still allowed' } })).isError).toBeFalsy();
    // A broken save after it is refused, and the policy in force is still the first one.
    writeFileSync(file, 'this is not cedar');
    await waitFor(() => events.length >= 2, 5_000, 'a refused reload');
    expect(events[1]).toMatchObject({ ok: false, source: file, error: { message: expect.not.stringContaining('empty') } });
    expect((await client.callTool({ name: 'echo', arguments: { text: 'still allowed' } })).isError).toBeFalsy();
  });

  it('watches its file: a change is loaded, a broken change is refused and reported', async () => {
    const { file, events, client } = await watchedPolicy('watched.cedar');
    // Replace atomically, as editors and config management do.
    writeFileSync(`${file}.tmp`, 'this is not cedar');
    renameSync(`${file}.tmp`, file);
    await waitFor(() => events.length >= 1, 5_000, 'a refused reload');
    expect(events[0]).toMatchObject({ ok: false, source: file });
    expect((await client.callTool({ name: 'echo', arguments: { text: 'ok' } })).isError).toBeFalsy();
    writeFileSync(`${file}.tmp`, `@id("only-whoami") permit(principal, action == Action::"tools/call", resource == Tool::"whoami");`);
    renameSync(`${file}.tmp`, file);
    await waitFor(() => events.some((e) => e.ok), 5_000, 'a good reload');
    expect(names((await client.listTools()).tools)).toEqual(['whoami']);
    await expect(client.callTool({ name: 'echo', arguments: { text: 'x' } })).rejects.toThrow(/not permitted by policy/);
  });
});

describe('the watcher and symlinked policy files (review 15, R15-5)', () => {
  const peer = { agentId: 'agent://x', issuer: 'issuer://pqmcp-test', fingerprint: 'ab', scopes: [], attributes: {}, displayName: '', serial: '01', selfSigned: false, notBefore: 0, notAfter: 1, publicKey: new Uint8Array(), usage: 'client' as const, credential: {} as never };
  const allowed = (policy: Policy, tool: string): boolean => policy.explain(peer, 'tools/call', { name: tool }).decision.allowed;
  const ALL = 'permit(principal, action, resource);\n';
  const ECHO_ONLY = 'permit(principal, action == Action::"tools/call", resource == Tool::"echo");\n';

  it('a Kubernetes ConfigMap update (the file a symlink through ..data, which kubelet swaps) is reloaded', async () => {
    // What kubelet's atomic writer makes: a timestamped directory, ..data -> it, the key -> ..data/key.
    const cm = join(dir, 'configmap');
    const v1 = '..2026_12_07_15_00_00.000000001';
    mkdirSync(join(cm, v1), { recursive: true });
    writeFileSync(join(cm, v1, 'mcp.cedar'), ALL);
    symlinkSync(v1, join(cm, '..data'));
    symlinkSync('..data/mcp.cedar', join(cm, 'mcp.cedar'));
    const events: ReloadEvent[] = [];
    const policy = await loadPolicy({ file: join(cm, 'mcp.cedar'), onReload: (e) => void events.push(e) });
    cleanup.add(() => policy.close());
    expect(allowed(policy, 'rm')).toBe(true);
    // The update: a new timestamped directory, a ..data_tmp link to it renamed over ..data, the old directory removed.
    const v2 = '..2026_12_07_15_01_00.000000002';
    mkdirSync(join(cm, v2));
    writeFileSync(join(cm, v2, 'mcp.cedar'), ECHO_ONLY);
    symlinkSync(v2, join(cm, '..data_tmp'));
    renameSync(join(cm, '..data_tmp'), join(cm, '..data'));
    rmSync(join(cm, v1), { recursive: true });
    await waitFor(() => events.some((e) => e.ok), 5_000, 'the ConfigMap update reloaded');
    expect(events).toEqual([{ ok: true, source: join(cm, 'mcp.cedar'), policies: 1 }]);
    expect(allowed(policy, 'rm')).toBe(false);
    expect(allowed(policy, 'echo')).toBe(true);
    // And the next one, from the new target.
    const v3 = '..2026_12_07_15_02_00.000000003';
    mkdirSync(join(cm, v3));
    writeFileSync(join(cm, v3, 'mcp.cedar'), ALL);
    symlinkSync(v3, join(cm, '..data_tmp'));
    renameSync(join(cm, '..data_tmp'), join(cm, '..data'));
    rmSync(join(cm, v2), { recursive: true });
    await waitFor(() => events.length >= 2, 5_000, 'the second update reloaded');
    expect(allowed(policy, 'rm')).toBe(true);
  });

  it('a symlink to a file in another directory: a save there, in place, is reloaded', async () => {
    const target = join(dir, 'elsewhere');
    mkdirSync(target);
    writeFileSync(join(target, 'real.cedar'), ALL);
    const linkDir = join(dir, 'etc-pqmcp');
    mkdirSync(linkDir);
    symlinkSync(join(target, 'real.cedar'), join(linkDir, 'mcp.cedar'));
    const events: ReloadEvent[] = [];
    const policy = await loadPolicy({ file: join(linkDir, 'mcp.cedar'), onReload: (e) => void events.push(e) });
    cleanup.add(() => policy.close());
    writeFileSync(join(target, 'real.cedar'), ECHO_ONLY);
    await waitFor(() => events.some((e) => e.ok), 5_000, 'the save at the target reloaded');
    expect(allowed(policy, 'rm')).toBe(false);
  });
});

describe('the hook without sockets', () => {
  const peer = { agentId: 'agent://x', issuer: 'issuer://pqmcp-test', fingerprint: 'ab', scopes: [], attributes: {}, displayName: '', serial: '01', selfSigned: false, notBefore: 0, notAfter: 1, publicKey: new Uint8Array(), usage: 'client' as const, credential: {} as never };
  const session = { role: 'server' as const, peer, sessionId: 's1', remoteAddress: undefined };
  const ctx = (direction: 'fromPeer' | 'toPeer', method: string) => ({ ...session, direction, bytes: 10, request: { id: 1, method, params: {}, direction, startedAt: 0, bytes: 10, notes: {} } });

  it('plumbing passes undecided both ways (ping, initialize); an unknown method is denied on the Server resource', async () => {
    const policy = await loadPolicy({ text: 'permit(principal, action == Action::"tools/call", resource == Tool::"echo");' });
    policy.opened(session, { notify: async () => {} });
    expect(policy.toPeer({ jsonrpc: '2.0', id: 1, method: 'ping' }, ctx('toPeer', 'ping'))).toBeUndefined();
    expect(policy.fromPeer({ jsonrpc: '2.0', id: 1, method: 'ping' }, ctx('fromPeer', 'ping'))).toBeUndefined();
    expect(policy.fromPeer({ jsonrpc: '2.0', id: 2, method: 'initialize', params: {} }, ctx('fromPeer', 'initialize'))).toBeUndefined();
    const unknown = policy.fromPeer({ jsonrpc: '2.0', id: 3, method: 'tasks/list', params: {} }, ctx('fromPeer', 'tasks/list'));
    expect(unknown).toEqual({ reply: { jsonrpc: '2.0', id: 3, error: { code: PolicyErrorCode.denied, message: 'pqmcp: not permitted by policy: tasks/list' } } });
    const open = await loadPolicy({ text: 'permit(principal, action, resource is Server);' });
    expect(open.fromPeer({ jsonrpc: '2.0', id: 4, method: 'tasks/list', params: {} }, ctx('fromPeer', 'tasks/list'))).toBeUndefined();
  });

  it('a list answering a request the pipeline no longer knows (answered after its cancellation) is filtered all the same (review 8)', async () => {
    const policy = await loadPolicy({ text: 'permit(principal, action == Action::"tools/call", resource == Tool::"echo");' });
    const written: JsonRpcMessage[] = [];
    const pipeline = new MessagePipeline([policy], session, { toPeer: async (_d, m) => void written.push(m), toLocal: () => undefined, onerror: () => undefined });
    pipeline.fromPeer({ jsonrpc: '2.0', id: 0, method: 'tools/list', params: {} }, 40);
    pipeline.fromPeer({ jsonrpc: '2.0', id: 1, method: 'ping' }, 30);
    // The peer cancels both; a server that answers anyway is answering requests the pipeline forgot.
    for (const requestId of [0, 1]) pipeline.fromPeer({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId } }, 60);
    expect(pipeline.inFlight('fromPeer')).toBe(0);
    const tools = [{ name: 'echo' }, { name: 'add' }, { name: 'shell' }];
    await pipeline.toPeer({ jsonrpc: '2.0', id: 0, result: { tools, resources: [{ uri: 'notes://a' }], prompts: [{ name: 'p' }] } });
    expect(written[0]!.result).toEqual({ tools: [{ name: 'echo' }], resources: [], prompts: [] });
    // A response that is not a list passes as it is.
    await pipeline.toPeer({ jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'x' }] } });
    expect(written[1]!.result).toEqual({ content: [{ type: 'text', text: 'x' }] });
  });

  it('a list matched to the wrong request (a cancelled id reused once the pipeline had to forget it) is filtered all the same (review 8 L1)', async () => {
    const policy = await loadPolicy({ text: 'permit(principal, action == Action::"tools/call", resource == Tool::"echo");' });
    const written: JsonRpcMessage[] = [];
    // Time moves past each cancelled request's hold (CANCELLED_HOLD_MS) before the next.
    let time = 0;
    const pipeline = new MessagePipeline([policy], session, { toPeer: async (_d, m) => void written.push(m), toLocal: () => undefined, onerror: () => undefined }, { now: () => (time += CANCELLED_HOLD_MS) });
    const cancel = (requestId: number): JsonRpcMessage => ({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId } });
    pipeline.fromPeer({ jsonrpc: '2.0', id: 0, method: 'tools/list', params: {} }, 40);
    pipeline.fromPeer(cancel(0), 60);
    // Enough later cancellations that the pipeline forgets the cancelled id 0 (it keeps MAX_TRACKED).
    for (let id = 1; id <= MAX_TRACKED; id++) {
      pipeline.fromPeer({ jsonrpc: '2.0', id, method: 'ping' }, 30);
      pipeline.fromPeer(cancel(id), 60);
    }
    pipeline.fromPeer({ jsonrpc: '2.0', id: 0, method: 'ping' }, 30);
    expect(written).toEqual([]);
    // A server that answers the cancelled tools/list anyway, late: it meets the ping's entry.
    await pipeline.toPeer({ jsonrpc: '2.0', id: 0, result: { tools: [{ name: 'echo' }, { name: 'add' }, { name: 'shell' }] } });
    expect(written[0]!.result).toEqual({ tools: [{ name: 'echo' }] });
  });

  it('the principal carries the credential usage: a policy can admit only agents whose credential may also serve', async () => {
    const policy = await loadPolicy({ text: 'permit(principal, action == Action::"tools/call", resource) when { principal.usage == "both" };' });
    const call = (usage: 'client' | 'both') => {
      const s = { ...session, peer: { ...peer, usage } };
      policy.opened(s, { notify: async () => {} });
      return policy.fromPeer({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'echo' } }, { ...s, direction: 'fromPeer', bytes: 10, request: { id: 5, method: 'tools/call', params: { name: 'echo' }, direction: 'fromPeer' as const, startedAt: 0, bytes: 10, notes: {} } });
    };
    expect(call('both')).toBeUndefined();
    expect(call('client')).toMatchObject({ reply: { id: 5, error: { code: PolicyErrorCode.denied } } });
  });
});

describe('memoised decisions stay exact', () => {
  const peer = { agentId: 'agent://x', issuer: 'issuer://pqmcp-test', fingerprint: 'ab', scopes: [], attributes: {}, displayName: '', serial: '01', selfSigned: false, notBefore: 0, notAfter: 1, publicKey: new Uint8Array(), usage: 'client' as const, credential: {} as never };
  const session = { role: 'server' as const, peer, sessionId: 's1', remoteAddress: undefined };
  const call = (policy: Policy, bytes: number) => {
    const request = { id: 1, method: 'tools/call', params: { name: 'echo' }, direction: 'fromPeer' as const, startedAt: 0, bytes, notes: {} };
    return policy.fromPeer({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo' } }, { ...session, direction: 'fromPeer', bytes, request }) === undefined;
  };

  it('the memo key cannot be shared by two requests whose method and name differ only in where a newline falls (review 8)', async () => {
    const policy = await loadPolicy({ text: 'permit(principal, action == Action::"tools/call", resource) when { resource.name == "Server\\nmcp" };' });
    policy.opened(session, { notify: async () => {} });
    const request = (id: number, method: string, params: unknown) => ({
      message: { jsonrpc: '2.0' as const, id, method, params },
      ctx: { ...session, direction: 'fromPeer' as const, bytes: 10, request: { id, method, params, direction: 'fromPeer' as const, startedAt: 0, bytes: 10, notes: {} } },
    });
    const allowed = request(1, 'tools/call', { name: 'Server\nmcp' });
    expect(policy.fromPeer(allowed.message, allowed.ctx)).toBeUndefined();
    // An unknown method on the Server resource "mcp": denied, whatever was decided before.
    const odd = request(2, 'tools/call\nTool', {});
    expect(policy.fromPeer(odd.message, odd.ctx)).toMatchObject({ reply: { id: 2, error: { code: PolicyErrorCode.denied } } });
  });

  it('a policy reading context.time and context.requestBytes is decided on their current values', async () => {
    let now = 1_000_000;
    const policy = await loadPolicy({ text: 'permit(principal, action == Action::"tools/call", resource) when { context.time < 2000 && context.requestBytes < 100 };', now: () => now });
    policy.opened(session, { notify: async () => {} });
    expect([call(policy, 10), call(policy, 10), call(policy, 500), call(policy, 10)]).toEqual([true, true, false, true]);
    now = 2_000_000;
    expect([call(policy, 10), call(policy, 10)]).toEqual([false, false]);
    now = 1_500_000;
    expect(call(policy, 10)).toBe(true);
  });

  it('check reports which context attributes the policies read', async () => {
    const { checkPolicy } = await import('../../src/policy/index.js');
    expect((await checkPolicy('permit(principal, action, resource);')).contextReads).toEqual([]);
    expect((await checkPolicy('permit(principal, action, resource) when { context.utcHour < 18 && context has remoteAddress };')).contextReads).toEqual(['remoteAddress', 'utcHour']);
    expect((await checkPolicy('permit(principal, action, resource) when { context == context };')).contextReads).toBe('all');
  });
});

describe('loading policies', () => {
  it('refuses text that does not parse, with the line and column', async () => {
    const err = await loadPolicy({ text: 'permit(principal, action, resource);\n\nforbid(principal action, resource);' }).then(() => undefined, (e: unknown) => e as PolicyInvalidError);
    expect(err).toBeInstanceOf(PolicyInvalidError);
    expect(err!.problems[0]).toMatch(/^policy:3:\d+: /);
  });

  it('refuses policies that do not validate against the schema: unknown entity types, actions, and wrong attribute types', async () => {
    for (const text of [
      'permit(principal, action, resource == File::"x");',
      'permit(principal, action == Action::"tools/run", resource);',
      'permit(principal, action == Action::"tools/call", resource) when { resource.uri == "x" };',
      'permit(principal, action, resource) when { principal.scopes == "admin" };',
    ]) {
      const err = await loadPolicy({ text }).then(() => undefined, (e: unknown) => e);
      expect(err, text).toBeInstanceOf(PolicyInvalidError);
    }
  });

  it('refuses templates and duplicate ids; names policies by @id or position', async () => {
    await expect(loadPolicy({ text: 'permit(principal == ?principal, action, resource);' })).rejects.toThrow(/templates/);
    await expect(loadPolicy({ text: '@id("a") permit(principal, action, resource);\n@id("a") forbid(principal, action, resource);' })).rejects.toThrow(/"a" is used twice/);
    const policy = await loadPolicy({ text: 'permit(principal, action, resource);\n@id("x") forbid(principal, action, resource == Tool::"rm");' });
    expect(policy.policies.map((p) => [p.id, p.effect, p.line])).toEqual([['policy0', 'permit', 1], ['x', 'forbid', 2]]);
  });
});
