/**
 * The identity, credential, trust and revocation commands, run as real `pqmcp` processes:
 * a happy path through every command (in order, each building on the last; each command's
 * first run a process, its further runs in this process, inProcess), then bad
 * input for each: missing and malformed files, expired and revoked credentials, private
 * keys others can read, overwrites, bad flags. Every failure must be one line
 * `pqmcp: <message> (<code>)` with exit code 1 or 2 and no stack (unless --debug), and no
 * output anywhere may contain a private key.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run as runInProcess } from '../../src/cli/run.js';
import { cli, expectOneLineError, killAll, tempDir, writeAgent, writeIssuer, writeTrust } from './helpers.js';
import type { CliResult } from './helpers.js';

const { dir, remove } = tempDir('keys');
const f = (name: string): string => join(dir, name);
/** Every output of every run, checked at the end for private key material. */
const outputs: string[] = [];

async function run(args: string[], options: Parameters<typeof cli>[1] = {}): Promise<CliResult> {
  const r = await cli(args, options);
  outputs.push(r.stdout, r.stderr);
  return r;
}

/**
 * The same CLI in this process: run.ts is everything main.ts executes except setting the
 * exit code. Used for the long table of bad inputs (a process each would cost ~0.4 s of
 * start-up) and a command's further runs on the happy path; the cases marked `process` (and
 * each command's first run on the happy path) run as real processes.
 */
async function inProcess(args: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await runInProcess(args, { out: (t) => void (stdout += t.endsWith('\n') ? t : `${t}\n`), err: (t) => void (stderr += t.endsWith('\n') ? t : `${t}\n`) });
  outputs.push(stdout, stderr);
  return { code, stdout, stderr };
}

function json<T = Record<string, unknown>>(r: CliResult): T {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
}

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

afterAll(() => {
  killAll();
  remove();
});

describe('happy path: issuer, agents, credentials, trust, revocation', () => {
  it('issuer create writes a 0600 private key and a public JWK file, prints the fingerprint', async () => {
    const r = await run(['issuer', 'create', '--id', 'issuer://acme', '--out', f('acme.key.json')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('created issuer issuer://acme');
    expect(mode(f('acme.key.json'))).toBe(0o600);
    expect(mode(f('acme.pub.json'))).toBe(0o644);
    const key = JSON.parse(readFileSync(f('acme.key.json'), 'utf8')) as Record<string, unknown>;
    expect(key).toEqual({ type: 'pqmcp-private-key', version: 1, kind: 'issuer', id: 'issuer://acme', alg: 'MLDSA65-Ed25519', seed: expect.stringMatching(/^[A-Za-z0-9_-]{86}$/) });
    const pub = JSON.parse(readFileSync(f('acme.pub.json'), 'utf8')) as { fingerprint: string; components: Array<Record<string, string>> };
    expect(pub).toMatchObject({ type: 'pqmcp-public-key', version: 1, kind: 'issuer', id: 'issuer://acme', alg: 'MLDSA65-Ed25519', fingerprint: expect.stringMatching(/^[0-9a-f]{64}$/) });
    // RFC 9964 (draft-ietf-cose-dilithium) AKP JWK and RFC 8037 OKP JWK.
    expect(pub.components[0]).toEqual({ kty: 'AKP', alg: 'ML-DSA-65', pub: expect.stringMatching(/^[A-Za-z0-9_-]{2603}$/) });
    expect(pub.components[1]).toEqual({ kty: 'OKP', crv: 'Ed25519', x: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    expect(r.stdout).toContain(pub.fingerprint);
  });

  it('agent create (--json) defaults the file names to the last part of the id', async () => {
    mkdirSync(f('agents'));
    const out = json(await run(['agent', 'create', '--id', 'agent://acme/planner', '--out', f('agents/planner.key.json'), '--json']));
    expect(out).toEqual({ kind: 'agent', id: 'agent://acme/planner', fingerprint: expect.stringMatching(/^[0-9a-f]{64}$/), privateKeyFile: f('agents/planner.key.json'), publicKeyFile: f('agents/planner.pub.json') });
    // No --out: <last part of the id>.key.json and .pub.json in the working directory.
    const tools = await run(['agent', 'create', '--id', 'agent://acme/tools'], { cwd: dir });
    expect(tools.code, tools.stderr).toBe(0);
    expect(mode(f('tools.key.json'))).toBe(0o600);
    expect(existsSync(f('tools.pub.json'))).toBe(true);
  });

  it('key public prints the same public key file that agent create wrote', async () => {
    const r = await run(['key', 'public', f('agents/planner.key.json')]);
    expect(JSON.parse(r.stdout)).toEqual(JSON.parse(readFileSync(f('agents/planner.pub.json'), 'utf8')));
    const w = await inProcess(['key', 'public', f('agents/planner.key.json'), '--out', f('planner-copy.pub.json')]);
    expect(w.code).toBe(0);
    expect(readFileSync(f('planner-copy.pub.json'), 'utf8')).toBe(readFileSync(f('agents/planner.pub.json'), 'utf8'));
  });

  it('credential issue signs the public key with claims and a validity period', async () => {
    const r = await run([
      'credential', 'issue', '--issuer', f('acme.key.json'), '--agent', f('agents/planner.pub.json'),
      '--scope', 'tools:call', '--scope', 'resources:read', '--attr', 'owner=team-a', '--name', 'Planner', '--valid-for', '7d',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`issued credential for agent://acme/planner: ${f('agents/planner.cred.json')}`);
    const c = json<Record<string, unknown>>(await run(['inspect', f('agents/planner.cred.json'), '--json']));
    expect(c).toMatchObject({ type: 'credential', agentId: 'agent://acme/planner', displayName: 'Planner', scopes: ['resources:read', 'tools:call'], attributes: { owner: 'team-a' }, issuer: 'issuer://acme', selfSigned: false, timeStatus: 'current' });
    const days = (Date.parse(c['notAfter'] as string) - Date.parse(c['notBefore'] as string)) / 86_400_000;
    expect(days).toBe(7);
  });

  it('trust add-issuer creates the trust file; list and inspect show it', async () => {
    const r = await run(['trust', 'add-issuer', f('trust.json'), f('acme.pub.json')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('created');
    const pub = JSON.parse(readFileSync(f('acme.pub.json'), 'utf8')) as { fingerprint: string };
    const list = json(await run(['trust', 'list', f('trust.json'), '--json']));
    expect(list).toEqual({ file: f('trust.json'), issuers: [{ id: 'issuer://acme', fingerprint: pub.fingerprint }], pinned: [], revokedSerials: [], revokedKeys: [] });
    const human = await inProcess(['inspect', f('trust.json')]);
    expect(human.stdout).toContain(`issuer://acme  key ${pub.fingerprint}`);
  });

  it('credential verify accepts it (and the expected id), refuses another expected id', async () => {
    const ok = await run(['credential', 'verify', f('agents/planner.cred.json'), '--trust', f('trust.json'), '--expect', 'agent://acme/planner']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^valid: agent:\/\/acme\/planner is vouched for by issuer:\/\/acme/);
    const wrong = await inProcess(['credential', 'verify', f('agents/planner.cred.json'), '--trust', f('trust.json'), '--expect', 'agent://acme/other']);
    expect(wrong.code).toBe(1);
    expectOneLineError(wrong.stderr, 'ERR_UNEXPECTED_PEER');
  });

  it('self-signed credentials verify only once pinned (trust pin)', async () => {
    const created = await inProcess(['agent', 'create', '--id', 'agent://solo/tool', '--out', f('solo.key.json')]);
    expect(created.code).toBe(0);
    const issued = await inProcess(['credential', 'issue', '--self-signed', '--agent', f('solo.key.json'), '--scope', 'tools:call']);
    expect(issued.code, issued.stderr).toBe(0);
    expect(issued.stdout).toContain('(self-signed)');
    const before = await inProcess(['credential', 'verify', f('solo.cred.json'), '--trust', f('trust.json')]);
    expect(before.code).toBe(1);
    expectOneLineError(before.stderr, 'ERR_CREDENTIAL_INVALID');
    const pinned = await run(['trust', 'pin', f('trust.json'), f('solo.pub.json')]);
    expect(pinned.stdout).toContain('for agent://solo/tool');
    const after = await inProcess(['credential', 'verify', f('solo.cred.json'), '--trust', f('trust.json'), '--json']);
    expect(json(after)).toMatchObject({ valid: true, agentId: 'agent://solo/tool', selfSigned: true });
  });

  it('revoke --credential, then verify with --revocations refuses it; add-revocations makes it permanent', async () => {
    const r = await run(['revoke', f('revoked.json'), '--credential', f('agents/planner.cred.json'), '--reason', 'laptop lost']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/created .*revoked credential [0-9a-f]{32} of agent:\/\/acme\/planner from issuer:\/\/acme/);
    const again = await inProcess(['revoke', f('revoked.json'), '--credential', f('agents/planner.cred.json')]);
    expect(again.stdout).toContain('already revoked');
    const refused = await inProcess(['credential', 'verify', f('agents/planner.cred.json'), '--trust', f('trust.json'), '--revocations', f('revoked.json')]);
    expect(refused.code).toBe(1);
    expectOneLineError(refused.stderr, 'ERR_CREDENTIAL_REVOKED');
    const list = json(await inProcess(['inspect', f('revoked.json'), '--json']));
    expect(list).toMatchObject({ type: 'pqmcp-revocations', revokedSerials: [{ issuer: 'issuer://acme', serial: expect.stringMatching(/^[0-9a-f]{32}$/), reason: 'laptop lost' }], revokedKeys: [] });

    await run(['trust', 'add-revocations', f('trust.json'), f('revoked.json')]);
    const still = await inProcess(['credential', 'verify', f('agents/planner.cred.json'), '--trust', f('trust.json')]);
    expect(still.code).toBe(1);
    expectOneLineError(still.stderr, 'ERR_CREDENTIAL_REVOKED');
  });

  it('a renewed credential (--agent <old credential>) has a new serial and verifies', async () => {
    const r = await inProcess(['credential', 'issue', '--issuer', f('acme.key.json'), '--agent', f('agents/planner.cred.json'), '--out', f('agents/planner-2.cred.json'), '--scope', 'tools:call']);
    expect(r.code, r.stderr).toBe(0);
    const ok = await inProcess(['credential', 'verify', f('agents/planner-2.cred.json'), '--trust', f('trust.json')]);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('revoke --key refuses every credential of that key', async () => {
    const r = await inProcess(['revoke', f('revoked.json'), '--key', f('agents/planner.pub.json')]);
    expect(r.stdout).toContain('revoked key');
    const refused = await inProcess(['credential', 'verify', f('agents/planner-2.cred.json'), '--trust', f('trust.json'), '--revocations', f('revoked.json')]);
    expect(refused.code).toBe(1);
    expectOneLineError(refused.stderr, 'ERR_CREDENTIAL_REVOKED');
    expect(refused.stderr).toContain('credential key is revoked');
  });

  it('trust remove --issuer: its credentials are no longer trusted', async () => {
    const r = await run(['trust', 'remove', f('trust.json'), '--issuer', 'issuer://acme']);
    expect(r.stdout).toContain('removed 1 issuer key');
    const refused = await inProcess(['credential', 'verify', f('agents/planner-2.cred.json'), '--trust', f('trust.json')]);
    expect(refused.code).toBe(1);
    expectOneLineError(refused.stderr, 'ERR_UNTRUSTED_ISSUER');
  });

  it('inspect a private key (never its seed) and a public key; trust init; revoke --serial; trust remove --pin', async () => {
    const priv = await inProcess(['inspect', f('acme.key.json')]);
    expect(priv.code, priv.stderr).toBe(0);
    expect(priv.stdout).toMatch(/issuer private key\n {2}id: +issuer:\/\/acme\n/);
    expect(priv.stdout).toContain('seed:        (secret; never shown)');
    const pub = json(await inProcess(['inspect', f('acme.pub.json'), '--json']));
    expect(pub).toMatchObject({ type: 'public-key', kind: 'issuer', id: 'issuer://acme', alg: 'MLDSA65-Ed25519' });

    const init = await run(['trust', 'init', f('empty-trust.json')]);
    expect(init.stdout).toContain('created empty trust file');
    expect(json(await inProcess(['trust', 'list', f('empty-trust.json'), '--json']))).toMatchObject({ issuers: [], pinned: [] });

    const serial = await inProcess(['revoke', f('serials.json'), '--serial', 'C0FFEE', '--issuer', 'issuer://acme']);
    expect(serial.stdout).toContain('revoked serial c0ffee from issuer://acme');

    const solo = JSON.parse(readFileSync(f('solo.pub.json'), 'utf8')) as { fingerprint: string };
    const removed = await inProcess(['trust', 'remove', f('trust.json'), '--pin', solo.fingerprint]);
    expect(removed.stdout).toContain('removed 1 pin');
    const refused = await inProcess(['credential', 'verify', f('solo.cred.json'), '--trust', f('trust.json')]);
    expect(refused.code).toBe(1);
    expectOneLineError(refused.stderr, 'ERR_CREDENTIAL_INVALID');
  });

  it('--version, --help and per-command help', async () => {
    const v = await run(['--version']);
    expect(v.stdout.trim()).toMatch(/^pqmcp \d+\.\d+\.\d+/);
    const h = await run(['--help']);
    expect(h.code).toBe(0);
    for (const c of ['issuer create', 'agent create', 'credential issue', 'trust', 'revoke', 'inspect', 'serve', 'connect']) expect(h.stdout).toContain(c);
    for (const c of [['serve', '--help'], ['connect', '--help'], ['credential', 'issue', '--help'], ['trust', '--help'], ['help', 'revoke']]) {
      const r = c[0] === 'serve' ? await run(c) : await inProcess(c);
      expect(r.code, c.join(' ')).toBe(0);
      expect(r.stdout, c.join(' ')).toMatch(/^usage: pqmcp /);
    }
  });
});

describe.concurrent('bad input: one clear line, exit 1 or 2, no stack', () => {
  const bad = tempDir('bad');
  const b = (name: string): string => join(bad.dir, name);
  let issuer: ReturnType<typeof writeIssuer>;

  beforeAll(() => {
    issuer = writeIssuer(bad.dir, 'issuer://bad', 'issuer');
    writeAgent(bad.dir, issuer, 'agent://bad/ok', 'ok');
    writeAgent(bad.dir, issuer, 'agent://bad/expired', 'expired', { notBefore: 1_600_000_000, notAfter: 1_600_086_400 });
    writeAgent(bad.dir, issuer, 'agent://bad/future', 'future', { notBefore: Math.floor(Date.now() / 1000) + 86_400 * 30, notAfter: Math.floor(Date.now() / 1000) + 86_400 * 60 });
    writeAgent(bad.dir, issuer, 'agent://bad/loose', 'loose');
    chmodSync(b('loose.key.json'), 0o644);
    writeTrust(b('trust.json'), issuer);
    writeFileSync(b('not-json.json'), '{ "type": "pqmcp-private-key", ');
    writeFileSync(b('unknown.json'), JSON.stringify({ hello: 'world' }));
    const key = JSON.parse(readFileSync(b('ok.key.json'), 'utf8')) as Record<string, string>;
    writeFileSync(b('short-seed.key.json'), JSON.stringify({ ...key, seed: 'AAAA' }), { mode: 0o600 });
    writeFileSync(b('extra-field.key.json'), JSON.stringify({ ...key, comment: 'hi' }), { mode: 0o600 });
    const pub = JSON.parse(readFileSync(b('ok.pub.json'), 'utf8')) as Record<string, string>;
    writeFileSync(b('edited.pub.json'), JSON.stringify({ ...pub, fingerprint: '00'.repeat(32) }));
    writeFileSync(b('corrupt.cred.json'), JSON.stringify({ type: 'pqmcp-credential', version: 1, credential: 'UFFDUgE' }));
    writeFileSync(b('future-version.cred.json'), JSON.stringify({ type: 'pqmcp-credential', version: 9, credential: 'x' }));
    writeFileSync(b('bad-trust.json'), JSON.stringify({ version: 1, issuers: [], pinned: [], revokedSerials: [], revokedKeys: [], revokedSerial: [] }));
    writeFileSync(b('bad-revocations.json'), JSON.stringify({ type: 'pqmcp-revocations', version: 1, revokedKeys: [{ fingerprint: 'xyz', revokedAt: 'now' }] }));
    mkdirSync(b('a-directory.json'));
  });
  afterAll(() => bad.remove());

  const cases: Array<{ name: string; args: () => string[]; exit: number; code: string; text?: RegExp; process?: true }> = [
    { name: 'unknown command', args: () => ['frobnicate'], exit: 2, code: 'ERR_USAGE', text: /unknown command "frobnicate"/ },
    { name: 'unknown subcommand', args: () => ['trust', 'destroy', b('trust.json')], exit: 2, code: 'ERR_USAGE', text: /unknown command "trust destroy"/ },
    { name: 'unknown option', args: () => ['agent', 'create', '--id', 'agent://x/y', '--colour', 'red'], exit: 2, code: 'ERR_USAGE', text: /unknown option --colour/, process: true },
    { name: 'missing required option', args: () => ['agent', 'create'], exit: 2, code: 'ERR_USAGE', text: /--id is required/ },
    { name: 'option without its value', args: () => ['agent', 'create', '--id'], exit: 2, code: 'ERR_USAGE', text: /--id needs a value/ },
    { name: 'id without a scheme', args: () => ['agent', 'create', '--id', 'planner', '--out', b('x.key.json')], exit: 2, code: 'ERR_USAGE', text: /must be a URI/ },
    { name: 'bad duration', args: () => ['credential', 'issue', '--issuer', b('issuer.key.json'), '--agent', b('ok.pub.json'), '--valid-for', 'soon', '--out', b('d.cred.json')], exit: 2, code: 'ERR_USAGE', text: /--valid-for must be a duration/ },
    { name: 'scope with whitespace', args: () => ['credential', 'issue', '--issuer', b('issuer.key.json'), '--agent', b('ok.pub.json'), '--scope', 'a b', '--out', b('s.cred.json')], exit: 2, code: 'ERR_USAGE', text: /contains whitespace/ },
    { name: 'missing file', args: () => ['inspect', b('nope.json')], exit: 2, code: 'ERR_FILE_NOT_FOUND', text: /nope\.json: no such file/, process: true },
    { name: 'a directory', args: () => ['inspect', b('a-directory.json')], exit: 2, code: 'ERR_FILE_READ', text: /is a directory/ },
    { name: 'missing trust file', args: () => ['credential', 'verify', b('ok.cred.json'), '--trust', b('missing-trust.json')], exit: 2, code: 'ERR_FILE_NOT_FOUND' },
    { name: 'not JSON', args: () => ['inspect', b('not-json.json')], exit: 2, code: 'ERR_FILE_FORMAT', text: /not valid JSON/, process: true },
    { name: 'JSON of no known kind', args: () => ['inspect', b('unknown.json')], exit: 2, code: 'ERR_FILE_FORMAT', text: /not a pqmcp file/ },
    { name: 'private key with a short seed', args: () => ['inspect', b('short-seed.key.json')], exit: 2, code: 'ERR_FILE_FORMAT', text: /seed must be 64 bytes, got 3/ },
    { name: 'private key with an unknown field', args: () => ['key', 'public', b('extra-field.key.json')], exit: 2, code: 'ERR_FILE_FORMAT', text: /comment is not a known field/ },
    { name: 'public key whose fingerprint was edited', args: () => ['trust', 'pin', b('pin-trust.json'), b('edited.pub.json')], exit: 2, code: 'ERR_FILE_FORMAT', text: /fingerprint does not match the key/ },
    { name: 'corrupt credential bytes', args: () => ['inspect', b('corrupt.cred.json')], exit: 2, code: 'ERR_FILE_FORMAT', text: /corrupt\.cred\.json: .*credential/ },
    { name: 'credential file of a future version', args: () => ['credential', 'verify', b('future-version.cred.json'), '--trust', b('trust.json')], exit: 2, code: 'ERR_FILE_FORMAT', text: /unsupported version/ },
    { name: 'trust file with a misspelt field', args: () => ['trust', 'list', b('bad-trust.json')], exit: 2, code: 'ERR_FILE_FORMAT', text: /revokedSerial/ },
    { name: 'malformed revocation list', args: () => ['credential', 'verify', b('ok.cred.json'), '--trust', b('trust.json'), '--revocations', b('bad-revocations.json')], exit: 2, code: 'ERR_FILE_FORMAT', text: /revokedKeys\[0\]\.fingerprint/ },
    { name: 'a credential where a trust file belongs', args: () => ['trust', 'list', b('ok.cred.json')], exit: 2, code: 'ERR_FILE_FORMAT', text: /not a trust file \(it is a credential\)/ },
    { name: 'expired credential', args: () => ['credential', 'verify', b('expired.cred.json'), '--trust', b('trust.json')], exit: 1, code: 'ERR_CREDENTIAL_EXPIRED', text: /expired at 2020-09-14/, process: true },
    { name: 'not yet valid credential', args: () => ['credential', 'verify', b('future.cred.json'), '--trust', b('trust.json')], exit: 1, code: 'ERR_CREDENTIAL_NOT_YET_VALID' },
    { name: 'private key others can read (issue)', args: () => ['credential', 'issue', '--self-signed', '--agent', b('loose.key.json'), '--out', b('loose.cred.json')], exit: 2, code: 'ERR_KEY_PERMISSIONS', text: /loose\.key\.json: private key file is accessible by group or others \(mode 0644\); run "chmod 600/, process: true },
    { name: 'private key others can read (inspect)', args: () => ['inspect', b('loose.key.json')], exit: 2, code: 'ERR_KEY_PERMISSIONS' },
    { name: 'private key others can read (connect)', args: () => ['connect', 'ws://127.0.0.1:9/', '--identity', b('loose.key.json'), '--trust', b('trust.json'), '--expect', 'agent://bad/ok'], exit: 2, code: 'ERR_KEY_PERMISSIONS', process: true },
    { name: 'an agent key used as issuer', args: () => ['credential', 'issue', '--issuer', b('ok.key.json'), '--agent', b('ok.pub.json'), '--out', b('i.cred.json')], exit: 2, code: 'ERR_USAGE', text: /is an agent key, not an issuer key/ },
    { name: 'an agent key added as issuer', args: () => ['trust', 'add-issuer', b('t2.json'), b('ok.pub.json')], exit: 2, code: 'ERR_USAGE', text: /not an issuer's/ },
    { name: 'overwrite without --force', args: () => ['issuer', 'create', '--id', 'issuer://bad', '--out', b('issuer.key.json')], exit: 2, code: 'ERR_FILE_EXISTS', text: /already exists; pass --force/ },
    { name: 'output directory missing', args: () => ['agent', 'create', '--id', 'agent://bad/x', '--out', b('no/such/dir/x.key.json')], exit: 2, code: 'ERR_FILE_WRITE', text: /does not exist/ },
    { name: 'revoke with two targets', args: () => ['revoke', b('r.json'), '--key', '00'.repeat(32), '--serial', 'aa', '--issuer', 'issuer://bad'], exit: 2, code: 'ERR_USAGE' },
    { name: 'pin by fingerprint without an id', args: () => ['trust', 'pin', b('pins.json'), '--fingerprint', 'ab'.repeat(32)], exit: 2, code: 'ERR_USAGE', text: /needs --id/ },
    { name: 'connect without --expect', args: () => ['connect', 'ws://127.0.0.1:9/', '--identity', b('ok.key.json'), '--trust', b('trust.json')], exit: 2, code: 'ERR_USAGE', text: /--expect <server agent id> \(or --expect-prefix <id prefix>\) is required/ },
    { name: 'connect to a non-ws URL', args: () => ['connect', 'http://127.0.0.1:9/', '--identity', b('ok.key.json'), '--trust', b('trust.json'), '--expect', 'agent://x/y'], exit: 2, code: 'ERR_USAGE', text: /ws:\/\/ or wss:\/\// },
    { name: 'connect with an expired own credential', args: () => ['connect', 'ws://127.0.0.1:9/', '--identity', b('expired.key.json'), '--trust', b('trust.json'), '--expect', 'agent://x/y'], exit: 2, code: 'ERR_CREDENTIAL_EXPIRED', text: /ask its issuer for a new one/ },
    { name: "connect with an issuer's key as the identity (no credential beside it)", args: () => ['connect', 'ws://127.0.0.1:9/', '--identity', b('issuer.key.json'), '--trust', b('trust.json'), '--expect', 'agent://x/y'], exit: 2, code: 'ERR_FILE_FORMAT', text: /issuer\.key\.json: this is the private key of issuer .*; an identity is an agent's key \(pqmcp agent create\)/ },
    { name: 'connect to nothing listening', args: () => ['connect', 'ws://127.0.0.1:9/', '--identity', b('ok.key.json'), '--trust', b('trust.json'), '--expect', 'agent://x/y'], exit: 1, code: 'ERR_CONNECTION', text: /cannot connect to ws:\/\/127\.0\.0\.1:9/, process: true },
    { name: 'serve without a command', args: () => ['serve', '--identity', b('ok.key.json'), '--trust', b('trust.json')], exit: 2, code: 'ERR_USAGE', text: /missing the MCP server command/ },
    { name: 'serve with a command that does not exist', args: () => ['serve', '--identity', b('ok.key.json'), '--trust', b('trust.json'), '--', 'pqmcp-no-such-server-xyz'], exit: 2, code: 'ERR_CHILD', text: /not found in PATH/ },
    { name: 'serve with a bad --listen', args: () => ['serve', '--identity', b('ok.key.json'), '--trust', b('trust.json'), '--listen', 'localhost:99999', '--', 'node'], exit: 2, code: 'ERR_USAGE', text: /--listen must be host:port/ },
    { name: 'serve with an expired own credential', args: () => ['serve', '--identity', b('expired.key.json'), '--trust', b('trust.json'), '--', 'node'], exit: 2, code: 'ERR_CREDENTIAL_EXPIRED', process: true },
    { name: 'serve with a key others can read', args: () => ['serve', '--identity', b('loose.key.json'), '--trust', b('trust.json'), '--', 'node'], exit: 2, code: 'ERR_KEY_PERMISSIONS' },
  ];

  for (const c of cases) {
    it(`${c.name}${c.process ? ' (process)' : ''}`, async () => {
      const r = c.process ? await run(c.args()) : await inProcess(c.args());
      expect(r.code, r.stderr).toBe(c.exit);
      expect(r.stdout).toBe('');
      expectOneLineError(r.stderr, c.code);
      if (c.text) expect(r.stderr).toMatch(c.text);
    });
  }

  it('--allow-loose-key-permissions overrides the permission check', async () => {
    const r = await inProcess(['inspect', b('loose.key.json'), '--allow-loose-key-permissions']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('file mode:   0644');
  });

  it('--debug adds the stack trace', async () => {
    const r = await run(['inspect', b('not-json.json'), '--debug']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toMatch(/^pqmcp: .*not valid JSON \(ERR_FILE_FORMAT\)$/);
    expect(r.stderr).toMatch(/\n\s+at /);
  });

  it('--force replaces a file atomically and keeps mode 0600 for keys', async () => {
    const r = await inProcess(['agent', 'create', '--id', 'agent://bad/forced', '--out', b('forced.key.json')]);
    expect(r.code).toBe(0);
    const first = readFileSync(b('forced.key.json'), 'utf8');
    const again = await inProcess(['agent', 'create', '--id', 'agent://bad/forced', '--out', b('forced.key.json'), '--force']);
    expect(again.code, again.stderr).toBe(0);
    expect(readFileSync(b('forced.key.json'), 'utf8')).not.toBe(first);
    expect(mode(b('forced.key.json'))).toBe(0o600);
  });

  it('verify --json reports the failure on stdout too, for machines', async () => {
    const r = await inProcess(['credential', 'verify', b('expired.cred.json'), '--trust', b('trust.json'), '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ valid: false, code: 'ERR_CREDENTIAL_EXPIRED' });
    expectOneLineError(r.stderr, 'ERR_CREDENTIAL_EXPIRED');
  });
});

describe('secrets', () => {
  it('no output of any run contains a private key seed', () => {
    const seeds: string[] = [];
    const collect = (d: string): void => {
      for (const name of ['acme.key.json', 'agents/planner.key.json', 'solo.key.json', 'planner.key.json', 'tools.key.json']) {
        const p = join(d, name);
        if (existsSync(p)) seeds.push((JSON.parse(readFileSync(p, 'utf8')) as { seed: string }).seed);
      }
    };
    collect(dir);
    expect(seeds.length).toBeGreaterThanOrEqual(3);
    const all = outputs.join('\n');
    for (const seed of seeds) {
      expect(all.includes(seed)).toBe(false);
      // Nor any 16-character window of it (partial leaks).
      for (let i = 0; i + 16 <= seed.length; i += 8) expect(all.includes(seed.slice(i, i + 16))).toBe(false);
    }
  });
});
