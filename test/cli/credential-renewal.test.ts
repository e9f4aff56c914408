/**
 * The gateway's own credential, end to end: a real `pqmcp serve` (--json, --metrics) whose
 * credential ends in three days says so at start and on /metrics; the issuer renews it with
 * `pqmcp credential issue --agent <its .cred.json>`; SIGHUP makes new handshakes present the
 * renewed one while the open session goes on; a key file that now holds another key, and a
 * credential that has ended, are refused on SIGHUP and the renewed credential stays in use;
 * past its end /readyz answers 503 until a renewal.
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { decodeCredentialFile, encodeCredentialFile } from '../../src/identity/formats.js';
import { issueCredential } from '../../src/identity/credential.js';
import { PqmcpClientTransport } from '../../src/transport/index.js';
import { makeAgent, fixtureCrypto, trustFor } from '../helpers/identities.js';
import type { Issuer } from '../helpers/identities.js';
import { CliProcess, LINE_SERVER, cli, killAll, metric, parsePrometheus, startGateway, tempDir, writeAgent, writeIssuer, writeTrust } from './helpers.js';
import type { Files } from './helpers.js';

const SERVER_ID = 'agent://renewal-test/gateway';
const CLIENT_ID = 'agent://renewal-test/client';
const tmp = tempDir('renewal');
const NOW = Math.floor(Date.now() / 1000);
let issuer: Issuer & { keyFile: string };
let server: Files;
let gateway: CliProcess;
let url: string;
let metricsUrl: string;

beforeAll(async () => {
  issuer = writeIssuer(tmp.dir, 'issuer://renewal-test', 'issuer');
  server = writeAgent(tmp.dir, issuer, SERVER_ID, 'gateway', { usage: 'server', notBefore: NOW - 60, notAfter: NOW + 3 * 86400 });
  const trust = writeTrust(join(tmp.dir, 'trust.json'), issuer);
  ({ gateway, url } = await startGateway(['--identity', server.key, '--trust', trust, '--json', '--metrics', '127.0.0.1:0'], [process.execPath, LINE_SERVER]));
  metricsUrl = JSON.parse((await gateway.waitForStderr(/\{[^\n]*"event":"metrics"[^\n]*\}/))[0]).url as string;
});

afterAll(() => {
  killAll();
  tmp.remove();
});

/** The gateway's JSON log lines of one event, in order. */
function events(name: string): Record<string, unknown>[] {
  return gateway.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((e) => e['event'] === name);
}

async function waitForEvents(name: string, count: number): Promise<Record<string, unknown>[]> {
  await gateway.waitForStderr(new RegExp(`(?:"event":"${name}"[^\\n]*\\n[^]*){${count}}`));
  return events(name);
}

async function session() {
  const identity = makeAgent(fixtureCrypto(), issuer, CLIENT_ID).identity;
  const transport = new PqmcpClientTransport(url, { identity, trust: trustFor(issuer), expectedServerId: SERVER_ID });
  const client = new Client({ name: 'renewal-test', version: '1.0.0' });
  await client.connect(transport);
  const echo = async (text: string) => ((await client.callTool({ name: 'echo', arguments: { text } })) as CallToolResult).content;
  return { client, serial: transport.peer!.serial, notAfter: transport.peer!.notAfter, echo };
}

const scrapeNotAfter = async (): Promise<number> => metric(parsePrometheus(await (await fetch(`${metricsUrl}/metrics`)).text()), 'pqmcp_credential_not_after_seconds');
const serialOf = (file: string): string => Buffer.from(decodeCredentialFile(JSON.parse(readFileSync(file, 'utf8')), file).serial).toString('hex');

describe("pqmcp serve: the gateway's own credential", () => {
  it('says at start that it ends in three days, once, and shows its end on /metrics', async () => {
    const [expiring] = await waitForEvents('credential-expiring', 1);
    expect(expiring).toMatchObject({ notAfter: new Date((NOW + 3 * 86400) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') });
    expect(expiring!['secondsLeft']).toBeGreaterThan(3 * 86400 - 120);
    expect(expiring!['secondsLeft']).toBeLessThanOrEqual(3 * 86400);
    // After the listening line, and only one (not one per threshold already passed).
    const lines = gateway.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { event: string }).event);
    expect(lines.indexOf('credential-expiring')).toBeGreaterThan(lines.indexOf('listening'));
    expect(events('credential-expiring')).toHaveLength(1);
    expect(await scrapeNotAfter()).toBe(NOW + 3 * 86400);
  });

  it('SIGHUP after `pqmcp credential issue --agent` renewed it: new handshakes present the renewed one, the open session goes on', async () => {
    const before = await session();
    expect(before.serial).toBe(serialOf(server.cred));
    const issued = await cli(['credential', 'issue', '--issuer', issuer.keyFile, '--agent', server.cred, '--usage', 'server', '--valid-for', '30d', '--force']);
    expect(issued.code, issued.stderr).toBe(0);
    const renewedSerial = serialOf(server.cred);
    expect(renewedSerial).not.toBe(before.serial);

    // Two SIGHUPs 5 ms apart (the kernel merges two pending ones, so not closer): reloads run
    // one after the other, and only the first renews (overlapping ones both renewed).
    const reloadsBefore = events('reloaded').length;
    gateway.child.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, 5));
    gateway.child.kill('SIGHUP');
    await waitForEvents('reloaded', reloadsBefore + 1);
    await new Promise((r) => setTimeout(r, 1000)); // a second reload, if any, has finished
    const [renewed] = await waitForEvents('credential-renewed', 1);
    expect(events('credential-renewed')).toHaveLength(1);
    expect(renewed).toMatchObject({ serial: renewedSerial });
    const after = await session();
    expect(after.serial).toBe(renewedSerial);
    expect(after.notAfter).toBeGreaterThan(NOW + 29 * 86400);
    expect(await scrapeNotAfter()).toBe(after.notAfter);
    expect(await before.echo('still here')).toEqual([{ type: 'text', text: 'echo: still here' }]);
    expect(events('reload-failed')).toEqual([]);
    // The renewed credential is 30 days out: no warning for it.
    expect(events('credential-expiring')).toHaveLength(1);
    await before.client.close();
    await after.client.close();
  });

  it('SIGHUP with another key in the key file, or a credential that has ended: refused, the renewed credential stays', async () => {
    const inUse = serialOf(server.cred);
    const saved = { key: readFileSync(server.key), cred: readFileSync(server.cred) };
    // Another key (with its own valid credential) under the same file names.
    const other = writeAgent(tmp.dir, issuer, SERVER_ID, 'other-gateway', { usage: 'server' });
    copyFileSync(other.key, server.key);
    copyFileSync(other.cred, server.cred);
    gateway.child.kill('SIGHUP');
    let [failed] = await waitForEvents('reload-failed', 1);
    expect(String(failed!['error'])).toMatch(/another key.*a new key needs a restart/);
    expect((await session()).serial).toBe(inUse);

    // The right key, a credential for it that has ended.
    writeFileSync(server.key, saved.key, { mode: 0o600 });
    const publicKey = decodeCredentialFile(JSON.parse(saved.cred.toString('utf8')), server.cred).publicKey;
    const ended = issueCredential(fixtureCrypto(), issuer, { agentId: SERVER_ID, publicKey, usage: 'server', notBefore: NOW - 7200, notAfter: NOW - 3600 });
    writeFileSync(server.cred, JSON.stringify(encodeCredentialFile(ended.encoded)));
    gateway.child.kill('SIGHUP');
    [, failed] = await waitForEvents('reload-failed', 2);
    expect(String(failed!['error'])).toMatch(/expired/);
    const s = await session();
    expect(s.serial).toBe(inUse);
    expect(await s.echo('served')).toEqual([{ type: 'text', text: 'echo: served' }]);
    await s.client.close();
    expect(events('credential-renewed')).toHaveLength(1);
  });
  it('past its end, /readyz answers 503 "credential expired" (no handshake can complete); a renewal on SIGHUP makes it ready again', async () => {
    const publicKey = decodeCredentialFile(JSON.parse(readFileSync(server.cred, 'utf8')), server.cred).publicKey;
    const renewTo = (notAfter: number): void => {
      const c = issueCredential(fixtureCrypto(), issuer, { agentId: SERVER_ID, publicKey, usage: 'server', notBefore: NOW - 60, notAfter });
      writeFileSync(server.cred, JSON.stringify(encodeCredentialFile(c.encoded)));
    };
    // A credential that ends four seconds from now (room for a slow SIGHUP on a loaded machine).
    const shortEnd = Math.floor(Date.now() / 1000) + 4;
    renewTo(shortEnd);
    gateway.child.kill('SIGHUP');
    await waitForEvents('credential-renewed', 2);
    expect(await scrapeNotAfter()).toBe(shortEnd);
    // Close to its end: one warning (the closest threshold), then the end itself.
    const expiring = await waitForEvents('credential-expiring', 2);
    expect(expiring[1]!['secondsLeft']).toBeLessThanOrEqual(4);
    const [ended] = await waitForEvents('credential-expired', 1);
    expect(ended).toMatchObject({ notAfter: new Date(shortEnd * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') });
    const notReady = await fetch(`${metricsUrl}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.text()).toBe('credential expired\n');
    expect((await fetch(`${metricsUrl}/healthz`)).status).toBe(200);

    renewTo(NOW + 30 * 86400);
    gateway.child.kill('SIGHUP');
    await waitForEvents('credential-renewed', 3);
    const ready = await fetch(`${metricsUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.text()).toBe('ready\n');
    const s = await session();
    expect(s.notAfter).toBe(NOW + 30 * 86400);
    await s.client.close();
  });
});

describe('pqmcp serve: a credential that ends past what Date can hold', () => {
  it('a renewal to notAfter 2^53 - 1 on SIGHUP is taken and logged, and the gateway keeps serving', async () => {
    const publicKey = decodeCredentialFile(JSON.parse(readFileSync(server.cred, 'utf8')), server.cred).publicKey;
    const far = issueCredential(fixtureCrypto(), issuer, { agentId: SERVER_ID, publicKey, usage: 'server', notBefore: NOW - 60, notAfter: 2 ** 53 - 1 });
    writeFileSync(server.cred, JSON.stringify(encodeCredentialFile(far.encoded)));
    const failedBefore = events('reload-failed').length;
    const renewedBefore = events('credential-renewed').length;
    gateway.child.kill('SIGHUP');
    const renewed = await waitForEvents('credential-renewed', renewedBefore + 1);
    expect(renewed.at(-1)).toMatchObject({ notAfter: '9007199254740991 (Unix seconds)' });
    expect(events('reload-failed')).toHaveLength(failedBefore);
    const s = await session();
    expect(s.notAfter).toBe(2 ** 53 - 1);
    expect(await s.echo('far')).toEqual([{ type: 'text', text: 'echo: far' }]);
    await s.client.close();
    expect(gateway.child.exitCode).toBeNull();
  });

  it('a renewal that ends before the credential it replaces is taken, and its log line says so (previousNotAfter); one that ends later says nothing of it', async () => {
    const publicKey = decodeCredentialFile(JSON.parse(readFileSync(server.cred, 'utf8')), server.cred).publicKey;
    const renew = async (notAfter: number) => {
      const c = issueCredential(fixtureCrypto(), issuer, { agentId: SERVER_ID, publicKey, usage: 'server', notBefore: NOW - 60, notAfter });
      writeFileSync(server.cred, JSON.stringify(encodeCredentialFile(c.encoded)));
      const before = events('credential-renewed').length;
      gateway.child.kill('SIGHUP');
      return (await waitForEvents('credential-renewed', before + 1)).at(-1)!;
    };
    // The previous test left 2^53 - 1.
    expect(await renew(NOW + 10 * 86400)).toMatchObject({ notAfter: new Date((NOW + 10 * 86400) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'), previousNotAfter: '9007199254740991 (Unix seconds)' });
    expect(await renew(NOW + 20 * 86400)).not.toHaveProperty('previousNotAfter');
    const s = await session();
    expect(s.notAfter).toBe(NOW + 20 * 86400);
    await s.client.close();
  });
});

describe('pqmcp connect: its own credential', () => {
  it('warns on stderr, once, when it ends within 7 days, and the session works', async () => {
    const client = writeAgent(tmp.dir, issuer, 'agent://renewal-test/short-client', 'short-client', { notBefore: NOW - 60, notAfter: NOW + 2 * 86400 });
    const bridge = new CliProcess(['connect', url, '--identity', client.key, '--trust', join(tmp.dir, 'trust.json'), '--expect', SERVER_ID]);
    bridge.write({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    expect(await bridge.waitForMessage((m) => m['id'] === 0)).toHaveProperty('result');
    await bridge.waitForStderr(/connected to/);
    const warnings = bridge.stderr.split('\n').filter((l) => l.includes('warning: your credential'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^pqmcp connect: warning: your credential \(agent:\/\/renewal-test\/short-client\) expires in 1d 23h \(at \S+Z\); sessions end with it: ask its issuer to renew it/);
    expect(await bridge.stop('SIGTERM')).toBe(0);
  });
});

