/**
 * The client's ticket file (`pqmcp connect --tickets`, FileTicketStore): it holds PSKs, so a
 * file the group or others can read is not used and is replaced by an empty 0600 one, loudly
 * (review F10); a private one loads.
 */
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileTicketStore } from '../../src/cli/tickets.js';
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
