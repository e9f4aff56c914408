/**
 * The client's ticket file (`pqmcp connect --tickets`, FileTicketStore): it holds PSKs, so a
 * file the group or others can read is not used and is replaced by an empty 0600 one, loudly
 * (review F10); a private one loads.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileTicketStore } from '../../src/cli/tickets.js';
import { LOCK_WAIT_MS } from '../../src/pins/lock.js';
import { MemoryTicketStore } from '../../src/resumption/client-tickets.js';
import { tempDir } from './helpers.js';

const tmp = tempDir('ticket-file');
afterAll(() => tmp.remove());

const KEY = 'agent://acme/server ws://127.0.0.1:1/mcp';
function storeJson(): string {
  const store = new MemoryTicketStore();
  const ticket = { ticket: new Uint8Array(64).fill(1), psk: new Uint8Array(32).fill(2), suite: 1, expiresAt: Math.floor(Date.now() / 1000) + 3600, serverCredential: new Uint8Array(16).fill(3), clientCredentialHash: new Uint8Array(32).fill(4) };
  store.put(KEY, ticket);
  return JSON.stringify(store.toJSON());
}

describe.skipIf(process.platform === 'win32')('FileTicketStore and file modes', () => {
  it('a ticket file the group or others can read is not used: warned about and replaced by an empty 0600 file', () => {
    const path = join(tmp.dir, 'loose.json');
    writeFileSync(path, storeJson(), { mode: 0o644 });
    chmodSync(path, 0o644);
    const warnings: string[] = [];
    const store = new FileTicketStore(path, (t) => warnings.push(t));
    expect(store.count(KEY)).toBe(0);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/accessible by group or others \(mode 0644\).*NOT used/);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ version: 1, servers: {} });
  });

  it('a private (0600) ticket file loads without a warning', () => {
    const path = join(tmp.dir, 'private.json');
    writeFileSync(path, storeJson(), { mode: 0o600 });
    const warnings: string[] = [];
    const store = new FileTicketStore(path, (t) => warnings.push(t));
    expect(warnings).toEqual([]);
    expect(store.count(KEY)).toBe(1);
  });
});

describe.skipIf(process.platform === 'win32')('FileTicketStore shared by processes running at the same time (R17-3)', () => {
  const SERVER_A = 'agent://acme/a ws://127.0.0.1:1/mcp';
  const SERVER_B = 'agent://acme/b ws://127.0.0.1:2/mcp';
  const ticket = (fill: number, expiresAt = Math.floor(Date.now() / 1000) + 3600) => ({ ticket: new Uint8Array(64).fill(fill), psk: new Uint8Array(32).fill(fill + 1), suite: 1, expiresAt, serverCredential: new Uint8Array(16).fill(3), clientCredentialHash: new Uint8Array(32).fill(4) });
  const onDisk = (path: string): Record<string, { ticket: string }[]> => (JSON.parse(readFileSync(path, 'utf8')) as { servers: Record<string, { ticket: string }[]> }).servers;
  const hexOf = (fill: number): string => Buffer.from(new Uint8Array(64).fill(fill)).toString('hex');

  it("two stores on one file, interleaving put and take: both keep their tickets, a ticket taken is gone for both, the file stays 0600 and valid", () => {
    const path = join(tmp.dir, 'shared.json');
    const warnings: string[] = [];
    const one = new FileTicketStore(path, (t) => warnings.push(t));
    const two = new FileTicketStore(path, (t) => warnings.push(t));
    one.put(SERVER_A, ticket(10));
    two.put(SERVER_B, ticket(20)); // two read the file before one wrote: it used to drop 10
    one.put(SERVER_A, ticket(11));
    two.put(SERVER_A, ticket(12));
    expect(onDisk(path)[SERVER_A]!.map((t) => t.ticket)).toEqual([hexOf(10), hexOf(11), hexOf(12)]);
    expect(onDisk(path)[SERVER_B]!.map((t) => t.ticket)).toEqual([hexOf(20)]);
    // one takes the newest ticket for A (two's): two must not be offered it again.
    expect(one.take(SERVER_A, Date.now())?.ticket).toEqual(ticket(12).ticket);
    expect(two.take(SERVER_A, Date.now())?.ticket).toEqual(ticket(11).ticket);
    expect(one.take(SERVER_A, Date.now())?.ticket).toEqual(ticket(10).ticket);
    expect(two.take(SERVER_A, Date.now())).toBeUndefined();
    // B's ticket, put by two, is there for one, once.
    expect(one.take(SERVER_B, Date.now())?.ticket).toEqual(ticket(20).ticket);
    expect(two.take(SERVER_B, Date.now())).toBeUndefined();
    expect(onDisk(path)).toEqual({});
    const third = new FileTicketStore(path, (t) => warnings.push(t));
    expect(third.count(SERVER_A) + third.count(SERVER_B)).toBe(0);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(warnings).toEqual([]);
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it('after the merge the bounds still hold (4 per server, oldest dropped), and an object put in this process is the one taken back', () => {
    const path = join(tmp.dir, 'bounded.json');
    const one = new FileTicketStore(path, () => undefined);
    const two = new FileTicketStore(path, () => undefined);
    for (let i = 0; i < 6; i++) (i % 2 === 0 ? one : two).put(SERVER_A, ticket(30 + i));
    expect(onDisk(path)[SERVER_A]!.map((t) => t.ticket)).toEqual([32, 33, 34, 35].map(hexOf));
    const mine = ticket(40);
    one.put(SERVER_A, mine);
    two.put(SERVER_B, ticket(41)); // the file changes under one
    expect(one.take(SERVER_A, Date.now())).toBe(mine);
    expect(onDisk(path)[SERVER_A]).toHaveLength(3);
  });

  it('a stale lock (its holder gone) does not block: it is broken and the change written', () => {
    const path = join(tmp.dir, 'stale.json');
    const one = new FileTicketStore(path, () => undefined);
    writeFileSync(`${path}.lock`, `999999999\n${hostname()}\n${Date.now()}\nfeedfacefeedface\n`, { mode: 0o600 });
    const warnings: string[] = [];
    const two = new FileTicketStore(path, (t) => warnings.push(t));
    two.put(SERVER_A, ticket(50));
    expect(warnings).toEqual([]);
    expect(one.take(SERVER_A, Date.now())?.ticket).toEqual(ticket(50).ticket);
    expect(existsSync(`${path}.lock`)).toBe(false);
  });
  it('a lock a live process keeps (past LOCK_WAIT_MS) is reported, not waited for without end: the change is kept in memory, the file left as it is', () => {
    const path = join(tmp.dir, 'busy.json');
    new FileTicketStore(path, () => undefined).put(SERVER_A, ticket(60));
    const before = readFileSync(path, 'utf8');
    const warnings: string[] = [];
    const store = new FileTicketStore(path, (t) => warnings.push(t));
    writeFileSync(`${path}.lock`, `${process.pid}\n${hostname()}\n${Date.now()}\nfeedfacefeedface\n`, { mode: 0o600 });
    const started = Date.now();
    try {
      store.put(SERVER_B, ticket(61));
    } finally {
      unlinkSync(`${path}.lock`);
    }
    expect(Date.now() - started).toBeGreaterThanOrEqual(LOCK_WAIT_MS - 50);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/busy\.json not updated \(.*being written by another process.*\); this change is kept in memory only/);
    expect(store.count(SERVER_A)).toBe(1);
    expect(store.count(SERVER_B)).toBe(1);
    expect(readFileSync(path, 'utf8')).toBe(before);
  }, 15_000);
});

describe.skipIf(process.platform === 'win32')('FileTicketStore in two real processes at the same time (R17-3)', () => {
  it("two node processes each putting 20 tickets for their own server on one file, interleaved: each server's newest 4 are there (the per-server bound), none lost to the other process", async () => {
    const path = join(tmp.dir, 'two-processes.json');
    const moduleUrl = new URL('../../src/cli/tickets.ts', import.meta.url).href;
    const script = (server: string, base: number) => `
      const { FileTicketStore } = await import(${JSON.stringify(moduleUrl)});
      const store = new FileTicketStore(${JSON.stringify(path)}, (t) => { process.stderr.write(t + '\\n'); });
      // Both have read the file before either writes: wait for the test's go.
      process.stdout.write('ready\\n');
      await new Promise((r) => process.stdin.once('data', r));
      for (let i = 0; i < 20; i++) {
        store.put(${JSON.stringify(server)}, { ticket: new Uint8Array(64).fill(${base} + i), psk: new Uint8Array(32).fill(1), suite: 1, expiresAt: Math.floor(Date.now() / 1000) + 3600, serverCredential: new Uint8Array(16).fill(3), clientCredentialHash: new Uint8Array(32).fill(4) });
        await new Promise((r) => setTimeout(r, 2));
      }`;
    const start = (server: string, base: number) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(server, base)], { cwd: new URL('../..', import.meta.url).pathname, stdio: ['pipe', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const ready = new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      const exited = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
      return { child, ready, exited };
    };
    const both = [start('server-a', 100), start('server-b', 200)];
    await Promise.all(both.map((p) => p.ready));
    for (const p of both) p.child.stdin.end('go\n');
    const [a, b] = await Promise.all(both.map((p) => p.exited));
    expect(a).toEqual({ code: 0, stderr: '' });
    expect(b).toEqual({ code: 0, stderr: '' });
    const servers = (JSON.parse(readFileSync(path, 'utf8')) as { servers: Record<string, { ticket: string }[]> }).servers;
    const hex = (fill: number): string => Buffer.from(new Uint8Array(64).fill(fill)).toString('hex');
    expect(servers['server-a']!.map((t) => t.ticket)).toEqual([116, 117, 118, 119].map(hex));
    expect(servers['server-b']!.map((t) => t.ticket)).toEqual([216, 217, 218, 219].map(hex));
    expect(statSync(path).mode & 0o777).toBe(0o600);
  }, 30_000);
});
