/**
 * The library's file loaders (src/identity/files.ts): files written by the CLI load in
 * the library and work (a real MCP session over pqmcp with the loaded identities and trust),
 * and every bad file gets its typed FileError naming the file and the problem, never a
 * crash and never a secret.
 */
import { chmodSync, mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { run } from '../../src/cli/run.js';
import type { Output } from '../../src/cli/output.js';
import { createNobleBackend } from '../../src/crypto/noble.js';
import {
  CredentialFileValidityError,
  CredentialRevokedError,
  FileError,
  FileFormatError,
  FileNotFoundError,
  FileReadError,
  InvalidArgumentError,
  KeyPermissionsError,
} from '../../src/errors.js';
import {
  MAX_FILE_SIZE,
  loadCredential,
  loadIdentity,
  loadIssuer,
  loadPrivateKey,
  loadPublicKey,
  loadRevocations,
  loadTrustStore,
} from '../../src/index.js';
import { decodePrivateKeyFile, encodeCredentialFile, issueCredential } from '../../src/identity/index.js';
import { PqmcpClientTransport, serveMcp } from '../../src/transport/index.js';
import type { PqmcpAuthInfo } from '../../src/transport/index.js';
import { expectRejection } from '../helpers/errors.js';
import { tempDir } from '../cli/helpers.js';

const backend = createNobleBackend();
const tmp = tempDir('library-files');
const dir = tmp.dir;
const f = (name: string): string => join(dir, name);

/** The CLI, in process (the same code as the binary), failing the test on a non-zero exit. */
async function pqmcp(...args: string[]): Promise<string> {
  let out = '';
  let err = '';
  const output: Output = { out: (t) => void (out += `${t}\n`), err: (t) => void (err += `${t}\n`) };
  const code = await run(args, output);
  if (code !== 0) throw new Error(`pqmcp ${args.join(' ')} exited ${code}: ${err}`);
  return out;
}

beforeAll(async () => {
  // The walkthrough of docs/cli.md, by the CLI: an issuer, a server and a client, one trust file.
  await pqmcp('issuer', 'create', '--id', 'issuer://acme', '--out', f('acme.key.json'));
  await pqmcp('agent', 'create', '--id', 'agent://acme/tools', '--out', f('tools.key.json'));
  await pqmcp('agent', 'create', '--id', 'agent://acme/planner', '--out', f('planner.key.json'));
  await pqmcp('credential', 'issue', '--issuer', f('acme.key.json'), '--agent', f('tools.pub.json'), '--usage', 'server', '--scope', 'mcp:read');
  await pqmcp('credential', 'issue', '--issuer', f('acme.key.json'), '--agent', f('planner.pub.json'), '--scope', 'mcp:read');
  await pqmcp('trust', 'add-issuer', f('trust.json'), f('acme.pub.json'));
}, 60_000);

afterAll(() => tmp.remove());

describe('files written by the CLI load in the library', () => {
  it('loadIdentity: NAME.key.json with NAME.cred.json beside it', async () => {
    const planner = await loadIdentity(f('planner.key.json'), { backend });
    expect(planner.agentId).toBe('agent://acme/planner');
    expect(planner.credential.scopes).toEqual(['mcp:read']);
    expect(planner.credential.issuerId).toBe('issuer://acme');
    expect(planner.credentialPath).toBe(f('planner.cred.json'));
    expect(planner.keyPath).toBe(f('planner.key.json'));
    const pub = JSON.parse(readFileSync(f('planner.pub.json'), 'utf8')) as { fingerprint: string };
    expect(planner.fingerprint).toBe(pub.fingerprint);
    // An explicit credential path works too (a copy under another name).
    writeFileSync(f('copy.json'), readFileSync(f('planner.cred.json')));
    const again = await loadIdentity(f('planner.key.json'), { backend, credentialPath: f('copy.json') });
    expect(again.credential.encoded).toEqual(planner.credential.encoded);
  });

  it('loadTrustStore verifies the loaded credentials; loadRevocations (pqmcp revoke) revokes one', async () => {
    const trust = await loadTrustStore(f('trust.json'));
    const peer = trust.verifyCredential(backend, await loadCredential(f('tools.cred.json')), { expectedPeerId: 'agent://acme/tools' });
    expect(peer.issuer).toBe('issuer://acme');

    await pqmcp('revoke', f('revoked.json'), '--credential', f('tools.cred.json'), '--reason', 'test');
    const list = await loadRevocations(f('revoked.json'));
    expect(list.revokedSerials).toHaveLength(1);
    expect(list.revokedSerials[0]!.reason).toBe('test');
    const revoked = await loadTrustStore(f('trust.json'), { revocations: [f('revoked.json')] });
    expect(() => revoked.verifyCredential(backend, peer.credential)).toThrow(CredentialRevokedError);
    // The planner's credential is untouched by that list.
    expect(revoked.verifyCredential(backend, (await loadIdentity(f('planner.key.json'), { backend })).credential).agentId).toBe('agent://acme/planner');
  });

  it('loadIssuer issues a credential the CLI accepts; loadPublicKey reads every file that carries a key', async () => {
    const issuer = await loadIssuer(f('acme.key.json'), { backend });
    expect(issuer.id).toBe('issuer://acme');
    const fromPub = await loadPublicKey(f('planner.pub.json'), { backend });
    const fromKey = await loadPublicKey(f('planner.key.json'), { backend });
    const fromCred = await loadPublicKey(f('planner.cred.json'), { backend });
    expect([fromPub.from, fromKey.from, fromCred.from]).toEqual(['public-key', 'private-key', 'credential']);
    expect(fromKey.publicKey).toEqual(fromPub.publicKey);
    expect(fromCred.fingerprint).toBe(fromPub.fingerprint);

    const credential = issueCredential(backend, issuer, { agentId: 'agent://acme/planner', publicKey: fromPub.publicKey, scopes: ['mcp:write'] });
    writeFileSync(f('code-issued.cred.json'), JSON.stringify(encodeCredentialFile(credential.encoded)));
    const out = await pqmcp('credential', 'verify', f('code-issued.cred.json'), '--trust', f('trust.json'), '--json');
    expect(JSON.parse(out)).toMatchObject({ valid: true, agentId: 'agent://acme/planner', scopes: ['mcp:write'] });
  });

  it('an MCP session over pqmcp with identities and trust loaded from the CLI files', async () => {
    const trust = await loadTrustStore(f('trust.json'));
    const server = await serveMcp({ identity: await loadIdentity(f('tools.key.json'), { backend }), trust, backend, host: '127.0.0.1', port: 0 }, () => {
      const mcp = new McpServer({ name: 'files-test', version: '1.0.0' });
      mcp.registerTool('whoami', {}, (extra) => ({ content: [{ type: 'text', text: (extra.authInfo as PqmcpAuthInfo).clientId }] }));
      return mcp;
    });
    const client = new Client({ name: 'files-test-client', version: '1.0.0' });
    try {
      const transport = new PqmcpClientTransport(server.url, { identity: await loadIdentity(f('planner.key.json'), { backend }), trust, backend, expectedServerId: 'agent://acme/tools' });
      await client.connect(transport);
      const result = await client.callTool({ name: 'whoami', arguments: {} });
      expect(result.content).toEqual([{ type: 'text', text: 'agent://acme/planner' }]);
    } finally {
      await client.close();
      await server.close();
    }
  });
});

describe('bad files: a typed FileError naming the file and the problem', () => {
  const write = (name: string, content: string, mode = 0o644): string => {
    writeFileSync(f(name), content, { mode });
    chmodSync(f(name), mode);
    return f(name);
  };
  const keyJson = (): Record<string, unknown> => JSON.parse(readFileSync(f('planner.key.json'), 'utf8')) as Record<string, unknown>;

  /** Every FileError: exact class and code, `path` set, message starting with the file. */
  async function bad<T extends FileError>(promise: Promise<unknown>, cls: abstract new (...args: never[]) => T, code: T['code'], path: string, text: RegExp): Promise<T> {
    const err = await expectRejection(promise, cls, code);
    expect(err).toBeInstanceOf(FileError);
    expect(err.path).toBe(path);
    expect(err.message.startsWith(`${path}: `)).toBe(true);
    expect(err.message).toMatch(text);
    return err;
  }

  it('missing file, a directory, not JSON, too large', async () => {
    await bad(loadTrustStore(f('nope.json')), FileNotFoundError, 'ERR_FILE_NOT_FOUND', f('nope.json'), /no such file/);
    mkdirSync(f('a-directory.json'));
    await bad(loadCredential(f('a-directory.json')), FileReadError, 'ERR_FILE_READ', f('a-directory.json'), /is a directory/);
    await bad(loadRevocations(write('not-json.json', '{"type": ')), FileFormatError, 'ERR_FILE_FORMAT', f('not-json.json'), /not valid JSON/);
    const big = write('big.json', '');
    truncateSync(big, MAX_FILE_SIZE + 1);
    await bad(loadTrustStore(big), FileFormatError, 'ERR_FILE_FORMAT', big, /larger than 16777216 bytes/);
  });

  it('the wrong kind of file names what it is', async () => {
    await bad(loadTrustStore(f('planner.cred.json')), FileFormatError, 'ERR_FILE_FORMAT', f('planner.cred.json'), /not a trust file \(it is a credential\)/);
    await bad(loadCredential(f('trust.json')), FileFormatError, 'ERR_FILE_FORMAT', f('trust.json'), /not a credential file \(it is a trust file\)/);
    await bad(loadRevocations(f('planner.pub.json')), FileFormatError, 'ERR_FILE_FORMAT', f('planner.pub.json'), /not a revocation list \(it is a public key\)/);
    await bad(loadPrivateKey(f('planner.pub.json'), { backend }), FileFormatError, 'ERR_FILE_FORMAT', f('planner.pub.json'), /not a private key file/);
    await bad(loadIdentity(f('planner.cred.json'), { backend, credentialPath: f('planner.cred.json') }), FileFormatError, 'ERR_FILE_FORMAT', f('planner.cred.json'), /not a private key file/);
    await bad(loadIssuer(f('planner.key.json'), { backend }), FileFormatError, 'ERR_FILE_FORMAT', f('planner.key.json'), /is an agent key, not an issuer key/);
    await bad(loadPublicKey(f('trust.json'), { backend }), FileFormatError, 'ERR_FILE_FORMAT', f('trust.json'), /expected a public key, private key or credential file/);
    await bad(loadTrustStore(write('unknown.json', '{"hello": 1}')), FileFormatError, 'ERR_FILE_FORMAT', f('unknown.json'), /it is not a pqmcp file/);
  });

  it('bad fields: unknown, short, edited, future version, misspelt, malformed entry', async () => {
    const secret = keyJson().seed as string;
    const extra = write('extra.key.json', JSON.stringify({ ...keyJson(), comment: 'x' }), 0o600);
    const e1 = await bad(loadIdentity(extra, { backend, credentialPath: f('planner.cred.json') }), FileFormatError, 'ERR_FILE_FORMAT', extra, /comment is not a known field/);
    const short = write('short.key.json', JSON.stringify({ ...keyJson(), seed: 'AAAA' }), 0o600);
    const e2 = await bad(loadPrivateKey(short, { backend }), FileFormatError, 'ERR_FILE_FORMAT', short, /seed must be 64 bytes, got 3/);
    for (const e of [e1, e2]) expect(e.message).not.toContain(secret);

    const pub = JSON.parse(readFileSync(f('planner.pub.json'), 'utf8')) as Record<string, unknown>;
    const edited = write('edited.pub.json', JSON.stringify({ ...pub, fingerprint: '00'.repeat(32) }));
    await bad(loadPublicKey(edited, { backend }), FileFormatError, 'ERR_FILE_FORMAT', edited, /fingerprint does not match the key/);

    const cred = JSON.parse(readFileSync(f('planner.cred.json'), 'utf8')) as Record<string, unknown>;
    const future = write('future.cred.json', JSON.stringify({ ...cred, version: 2 }));
    await bad(loadCredential(future), FileFormatError, 'ERR_FILE_FORMAT', future, /unsupported version/);
    const corrupt = write('corrupt.cred.json', JSON.stringify({ ...cred, credential: 'UFFDUg' }));
    await bad(loadCredential(corrupt), FileFormatError, 'ERR_FILE_FORMAT', corrupt, /credential/);

    const trust = JSON.parse(readFileSync(f('trust.json'), 'utf8')) as Record<string, unknown>;
    const misspelt = write('misspelt-trust.json', JSON.stringify({ ...trust, revokedSerial: [] }));
    await bad(loadTrustStore(misspelt), FileFormatError, 'ERR_FILE_FORMAT', misspelt, /revokedSerial/);

    const list = write('bad-list.json', JSON.stringify({ type: 'pqmcp-revocations', version: 1, revokedSerials: [], revokedKeys: [{ fingerprint: 'xyz', revokedAt: 'now' }] }));
    await bad(loadRevocations(list), FileFormatError, 'ERR_FILE_FORMAT', list, /revokedKeys\[0\]\.fingerprint/);
    // A bad list given to loadTrustStore: the list is named, not the trust file.
    await bad(loadTrustStore(f('trust.json'), { revocations: [list] }), FileFormatError, 'ERR_FILE_FORMAT', list, /revokedKeys\[0\]/);
  });

  it('a private key file others can read is refused unless allowed', async () => {
    const loose = write('loose.key.json', readFileSync(f('planner.key.json'), 'utf8'), 0o644);
    writeFileSync(f('loose.cred.json'), readFileSync(f('planner.cred.json')));
    const err = await bad(loadIdentity(loose, { backend }), KeyPermissionsError, 'ERR_KEY_PERMISSIONS', loose, /accessible by group or others \(mode 0644\); run "chmod 600/);
    expect(err.mode & 0o777).toBe(0o644);
    await bad(loadPublicKey(loose, { backend }), KeyPermissionsError, 'ERR_KEY_PERMISSIONS', loose, /mode 0644/);
    expect((await loadIdentity(loose, { backend, allowLoosePermissions: true })).agentId).toBe('agent://acme/planner');
    // A public key or credential file may be world-readable.
    expect((await loadPublicKey(f('planner.pub.json'), { backend })).id).toBe('agent://acme/planner');
  });

  it('loadIdentity: a credential for another key, expired, not yet valid, none to find', async () => {
    const other = await bad(loadIdentity(f('planner.key.json'), { backend, credentialPath: f('tools.cred.json') }), FileFormatError, 'ERR_FILE_FORMAT', f('tools.cred.json'), /issued for a different key than/);
    expect(other.message).toContain(f('planner.key.json'));
    const planner = await loadIdentity(f('planner.key.json'), { backend });
    const late = new Date((planner.credential.notAfter + 1) * 1000);
    await bad(loadIdentity(f('planner.key.json'), { backend, now: late }), CredentialFileValidityError, 'ERR_CREDENTIAL_EXPIRED', f('planner.cred.json'), /expired at .*ask its issuer for a new one/);
    const early = new Date((planner.credential.notBefore - 1) * 1000);
    await bad(loadIdentity(f('planner.key.json'), { backend, now: early }), CredentialFileValidityError, 'ERR_CREDENTIAL_NOT_YET_VALID', f('planner.cred.json'), /not valid before/);
    expect((await loadIdentity(f('planner.key.json'), { backend, now: late, checkValidity: false })).agentId).toBe('agent://acme/planner');
    // An issuer's key has no credential beside it: the error names the key for what it is.
    await bad(loadIdentity(f('acme.key.json'), { backend }), FileFormatError, 'ERR_FILE_FORMAT', f('acme.key.json'), /private key of issuer issuer:\/\/acme, which signs credentials/);
    const missing = write('lonely.key.json', readFileSync(f('planner.key.json'), 'utf8'), 0o600);
    await bad(loadIdentity(missing, { backend }), FileNotFoundError, 'ERR_FILE_NOT_FOUND', missing.replace('.key.json', '.cred.json'), /no such file/);
    const unnamed = write('planner-key.json', readFileSync(f('planner.key.json'), 'utf8'), 0o600);
    await expectRejection(loadIdentity(unnamed, { backend }), InvalidArgumentError, 'ERR_INVALID_ARGUMENT');
  });

  it('the pure parsers throw the same typed errors for documents held in memory', () => {
    expect(() => decodePrivateKeyFile({ type: 'pqmcp-private-key', version: 1 }, 'in-memory key')).toThrowError(
      expect.objectContaining({ code: 'ERR_FILE_FORMAT', path: 'in-memory key', message: expect.stringMatching(/^in-memory key: /) }),
    );
  });
});
