/**
 * Resumption through the CLI, with real processes: `pqmcp ticket-keys`, a gateway with
 * --ticket-keys, and a bridge with --tickets whose second launch resumes from the 0600
 * ticket file the first one left.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliProcess, LINE_SERVER, cli, cliInProcess, killAll, metric, parsePrometheus, startGateway, tempDir, writeAgent, writeIssuer, writeTrust } from './helpers.js';
import type { Files } from './helpers.js';

const SERVER_ID = 'agent://rs-test/gateway';
const tmp = tempDir('resumption');
let trust: string;
let server: Files;
let alice: Files;
let bob: Files;

const INIT = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };

beforeAll(() => {
  const issuer = writeIssuer(tmp.dir, 'issuer://rs-test', 'issuer');
  server = writeAgent(tmp.dir, issuer, SERVER_ID, 'gateway');
  alice = writeAgent(tmp.dir, issuer, 'agent://rs-test/alice', 'alice', { scopes: ['tools:call'] });
  bob = writeAgent(tmp.dir, issuer, 'agent://rs-test/bob', 'bob', { scopes: ['tools:call'] });
  trust = writeTrust(join(tmp.dir, 'trust.json'), issuer);
});

afterAll(() => {
  killAll();
  tmp.remove();
});

const mode = (path: string): number => statSync(path).mode & 0o777;

describe('pqmcp ticket-keys', () => {
  it('create writes a 0600 key file, rotate puts a fresh key first and keeps --keep previous, show never prints keys', async () => {
    const file = join(tmp.dir, 'keys-a.json');
    expect((await cli(['ticket-keys', 'create', file])).code).toBe(0);
    expect(mode(file)).toBe(0o600);
    const first = JSON.parse(readFileSync(file, 'utf8')) as { keys: { id: string; key: string }[] };
    expect(first.keys).toHaveLength(1);
    expect((await cli(['ticket-keys', 'create', file])).code).not.toBe(0); // no overwrite without --force
    expect((await cli(['ticket-keys', 'rotate', file, '--keep', '1'])).code).toBe(0);
    const rotated = JSON.parse(readFileSync(file, 'utf8')) as { keys: { id: string }[] };
    expect(rotated.keys.map((k) => k.id).slice(1)).toEqual([first.keys[0]!.id]);
    expect(mode(file)).toBe(0o600);
    const shown = await cli(['ticket-keys', 'show', file]);
    expect(shown.stdout).toContain(rotated.keys[0]!.id);
    expect(shown.stdout).not.toContain(first.keys[0]!.key);
  });

  it('a gateway refuses a ticket key file others can read, and a malformed one', async () => {
    const loose = join(tmp.dir, 'keys-loose.json');
    writeFileSync(loose, readFileSync(join(tmp.dir, 'keys-a.json')), { mode: 0o644 });
    const r = await cli(['serve', '--identity', server.key, '--trust', trust, '--listen', '127.0.0.1:0', '--ticket-keys', loose, '--', process.execPath, LINE_SERVER]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('chmod 600');
    const bad = join(tmp.dir, 'keys-bad.json');
    writeFileSync(bad, '{"version":1,"keys":[]}', { mode: 0o600 });
    const r2 = await cli(['serve', '--identity', server.key, '--trust', trust, '--listen', '127.0.0.1:0', '--ticket-keys', bad, '--', process.execPath, LINE_SERVER]);
    expect(r2.code).toBe(2);
  });
});

describe('pqmcp connect --tickets', () => {
  it("a desktop client's second launch resumes from the ticket file the first one left; the gateway's metrics count the resumption", async () => {
    const keys = join(tmp.dir, 'keys-b.json');
    expect((await cliInProcess(['ticket-keys', 'create', keys])).code).toBe(0); // set-up: the first test runs ticket-keys as a process
    const { gateway, url } = await startGateway(['--identity', server.key, '--trust', trust, '--ticket-keys', keys, '--metrics', '127.0.0.1:0'], [process.execPath, LINE_SERVER]);
    const metricsUrl = (await gateway.waitForStderr(/metrics on (http:\/\/\S+)\/metrics/))[1]!;
    const tickets = join(tmp.dir, 'alice.tickets.json');
    const launch = async (): Promise<string> => {
      const bridge = new CliProcess(['connect', url, '--identity', alice.key, '--trust', trust, '--expect', SERVER_ID, '--tickets', tickets]);
      bridge.write(INIT);
      await bridge.waitForMessage((m) => m['id'] === 0);
      // The ticket arrives right after the handshake; give it to the file, then end stdin.
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        try {
          if (Object.keys((JSON.parse(readFileSync(tickets, 'utf8')) as { servers: object }).servers).length > 0) break;
        } catch {
          // not written yet
        }
        await new Promise((r) => setTimeout(r, 25));
      }
      bridge.child.stdin!.end();
      expect(await bridge.exited).toBe(0);
      return bridge.stderr;
    };
    // The bridge's own "connected" line says whether it resumed (the gateway's log is not the user's).
    expect(await launch()).toMatch(/connected to agent:\/\/\S+ \(key \w+, issuer \S+\) at ws:\/\/\S+; PQMCP_/);
    expect(mode(tickets)).toBe(0o600);
    const firstFile = readFileSync(tickets, 'utf8');
    await gateway.waitForStderr(/session \S+ started: agent:\/\/rs-test\/alice/);
    expect(await launch()).toMatch(/connected to agent:\/\/\S+ \(key \w+, issuer \S+\) at ws:\/\/\S+, resumed \(no signatures; a fresh key exchange\); PQMCP_/);
    await gateway.waitForStderr(/session \S+ started \(resumed\): agent:\/\/rs-test\/alice/);
    const metrics = parsePrometheus(await (await fetch(`${metricsUrl}/metrics`)).text());
    expect(metric(metrics, 'pqmcp_handshakes_total', { outcome: 'ok', reason: 'ok' })).toBe(2);
    expect(metric(metrics, 'pqmcp_handshakes_resumed_total', { role: 'server' })).toBe(1);
    expect([...metrics.keys()].filter((k) => k.startsWith('pqmcp_tickets_withheld_total'))).toEqual([]);
    // The used ticket is gone, a fresh one replaced it.
    const secondFile = readFileSync(tickets, 'utf8');
    expect(secondFile).not.toBe(firstFile);
    expect(mode(tickets)).toBe(0o600);
    await gateway.stop();
  });

  it('two bridges running at the same time with one ticket file (one per identity, as a desktop host launches them) both keep their ticket (R17-3)', async () => {
    const keys = join(tmp.dir, 'keys-d.json');
    expect((await cliInProcess(['ticket-keys', 'create', keys])).code).toBe(0);
    const { gateway, url } = await startGateway(['--identity', server.key, '--trust', trust, '--ticket-keys', keys], [process.execPath, LINE_SERVER]);
    const tickets = join(tmp.dir, 'shared.tickets.json');
    const held = (): string[] => {
      try {
        const servers = (JSON.parse(readFileSync(tickets, 'utf8')) as { servers: Record<string, { clientCredentialHash: string }[]> }).servers;
        return Object.values(servers).flatMap((list) => list.map((t) => t.clientCredentialHash));
      } catch {
        return []; // not written yet
      }
    };
    // Both start (and read the still missing file) before either has a ticket to write.
    const bridges = [alice, bob].map((who) => new CliProcess(['connect', url, '--identity', who.key, '--trust', trust, '--expect', SERVER_ID, '--tickets', tickets]));
    for (const bridge of bridges) bridge.write(INIT);
    await Promise.all(bridges.map((bridge) => bridge.waitForMessage((m) => m['id'] === 0)));
    const deadline = Date.now() + 10_000;
    while (new Set(held()).size < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    for (const bridge of bridges) bridge.child.stdin!.end();
    expect(await Promise.all(bridges.map((bridge) => bridge.exited))).toEqual([0, 0]);
    expect(new Set(held()).size).toBe(2); // one ticket per identity: neither bridge dropped the other's
    expect(mode(tickets)).toBe(0o600);
    await gateway.stop();
  });

  it('a corrupt ticket file is reported and replaced, never fatal', async () => {
    const keys = join(tmp.dir, 'keys-c.json');
    expect((await cliInProcess(['ticket-keys', 'create', keys])).code).toBe(0); // set-up: the first test runs ticket-keys as a process
    const { gateway, url } = await startGateway(['--identity', server.key, '--trust', trust, '--ticket-keys', keys], [process.execPath, LINE_SERVER]);
    const tickets = join(tmp.dir, 'corrupt.tickets.json');
    // Damaged contents in a store's shape (a file that is not a store at all is refused: user-mistakes.test.ts).
    writeFileSync(tickets, '{"version":1,"servers":[1]}', { mode: 0o600 });
    const bridge = new CliProcess(['connect', url, '--identity', alice.key, '--trust', trust, '--expect', SERVER_ID, '--tickets', tickets]);
    bridge.write(INIT);
    await bridge.waitForMessage((m) => m['id'] === 0);
    await bridge.waitForStderr(/is not a ticket store; starting without tickets/);
    bridge.child.stdin!.end();
    expect(await bridge.exited).toBe(0);
    await gateway.stop();
  });
});
