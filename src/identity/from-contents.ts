/**
 * An identity and a trust store from the *contents* of pqmcp's files (the same strict
 * parsers as the CLI and the node:fs loaders), for runtimes without a file system: a
 * browser page gets the text from wherever the application keeps it.
 *
 *   identityFromContents(keyJson, credJson)          NAME.key.json + NAME.cred.json -> AgentIdentity
 *   trustStoreFromContents(trustJson, [revJson...])  trust file (+ revocation lists) -> TrustStore
 *
 * Each argument is the file's text or its already-parsed JSON. Failures are FileFormatError
 * (or CredentialFileValidityError) naming the file by the `names` given.
 *
 * Sharp edges:
 * - The seed read from the key file is zeroed once the key pair is derived; the key pair
 *   holds private key material for the life of the returned identity.
 * - By default a credential outside its validity window is refused here (a clear local error
 *   beats a handshake the peer refuses); pass `checkValidity: false` to take it anyway.
 */
import type { CryptoBackend } from '../crypto/types.js';
import { selectBackend } from '../crypto/select.js';
import { CredentialFileValidityError, FileFormatError } from '../errors.js';
import type { Credential } from './credential.js';
import { fingerprintHex } from './fingerprint.js';
import { applyRevocations, decodeCredentialFile, decodePrivateKeyFile, decodeRevocationList, decodeTrustFile, expectFileKind, parseFileJson } from './formats.js';
import { createAgentIdentity, identityFromSeed } from './identity.js';
import type { AgentIdentity } from './identity.js';
import type { TrustStore } from './trust.js';

export interface IdentityFromContentsOptions {
  /** Backend for key derivation. Default: the process's automatic choice. */
  backend?: CryptoBackend;
  /** Refuse a credential outside its validity window now. Default true. */
  checkValidity?: boolean;
  /** "Now" for that check. */
  now?: Date;
  /** How errors name the two files. Default 'key file' and 'credential file'. */
  names?: { key?: string; credential?: string };
}

/** File text or parsed JSON. */
export type FileContents = string | object;

function json(contents: FileContents, where: string): unknown {
  return typeof contents === 'string' ? parseFileJson(contents, where) : contents;
}

/** Refuse a credential outside its window, naming the file. */
export function checkCredentialWindow(credential: Credential, where: string, now: Date = new Date()): void {
  const t = now.getTime() / 1000;
  if (t > credential.notAfter) {
    throw new CredentialFileValidityError(where, 'ERR_CREDENTIAL_EXPIRED', `credential of ${credential.agentId} expired at ${new Date(credential.notAfter * 1000).toISOString()}; ask its issuer for a new one`);
  }
  if (t < credential.notBefore) {
    throw new CredentialFileValidityError(where, 'ERR_CREDENTIAL_NOT_YET_VALID', `credential of ${credential.agentId} is not valid before ${new Date(credential.notBefore * 1000).toISOString()}`);
  }
}

/** An AgentIdentity from a private key file's and its credential file's contents. */
export function identityFromContents(key: FileContents, credential: FileContents, options: IdentityFromContentsOptions = {}): AgentIdentity & { fingerprint: string } {
  const keyName = options.names?.key ?? 'key file';
  const credName = options.names?.credential ?? 'credential file';
  const backend = options.backend ?? selectBackend();
  const keyJson = json(key, keyName);
  expectFileKind(keyJson, 'private-key', keyName);
  const fields = decodePrivateKeyFile(keyJson, keyName);
  let keyPair;
  try {
    keyPair = identityFromSeed(backend, fields.seed);
  } finally {
    fields.seed.fill(0);
  }
  const credJson = json(credential, credName);
  expectFileKind(credJson, 'credential', credName);
  const decoded = decodeCredentialFile(credJson, credName);
  let identity: AgentIdentity;
  try {
    identity = createAgentIdentity({ keyPair, credential: decoded });
  } catch {
    throw new FileFormatError(credName, `this credential was issued for a different key than ${keyName}`);
  }
  if (options.checkValidity !== false) checkCredentialWindow(decoded, credName, options.now);
  return { ...identity, fingerprint: fingerprintHex(backend, keyPair.publicKey) };
}

/** A TrustStore from a trust file's contents, with revocation lists' contents applied. */
export function trustStoreFromContents(trust: FileContents, revocations: readonly FileContents[] = [], name = 'trust file'): TrustStore {
  const store = decodeTrustFile(json(trust, name), name);
  revocations.forEach((r, i) => {
    const where = `revocation list ${i + 1}`;
    const list = json(r, where);
    expectFileKind(list, 'revocations', where);
    applyRevocations(store, decodeRevocationList(list, where), where);
  });
  return store;
}
