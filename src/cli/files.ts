/**
 * Key, credential, trust and revocation files on disk: reading with clear errors, writing
 * safely, and the private-key permission rule.
 *
 * Sharp edges:
 * - Private key files are created mode 0600 (O_EXCL, then fchmod, so the umask cannot
 *   widen them). Reading one that the group or others can access at all (mode & 0o077)
 *   fails with ERR_KEY_PERMISSIONS unless the caller passes `allowLoosePermissions`
 *   (--allow-loose-key-permissions). Not checked on Windows, where POSIX modes mean little.
 * - Writes never overwrite an existing file unless `force`; then they go to a temporary
 *   file in the same directory and are renamed over the target, so a crash leaves either
 *   the old file or the new one, never half of each.
 * - Files larger than 16 MiB are refused before parsing.
 */
import { closeSync, constants, fchmodSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { CryptoBackend } from '../crypto/types.js';
import { PqmcpError } from '../errors.js';
import type { Credential } from '../identity/credential.js';
import { createAgentIdentity, identityFromSeed } from '../identity/identity.js';
import type { AgentIdentity } from '../identity/identity.js';
import { fingerprintHex } from '../identity/fingerprint.js';
import { TrustStore } from '../identity/trust.js';
import type { CompositeKeyPair } from '../crypto/composite.js';
import {
  applyRevocations,
  decodeCredentialFile,
  decodePrivateKey,
  decodePublicKey,
  decodeRevocationList,
  detectKind,
} from './formats.js';
import type { KeyKind, RevocationList } from './formats.js';
import { CliError } from './output.js';

export const MAX_FILE_SIZE = 16 * 1024 * 1024;
export const PRIVATE_FILE_MODE = 0o600;
export const PUBLIC_FILE_MODE = 0o644;

export interface ReadOptions {
  /** Accept a private key file that others can read (--allow-loose-key-permissions). */
  allowLoosePermissions?: boolean;
}

function fileError(err: unknown, path: string, doing: string): CliError {
  const code = (err as { code?: string }).code;
  if (code === 'ENOENT') return new CliError('ERR_FILE_NOT_FOUND', `${path}: no such file`, 2, { cause: err });
  if (code === 'EACCES' || code === 'EPERM') return new CliError('ERR_FILE_READ', `${path}: permission denied`, 2, { cause: err });
  if (code === 'EISDIR') return new CliError('ERR_FILE_READ', `${path}: is a directory, not a file`, 2, { cause: err });
  return new CliError('ERR_FILE_READ', `${path}: cannot ${doing} (${code ?? 'error'})`, 2, { cause: err });
}

/** The file's text (UTF-8), with file-system errors turned into one clear line. */
export function readText(path: string): string {
  let size: number;
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw Object.assign(new Error('directory'), { code: 'EISDIR' });
    size = st.size;
  } catch (err) {
    throw fileError(err, path, 'read it');
  }
  if (size > MAX_FILE_SIZE) throw new CliError('ERR_FILE_FORMAT', `${path}: larger than ${MAX_FILE_SIZE} bytes; not a pqmcp file`);
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw fileError(err, path, 'read it');
  }
}

export function readJson(path: string): unknown {
  const content = readText(path);
  try {
    return JSON.parse(content);
  } catch {
    throw new CliError('ERR_FILE_FORMAT', `${path}: not valid JSON`);
  }
}

/** Refuse a private key file that the group or others can access. */
export function checkPrivateKeyPermissions(path: string, options: ReadOptions = {}): void {
  if (process.platform === 'win32' || options.allowLoosePermissions) return;
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (err) {
    throw fileError(err, path, 'check its permissions');
  }
  if ((mode & 0o077) !== 0) {
    const octal = (mode & 0o777).toString(8).padStart(4, '0');
    throw new CliError(
      'ERR_KEY_PERMISSIONS',
      `${path}: private key file is accessible by group or others (mode ${octal}); run "chmod 600 ${path}" (or pass --allow-loose-key-permissions)`,
    );
  }
}

export interface WriteOptions {
  mode: number;
  /** Replace an existing file (atomically). */
  force?: boolean;
}

/** Write `content` to a new file (refusing to overwrite unless `force`) with exactly `mode`. */
export function writeFile(path: string, content: string, options: WriteOptions): void {
  const data = Buffer.from(content.endsWith('\n') ? content : `${content}\n`, 'utf8');
  const target = options.force ? join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`) : path;
  let fd: number;
  try {
    fd = openSync(target, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, options.mode);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'EEXIST') throw new CliError('ERR_FILE_EXISTS', `${path}: already exists; pass --force to replace it`);
    if (code === 'ENOENT') throw new CliError('ERR_FILE_WRITE', `${path}: directory ${dirname(path)} does not exist`, 2, { cause: err });
    if (code === 'EACCES' || code === 'EPERM') throw new CliError('ERR_FILE_WRITE', `${path}: permission denied`, 2, { cause: err });
    throw new CliError('ERR_FILE_WRITE', `${path}: cannot write (${code ?? 'error'})`, 1, { cause: err });
  }
  try {
    fchmodSync(fd, options.mode);
    let offset = 0;
    while (offset < data.length) offset += writeSync(fd, data, offset);
    fsyncSync(fd);
    closeSync(fd);
    if (target !== path) renameSync(target, path);
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    try {
      unlinkSync(target);
    } catch {
      // nothing to remove
    }
    throw new CliError('ERR_FILE_WRITE', `${path}: cannot write (${(err as { code?: string }).code ?? 'error'})`, 1, { cause: err });
  } finally {
    data.fill(0);
  }
}

export function writeJson(path: string, value: unknown, options: WriteOptions): void {
  writeFile(path, JSON.stringify(value, null, 2), options);
}

/** The permission bits of an existing file (to keep them on rewrite), or `fallback`. */
export function existingMode(path: string, fallback: number): number {
  try {
    return statSync(path).mode & 0o777;
  } catch {
    return fallback;
  }
}

// --- typed loaders -----------------------------------------------------------------------

export interface LoadedPrivateKey {
  kind: KeyKind;
  id: string;
  keyPair: CompositeKeyPair;
  fingerprint: string;
  path: string;
}

export function loadPrivateKey(backend: CryptoBackend, path: string, options: ReadOptions = {}): LoadedPrivateKey {
  const json = readJson(path);
  const kind = detectKind(json);
  if (kind !== 'private-key') throw new CliError('ERR_FILE_FORMAT', `${path}: not a private key file (it is ${describeKind(kind)})`);
  checkPrivateKeyPermissions(path, options);
  const key = decodePrivateKey(json, path);
  const keyPair = identityFromSeed(backend, key.seed);
  key.seed.fill(0);
  return { kind: key.kind, id: key.id, keyPair, fingerprint: fingerprintHex(backend, keyPair.publicKey), path };
}

export function describeKind(kind: ReturnType<typeof detectKind>): string {
  switch (kind) {
    case 'private-key':
      return 'a private key';
    case 'public-key':
      return 'a public key';
    case 'credential':
      return 'a credential';
    case 'revocations':
      return 'a revocation list';
    case 'trust':
      return 'a trust file';
    default:
      return 'not a pqmcp file';
  }
}

export interface PublicKeyInfo {
  kind: KeyKind | undefined;
  id: string;
  publicKey: Uint8Array;
  fingerprint: string;
  from: 'public-key' | 'private-key' | 'credential';
}

/**
 * A public key and the id it goes with, from any file that carries one: a public key file,
 * a private key file (permissions checked) or a credential file (its subject).
 */
export function loadAnyPublicKey(backend: CryptoBackend, path: string, options: ReadOptions = {}): PublicKeyInfo {
  const json = readJson(path);
  const kind = detectKind(json);
  if (kind === 'public-key') {
    const k = decodePublicKey(backend, json, path);
    return { ...k, from: 'public-key' };
  }
  if (kind === 'private-key') {
    const k = loadPrivateKey(backend, path, options);
    return { kind: k.kind, id: k.id, publicKey: k.keyPair.publicKey, fingerprint: k.fingerprint, from: 'private-key' };
  }
  if (kind === 'credential') {
    const c = decodeCredentialFile(json, path);
    return { kind: 'agent', id: c.agentId, publicKey: c.publicKey, fingerprint: fingerprintHex(backend, c.publicKey), from: 'credential' };
  }
  throw new CliError('ERR_FILE_FORMAT', `${path}: expected a public key, private key or credential file (it is ${describeKind(kind)})`);
}

export function loadCredential(path: string): Credential {
  const json = readJson(path);
  const kind = detectKind(json);
  if (kind !== 'credential') throw new CliError('ERR_FILE_FORMAT', `${path}: not a credential file (it is ${describeKind(kind)})`);
  return decodeCredentialFile(json, path);
}

export function loadRevocations(path: string): RevocationList {
  const json = readJson(path);
  const kind = detectKind(json);
  if (kind !== 'revocations') throw new CliError('ERR_FILE_FORMAT', `${path}: not a revocation list (it is ${describeKind(kind)})`);
  return decodeRevocationList(json, path);
}

export function parseTrust(json: unknown, path: string): TrustStore {
  const kind = detectKind(json);
  if (kind !== 'trust') throw new CliError('ERR_FILE_FORMAT', `${path}: not a trust file (it is ${describeKind(kind)})`);
  try {
    return TrustStore.fromJSON(json);
  } catch (err) {
    if (err instanceof PqmcpError) throw new CliError('ERR_FILE_FORMAT', `${path}: ${err.message}`);
    throw err;
  }
}

/** A trust store from a trust file plus any revocation lists. */
export function loadTrust(path: string, revocationPaths: readonly string[] = []): TrustStore {
  const trust = parseTrust(readJson(path), path);
  for (const r of revocationPaths) applyRevocations(trust, loadRevocations(r), r);
  return trust;
}

/** `planner.key.json` -> `planner.cred.json` (the default credential beside a key file). */
export function defaultCredentialPath(keyPath: string): string | undefined {
  if (keyPath.endsWith('.key.json')) return `${keyPath.slice(0, -'.key.json'.length)}.cred.json`;
  return undefined;
}

export interface LoadedIdentity {
  identity: AgentIdentity;
  key: LoadedPrivateKey;
  credential: Credential;
  credentialPath: string;
}

/**
 * This side's identity for serve/connect: the private key file plus its credential (given,
 * or `<name>.cred.json` beside `<name>.key.json`). Checks that the credential is for this
 * key and is inside its validity window now (a clear local error beats a refused handshake).
 */
export function loadIdentity(backend: CryptoBackend, keyPath: string, credentialPath: string | undefined, options: ReadOptions = {}): LoadedIdentity {
  const key = loadPrivateKey(backend, keyPath, options);
  const credPath = credentialPath ?? defaultCredentialPath(keyPath);
  if (credPath === undefined) {
    throw new CliError('ERR_USAGE', `no credential for ${keyPath}: pass --credential <file> (default: <name>.cred.json beside <name>.key.json)`);
  }
  const credential = loadCredential(credPath);
  let identity: AgentIdentity;
  try {
    identity = createAgentIdentity({ keyPair: key.keyPair, credential });
  } catch {
    throw new CliError('ERR_FILE_FORMAT', `${credPath}: this credential was issued for a different key than ${keyPath}`);
  }
  const now = Date.now() / 1000;
  if (now > credential.notAfter) {
    throw new CliError('ERR_CREDENTIAL_EXPIRED', `${credPath}: credential of ${credential.agentId} expired at ${new Date(credential.notAfter * 1000).toISOString()}; ask its issuer for a new one`);
  }
  if (now < credential.notBefore) {
    throw new CliError('ERR_CREDENTIAL_NOT_YET_VALID', `${credPath}: credential of ${credential.agentId} is not valid before ${new Date(credential.notBefore * 1000).toISOString()}`);
  }
  return { identity, key, credential, credentialPath: credPath };
}
