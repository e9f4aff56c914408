/**
 * Writers of one pin file at once (review 9, P4): `pqmcp connect --pins` bridges and
 * `pqmcp pins approve` read, change and write back the same file. Real processes racing,
 * an approval made while a listing is being checked, and the lock's stale and busy cases.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FilePinStore, toolDefinition, toolHash, toolPinning } from '../../src/pins/index.js';
import type { PinEvent, PinnedServer } from '../../src/pins/index.js';
import { FileReadError } from '../../src/errors.js';
import { pinSession } from '../helpers/pin-session.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const WRITER = join(ROOT, 'test/pins/fixtures/pin-writer.ts');
const LOADER = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const SERVER = 'agent://pqmcp-test/shared';

function run(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--import', LOADER, WRITER, ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('close', (code) => done({ code, stderr }));
  });
}

/** The server every writer pins, as a session of the hook sees it. */
const PEER = { agentId: SERVER, fingerprint: 'ab'.repeat(32), issuer: 'issuer://pqmcp-test' };

describe('writers of one pin file (review 9, P4)', () => {
  it('three processes pinning tools of one server at once lose none of them', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pqmcp-pins-writers-'));
    const path = join(dir, 'pins.json');
    const barrier = join(dir, 'ready');
    mkdirSync(barrier);
    const count = 30;
    const writers = ['a', 'b', 'c'];
    const results = await Promise.all(writers.map((w) => run([path, w, String(count), barrier, String(writers.length)])));
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const entry = new FilePinStore(path).get(SERVER)!;
    const want = writers.flatMap((w) => Array.from({ length: count }, (_, i) => `${w}-${i}`)).sort();
    expect(Object.keys(entry.tools).sort()).toEqual(want);
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it('an approval made while a listing is checked is not undone by the listing\'s write', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'pqmcp-pins-approve-race-')), 'pins.json');
    const held = { name: 'read', description: 'read a file' };
    const entry: PinnedServer = {
      agentId: SERVER,
      issuer: 'issuer://pqmcp-test',
      keys: [{ fingerprint: 'ab'.repeat(32), issuer: 'issuer://pqmcp-test', firstSeen: '2026-12-01T00:00:00.000Z' }],
      tools: {},
      held: { read: { hash: toolHash(held), definition: toolDefinition(held) as Record<string, unknown>, seenAt: '2026-12-01T00:00:00.000Z', reason: 'new' } },
    };
    new FilePinStore(path).put(SERVER, entry);
    // `pqmcp pins approve` runs while the bridge checks a listing: inside the check's first
    // run (PinStore.update's callback, given the entry read before the approval; outside the
    // lock), so the write must come from a run on the file re-read under the lock. (From
    // onEvent, as this test did, the approval came after the write: a store writing the
    // first run's stale entry passed it, R10-10.)
    const approved: string[][] = [];
    class ApprovedMeanwhile extends FilePinStore {
      override update(server: string, fn: (entry: PinnedServer | undefined) => PinnedServer | undefined): void {
        let runs = 0;
        super.update(server, (entry) => {
          if (runs++ === 0) approved.push(new FilePinStore(path).approve(SERVER, ['read']));
          return fn(entry);
        });
      }
    }
    const events: PinEvent[] = [];
    const hook = toolPinning({ store: new ApprovedMeanwhile(path), onEvent: (e: PinEvent) => void events.push(e) });
    pinSession(hook, PEER, 's1').answer([{ name: 'fetch', description: 'fetch a page' }]);
    expect(approved).toEqual([['read']]);
    expect(events.map((e) => e.kind)).toContain('pinned');
    const after = new FilePinStore(path).get(SERVER)!;
    expect(Object.keys(after.tools).sort()).toEqual(['fetch', 'read']);
    expect(after.held).toEqual({});
  });

  it('a lock left by a process that is gone, or older than LOCK_STALE_MS, is broken; a live one makes a writer fail with ERR_FILE_READ, the file unchanged, and a reader that changes nothing pass', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'pqmcp-pins-lock-')), 'pins.json');
    const store = new FilePinStore(path);
    const fetch = { name: 'fetch', description: 'fetch a page' };
    const entry: PinnedServer = {
      agentId: SERVER,
      issuer: 'issuer://pqmcp-test',
      keys: [{ fingerprint: 'ab'.repeat(32), issuer: 'issuer://pqmcp-test', firstSeen: '2026-12-01T00:00:00.000Z' }],
      tools: { fetch: { hash: toolHash(fetch), definition: toolDefinition(fetch) as Record<string, unknown>, pinnedAt: '2026-12-01T00:00:00.000Z' } },
      held: {},
    };
    store.put(SERVER, entry);
    const lock = `${path}.lock`;
    // A process of this host that has exited.
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeFileSync(lock, `${gone}\n${hostname()}\n${Date.now()}\nfeed\n`);
    store.put(SERVER, { ...entry, manifest: 'aa'.repeat(32) });
    expect(new FilePinStore(path).get(SERVER)!.manifest).toBe('aa'.repeat(32));
    expect(existsSync(lock)).toBe(false);
    // Another host's lock (its holder cannot be asked) is stale once old.
    writeFileSync(lock, `1\nelsewhere.example\n0\nfeed\n`);
    utimesSync(lock, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    const newer = { fingerprint: 'cd'.repeat(32), issuer: 'issuer://pqmcp-test', firstSeen: '2026-12-02T00:00:00.000Z' };
    store.put(SERVER, { ...entry, keys: [...entry.keys, newer] });
    expect(new FilePinStore(path).get(SERVER)!.keys).toEqual([...entry.keys, newer]);
    // A live holder (this very process): the writer waits, then gives up; nothing is written.
    const text = readFileSync(path, 'utf8');
    writeFileSync(lock, `${process.pid}\n${hostname()}\n${Date.now()}\nfeed\n`);
    const err = (() => {
      try {
        store.put(SERVER, { ...entry, manifest: 'cc'.repeat(32) });
      } catch (e) {
        return e as FileReadError;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(FileReadError);
    // A listing that changes nothing takes no lock (a read-only pin file serves too): it passes.
    expect(pinSession(toolPinning({ store: new FilePinStore(path) }), PEER, 's2').list([fetch])).toEqual(['fetch']);
    expect(err?.code).toBe('ERR_FILE_READ');
    expect(err?.message).toContain(`being written by another process (lock ${lock}, pid ${process.pid} on ${hostname()}`);
    expect(readFileSync(path, 'utf8')).toBe(text);
    expect(readFileSync(lock, 'utf8')).toContain('feed'); // not its own: left alone
  });
});
