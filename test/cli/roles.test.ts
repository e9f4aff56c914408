/**
 * Roles, name constraints and endpoints through the CLI, with real processes (issue 11; the
 * offline commands after the first of each test in this process, cliInProcess):
 * credential issue --usage (default client) and inspect; serve refusing a client credential
 * at start; trust add-issuer --constrain / --unconstrained and trust list; connect
 * --expect-prefix; serve --endpoint and connect --endpoint.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliProcess, LINE_SERVER, cli, cliInProcess, expectOneLineError, killAll, startGateway, tempDir, writeAgent, writeIssuer, writeTrust } from './helpers.js';
import type { Files } from './helpers.js';

const SERVER_ID = 'agent://rc/tools';
const tmp = tempDir('roles');
const f = (name: string): string => join(tmp.dir, name);
let issuer: ReturnType<typeof writeIssuer>;
let trust: string;
let server: Files;
let alice: Files;

const INIT = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };

beforeAll(() => {
  issuer = writeIssuer(tmp.dir, 'issuer://rc', 'issuer');
  server = writeAgent(tmp.dir, issuer, SERVER_ID, 'tools', { usage: 'server' });
  alice = writeAgent(tmp.dir, issuer, 'agent://rc/alice', 'alice', { usage: 'client', scopes: ['tools:call'] });
  trust = writeTrust(f('trust.json'), issuer);
});

afterAll(() => {
  killAll();
  tmp.remove();
});

/** A bridge that sends initialize; resolves with its answer, or with its exit and stderr when it fails. */
async function bridge(url: string, extra: string[]): Promise<{ answer?: Record<string, unknown>; code?: number | null; stderr: string; process: CliProcess }> {
  const x = new CliProcess(['connect', url, '--identity', alice.key, '--trust', trust, ...extra]);
  x.write(INIT);
  const answer = await x.waitForMessage((m) => m['id'] === 0, 30_000);
  if (answer['error'] !== undefined) return { answer, code: await x.exited, stderr: x.stderr, process: x };
  return { answer, stderr: x.stderr, process: x };
}

describe('credential usage through the CLI', () => {
  it('credential issue defaults to client, --usage server makes a server credential, inspect shows it', async () => {
    const agent = await cli(['agent', 'create', '--id', 'agent://rc/new', '--out', f('new.key.json')]);
    expect(agent.code).toBe(0);
    const plain = await cli(['credential', 'issue', '--issuer', issuer.keyFile, '--agent', f('new.pub.json'), '--json']);
    expect(plain.code, plain.stderr).toBe(0);
    expect(JSON.parse(plain.stdout)).toMatchObject({ agentId: 'agent://rc/new', usage: 'client' });
    const served = await cliInProcess(['credential', 'issue', '--issuer', issuer.keyFile, '--agent', f('new.pub.json'), '--usage', 'server', '--out', f('new-server.cred.json')]);
    expect(served.code, served.stderr).toBe(0);
    expect(served.stdout).toMatch(/usage: +server/);
    const shown = await cliInProcess(['inspect', f('new-server.cred.json')]);
    expect(shown.stdout).toMatch(/usage: +server/);
    const bad = await cliInProcess(['credential', 'issue', '--issuer', issuer.keyFile, '--agent', f('new.pub.json'), '--usage', 'admin', '--out', f('x.cred.json')]);
    expect(bad.code).toBe(2);
    expectOneLineError(bad.stderr, 'ERR_USAGE');
    expect(bad.stderr).toContain('--usage must be client, server or both');
    // verify --as checks the role.
    const asServer = await cliInProcess(['credential', 'verify', f('new.cred.json'), '--trust', trust, '--as', 'server']);
    expect(asServer.code).toBe(1);
    expect(asServer.stderr).toContain('credential usage is client; it may not act as a server (ERR_CREDENTIAL_USAGE)');
    expect((await cliInProcess(['credential', 'verify', f('new-server.cred.json'), '--trust', trust, '--as', 'server'])).code).toBe(0);
  }, 240_000);

  it('serve refuses to start with a client credential, saying how to fix it', async () => {
    const r = await cli(['serve', '--identity', alice.key, '--trust', trust, '--listen', '127.0.0.1:0', '--', process.execPath, LINE_SERVER], { timeoutMs: 30_000 });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('has usage client; it may not act as a server');
    expect(r.stderr).toContain('--usage server');
    expect(r.stderr).toContain('ERR_CREDENTIAL_USAGE');
  });
});

describe('trust add-issuer --constrain', () => {
  it('writes normalised constraints, keeps them on a plain re-add, lifts them with --unconstrained, refuses bad ones', async () => {
    const file = f('constrained.json');
    const added = await cli(['trust', 'add-issuer', file, issuer.pubFile, '--constrain', 'agent://rc/tools/*', '--constrain', 'agent://rc/alice']);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain('for agent://rc/tools/, agent://rc/alice');
    const json = () => JSON.parse(readFileSync(file, 'utf8')) as { issuers: { constraints?: string[] }[] };
    expect(json().issuers[0]!.constraints).toEqual(['agent://rc/tools/', 'agent://rc/alice']);
    const listed = await cliInProcess(['trust', 'list', file]);
    expect(listed.stdout).toContain('may vouch for agent://rc/tools/, agent://rc/alice');
    expect((await cliInProcess(['trust', 'add-issuer', file, issuer.pubFile])).code).toBe(0);
    expect(json().issuers[0]!.constraints).toEqual(['agent://rc/tools/', 'agent://rc/alice']);
    // The gateway credential (agent://rc/tools) is outside agent://rc/tools/ (children only).
    const verified = await cliInProcess(['credential', 'verify', server.cred, '--trust', file]);
    expect(verified.code).toBe(1);
    expect(verified.stderr).toContain('issuer "issuer://rc" may not vouch for "agent://rc/tools" (ERR_NAME_CONSTRAINT)');
    expect((await cliInProcess(['trust', 'add-issuer', file, issuer.pubFile, '--unconstrained'])).code).toBe(0);
    expect(json().issuers[0]!.constraints).toBeUndefined();
    expect((await cliInProcess(['credential', 'verify', server.cred, '--trust', file])).code).toBe(0);
    const bad = await cliInProcess(['trust', 'add-issuer', file, issuer.pubFile, '--constrain', 'agent://*.rc/']);
    expect(bad.code).toBe(2);
    expectOneLineError(bad.stderr, 'ERR_USAGE');
    expect(bad.stderr).toContain('--constrain[0] may use "*" only as a final "/*"');
  });
});

describe('connect --expect-prefix, serve --endpoint, connect --endpoint', () => {
  let gateway: CliProcess;
  let url: string;
  beforeAll(async () => {
    ({ gateway, url } = await startGateway(['--identity', server.key, '--trust', trust, '--path', '/mcp', '--endpoint', 'svc:rc-tools', '--endpoint', '/mcp'], [process.execPath, LINE_SERVER]));
    if (!url.endsWith('/mcp')) url = `${url.replace(/\/$/, '')}/mcp`;
  }, 60_000);
  afterAll(() => gateway.stop());

  it('a server id within --expect-prefix is accepted; outside it, refused with ERR_NAME_CONSTRAINT', async () => {
    const ok = await bridge(url, ['--expect-prefix', 'agent://rc/']);
    expect(ok.answer!['result'], `${JSON.stringify(ok.answer)} ${ok.stderr}`).toBeDefined();
    ok.process.child.stdin!.end();
    expect(await ok.process.exited).toBe(0);
    const refused = await bridge(url, ['--expect-prefix', 'agent://rc/tools/']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('ERR_NAME_CONSTRAINT');
    const usage = await cli(['connect', url, '--identity', alice.key, '--trust', trust, '--expect-prefix', 'agent://rc/', '--any-server']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('not both');
  }, 90_000);

  it('the endpoint named with --endpoint is checked against serve --endpoint', async () => {
    const named = await bridge(url, ['--expect', SERVER_ID, '--endpoint', 'svc:rc-tools']);
    expect(named.answer!['result'], `${JSON.stringify(named.answer)} ${named.stderr}`).toBeDefined();
    named.process.child.stdin!.end();
    expect(await named.process.exited).toBe(0);
    const other = await bridge(url, ['--expect', SERVER_ID, '--endpoint', 'svc:billing']);
    expect(other.code).toBe(1);
    // The refusal comes before any keys: the bridge hears a plaintext (unauthenticated) alert 100,
    // still ERR_PEER_ABORTED, with a hint at what to check, marked unauthenticated.
    expect(other.stderr).toContain('the server refused the endpoint "svc:billing" (unauthenticated alert 100, endpointMismatch: a plaintext alert, which anyone on the path could have sent)');
    expect(other.stderr).toContain("check --endpoint against the gateway's serve --endpoint (ERR_PEER_ABORTED)");
    expect(other.answer!['error']).toMatchObject({ message: expect.stringContaining('check --endpoint') });
    await gateway.waitForStderr(/ERR_ENDPOINT_MISMATCH/);
    const bad = await cli(['connect', url, '--identity', alice.key, '--trust', trust, '--expect', SERVER_ID, '--endpoint', 'no spaces please']);
    expect(bad.code).toBe(2);
  }, 90_000);

  it('connect --any-server warns once, in the flags\' words (no second SecurityWarning from the library)', async () => {
    const any = await bridge(url, ['--any-server']);
    expect(any.answer!['result'], `${JSON.stringify(any.answer)} ${any.stderr}`).toBeDefined();
    any.process.child.stdin!.end();
    expect(await any.process.exited).toBe(0);
    const warnings = any.stderr.split('\n').filter((l) => /warning/i.test(l));
    expect(warnings).toEqual([expect.stringContaining('pqmcp connect: warning: --any-server: ANY server your trust file vouches for is accepted')]);
    expect(any.stderr).not.toContain('SecurityWarning');
    expect(any.stderr).not.toContain('PQMCP_ALLOW_ANY_SERVER');
  }, 90_000);
});
