/**
 * Loading pqmcp's files from disk for code: the same files `pqmcp` writes and reads, through
 * the same strict parsers (formats.ts), so one set of files serves the CLI and a program.
 *
 *   loadIdentity(keyPath)        NAME.key.json + NAME.cred.json beside it -> AgentIdentity
 *   loadIssuer(keyPath)          an issuer's private key file -> Issuer (to issue credentials)
 *   loadTrustStore(path, {revocations})   trust file (+ revocation lists) -> TrustStore
 *   loadRevocations(path)        revocation list (pqmcp revoke)
 *   loadCredential(path)         credential file -> Credential (decoded, NOT verified)
 *   loadPublicKey(path)          the public key of a public key, private key or credential file
 *   loadPrivateKey(path)         private key file -> key pair
 *
 * Every failure is a FileError (errors.ts) naming the file and the problem:
 * FileNotFoundError, FileReadError, FileFormatError, KeyPermissionsError, and
 * CredentialFileValidityError from loadIdentity.
 *
 * Sharp edges:
 * - Node only (node:fs). identity/index.ts does not re-export this module, so a bundle for
 *   browsers or edge runtimes that imports identity/ pulls no file system; src/index.ts
 *   exports it for Node.
 * - A private key file that the group or others can access at all (mode & 0o077) is refused
 *   with KeyPermissionsError unless `allowLoosePermissions` (not checked on Windows, where
 *   POSIX modes mean little). The mode is read from the opened file, not a second lookup.
 * - Files larger than 16 MiB are refused before parsing.
 * - The seed read from a private key file is zeroed once the key pair is derived; the key
 *   pair itself holds private key material for the life of the returned object.
 * - loadIdentity refuses a credential outside its validity window now (a clear local error
 *   beats a handshake the peer refuses); pass `checkValidity: false` to load it anyway.
 */
import { open } from 'node:fs/promises';
import type { CompositeKeyPair } from '../crypto/composite.js';
import { selectBackend } from '../crypto/select.js';
import type { CryptoBackend } from '../crypto/types.js';
import { FileFormatError, FileNotFoundError, FileReadError, InvalidArgumentError, KeyPermissionsError, PqmcpError } from '../errors.js';
import type { Credential } from './credential.js';
import { fingerprintHex } from './fingerprint.js';
import { identityFromContents } from './from-contents.js';
import {
  applyRevocations,
  decodeCredentialFile,
  decodePrivateKeyFile,
  decodePublicKeyFile,
  decodeRevocationList,
  decodeTrustFile,
  describeFileKind,
  detectFileKind,
  expectFileKind,
  parseFileJson,
} from './formats.js';
import type { FileKind, KeyKind, RevocationList } from './formats.js';
import { createIssuer, identityFromSeed } from './identity.js';
import type { AgentIdentity, Issuer } from './identity.js';
import type { TrustStore } from './trust.js';

/** Larger files are refused before parsing: no pqmcp file comes near it. */
export const MAX_FILE_SIZE = 16 * 1024 * 1024;

export interface LoadKeyOptions {
  /** The backend that derives key pairs; default selectBackend(). */
  backend?: CryptoBackend;
  /** Accept a private key file the group or others can access (default false: refused). */
  allowLoosePermissions?: boolean;
}

export interface LoadIdentityOptions extends LoadKeyOptions {
  /** The credential file; default NAME.cred.json beside NAME.key.json. */
  credentialPath?: string;
  /** Refuse a credential outside its validity window (default true). */
  checkValidity?: boolean;
  /** "Now" for the validity check (default the system clock). */
  now?: Date;
}

export interface LoadTrustOptions {
  /** Revocation lists (pqmcp revoke) applied on top of the trust file, in order. */
  revocations?: readonly string[];
}

/** A file read and parsed: which pqmcp format it is (by its type tag) and its JSON. */
export interface PqmcpFile {
  path: string;
  kind: FileKind | undefined;
  json: unknown;
  /** POSIX permission bits of the opened file. */
  mode: number;
}

export interface LoadedPrivateKey {
  kind: KeyKind;
  id: string;
  keyPair: CompositeKeyPair;
  /** Lowercase hex fingerprint of the public key. */
  fingerprint: string;
  path: string;
}

export interface LoadedPublicKey {
  /** A credential file's key is an agent's. */
  kind: KeyKind;
  id: string;
  publicKey: Uint8Array;
  fingerprint: string;
  /** Which kind of file carried it. */
  from: 'public-key' | 'private-key' | 'credential';
  path: string;
}

/** An AgentIdentity ready for PqmcpClientTransport / PqmcpServer, plus where it came from. */
export interface LoadedIdentity extends AgentIdentity {
  /** Lowercase hex fingerprint of the identity's public key. */
  fingerprint: string;
  keyPath: string;
  credentialPath: string;
}

function readError(err: unknown, path: string): FileNotFoundError | FileReadError {
  const code = (err as { code?: string }).code;
  if (code === 'ENOENT') return new FileNotFoundError(path, { cause: err });
  if (code === 'EACCES' || code === 'EPERM') return new FileReadError(path, 'permission denied', { cause: err });
  if (code === 'EISDIR') return new FileReadError(path, 'is a directory, not a file', { cause: err });
  return new FileReadError(path, `cannot read it (${code ?? 'error'})`, { cause: err });
}

/** Read a file and parse it as JSON, with typed errors (any pqmcp file, or none). */
export async function readPqmcpFile(path: string): Promise<PqmcpFile> {
  if (typeof path !== 'string' || path === '') throw new InvalidArgumentError('path must be a non-empty string');
  let text: string;
  let mode: number;
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw readError(err, path);
  }
  try {
    const st = await handle.stat();
    if (st.isDirectory()) throw Object.assign(new Error('directory'), { code: 'EISDIR' });
    if (st.size > MAX_FILE_SIZE) throw new FileFormatError(path, `larger than ${MAX_FILE_SIZE} bytes; not a pqmcp file`);
    mode = st.mode;
    text = await handle.readFile('utf8');
  } catch (err) {
    if (err instanceof PqmcpError) throw err;
    throw readError(err, path);
  } finally {
    await handle.close().catch(() => undefined);
  }
  if (text.length > MAX_FILE_SIZE) throw new FileFormatError(path, `larger than ${MAX_FILE_SIZE} bytes; not a pqmcp file`);
  const json = parseFileJson(text, path);
  return { path, kind: detectFileKind(json), json, mode };
}

async function readKind(path: string, expected: FileKind): Promise<PqmcpFile> {
  const file = await readPqmcpFile(path);
  expectFileKind(file.json, expected, path);
  return file;
}

/** Refuse a private key file that the group or others can access (see the module notes). */
export function checkPrivateKeyMode(path: string, mode: number, options: LoadKeyOptions = {}): void {
  if (process.platform === 'win32' || options.allowLoosePermissions === true) return;
  if ((mode & 0o077) !== 0) throw new KeyPermissionsError(path, mode);
}

/** The private key in an already-read private key file (permissions checked). */
export function privateKeyFromFile(file: PqmcpFile, options: LoadKeyOptions = {}): LoadedPrivateKey {
  expectFileKind(file.json, 'private-key', file.path);
  checkPrivateKeyMode(file.path, file.mode, options);
  const backend = options.backend ?? selectBackend();
  const key = decodePrivateKeyFile(file.json, file.path);
  try {
    const keyPair = identityFromSeed(backend, key.seed);
    return { kind: key.kind, id: key.id, keyPair, fingerprint: fingerprintHex(backend, keyPair.publicKey), path: file.path };
  } finally {
    key.seed.fill(0);
  }
}

/** A private key file (`pqmcp agent create` / `pqmcp issuer create`): its key pair and id. */
export async function loadPrivateKey(path: string, options: LoadKeyOptions = {}): Promise<LoadedPrivateKey> {
  return privateKeyFromFile(await readKind(path, 'private-key'), options);
}

/** An issuer's private key file, as an Issuer for issueCredential. Refuses an agent's key. */
export async function loadIssuer(path: string, options: LoadKeyOptions = {}): Promise<Issuer> {
  const key = await loadPrivateKey(path, options);
  if (key.kind !== 'issuer') throw new FileFormatError(path, 'is an agent key, not an issuer key (create one with pqmcp issuer create)');
  return { id: key.id, keyPair: key.keyPair, publicKey: key.keyPair.publicKey, fingerprint: key.fingerprint };
}

/**
 * A public key and the id it goes with, from any file that carries one: a public key file,
 * a private key file (permissions checked) or a credential file (its subject).
 */
export async function loadPublicKey(path: string, options: LoadKeyOptions = {}): Promise<LoadedPublicKey> {
  const file = await readPqmcpFile(path);
  const backend = options.backend ?? selectBackend();
  if (file.kind === 'public-key') return { ...decodePublicKeyFile(backend, file.json, path), from: 'public-key', path };
  if (file.kind === 'private-key') {
    const k = privateKeyFromFile(file, { ...options, backend });
    return { kind: k.kind, id: k.id, publicKey: k.keyPair.publicKey, fingerprint: k.fingerprint, from: 'private-key', path };
  }
  if (file.kind === 'credential') {
    const c = decodeCredentialFile(file.json, path);
    return { kind: 'agent', id: c.agentId, publicKey: c.publicKey, fingerprint: fingerprintHex(backend, c.publicKey), from: 'credential', path };
  }
  throw new FileFormatError(path, `expected a public key, private key or credential file (it is ${describeFileKind(file.kind)})`);
}

/** A credential file, decoded (NOT verified: TrustStore.verifyCredential does that). */
export async function loadCredential(path: string): Promise<Credential> {
  return decodeCredentialFile((await readKind(path, 'credential')).json, path);
}

/** A revocation list (`pqmcp revoke`). */
export async function loadRevocations(path: string): Promise<RevocationList> {
  return decodeRevocationList((await readKind(path, 'revocations')).json, path);
}

/** A trust file (`pqmcp trust ...`), with the given revocation lists applied on top. */
export async function loadTrustStore(path: string, options: LoadTrustOptions = {}): Promise<TrustStore> {
  const trust = decodeTrustFile((await readPqmcpFile(path)).json, path);
  for (const r of options.revocations ?? []) applyRevocations(trust, await loadRevocations(r), r);
  return trust;
}

/** `planner.key.json` -> `planner.cred.json` (the credential beside a key file), else undefined. */
export function defaultCredentialPath(keyPath: string): string | undefined {
  if (keyPath.endsWith('.key.json')) return `${keyPath.slice(0, -'.key.json'.length)}.cred.json`;
  return undefined;
}

/**
 * The credential of an identity. An issuer's key given where an agent's belongs has no
 * credential beside it: say that, rather than only that the file is missing.
 */
async function readOwnCredential(path: string, keyFile: PqmcpFile, besideKey: boolean): Promise<PqmcpFile> {
  try {
    return await readKind(path, 'credential');
  } catch (err) {
    const key = keyFile.json as { kind?: unknown; id?: unknown };
    if (besideKey && err instanceof FileNotFoundError && key.kind === 'issuer') {
      throw new FileFormatError(keyFile.path, `this is the private key of issuer ${String(key.id)}, which signs credentials; an identity is an agent's key (pqmcp agent create) with the credential its issuer signed`, { cause: err });
    }
    throw err;
  }
}

/**
 * This side's identity: the private key file plus its credential (`credentialPath`, or
 * NAME.cred.json beside NAME.key.json). Checks that the credential is for this key and, by
 * default, that it is valid now. The result goes straight into `identity:` of the transports.
 */
export async function loadIdentity(keyPath: string, options: LoadIdentityOptions = {}): Promise<LoadedIdentity> {
  // The key file first: a public key or a credential given as the key is named for what it
  // is, before any word about where its credential should be.
  const keyFile = await readKind(keyPath, 'private-key');
  checkPrivateKeyMode(keyPath, keyFile.mode, options);
  const credentialPath = options.credentialPath ?? defaultCredentialPath(keyPath);
  if (credentialPath === undefined) {
    throw new InvalidArgumentError(`no credential for ${keyPath}: pass credentialPath (default: NAME.cred.json beside NAME.key.json)`);
  }
  const credentialFile = await readOwnCredential(credentialPath, keyFile, options.credentialPath === undefined);
  const identity = identityFromContents(keyFile.json as object, credentialFile.json as object, {
    ...(options.backend !== undefined ? { backend: options.backend } : {}),
    ...(options.checkValidity !== undefined ? { checkValidity: options.checkValidity } : {}),
    ...(options.now !== undefined ? { now: options.now } : {}),
    names: { key: keyPath, credential: credentialPath },
  });
  return { ...identity, keyPath, credentialPath };
}
