/// <reference lib="dom" />
/**
 * Keeping an agent's key in a browser: the private key file's contents encrypted (AES-GCM)
 * under a non-extractable WebCrypto key, both in IndexedDB.
 *
 *   await storeIdentity('planner', keyFileText, credFileText);   // once, e.g. after an import
 *   const identity = await loadStoredIdentity('planner');         // each visit
 *
 * What this protects, and what it does not:
 * - The seed is never in storage in the clear: a copy of the origin's IndexedDB (a backup,
 *   a sync, another program reading the profile's storage files through the storage API
 *   of the origin) holds ciphertext and a key handle whose bytes script cannot export.
 * - It does NOT protect against code running in the page's origin (XSS, a compromised
 *   dependency): such code can ask the browser to decrypt, exactly as this module does,
 *   and the derived key pair lives in the page's memory while a session runs. A key that
 *   page code can use but never read needs the signature algorithm inside WebCrypto:
 *   Ed25519 is there, ML-DSA-65 is not yet in browsers, so the composite key cannot be.
 * - Anyone with the user's unlocked profile on disk may recover the wrapping key from the
 *   browser's own storage; the browser, not pqmcp, decides how it protects that.
 */
import { InvalidArgumentError } from '../errors.js';
import { identityFromContents } from '../identity/from-contents.js';
import type { FileContents, IdentityFromContentsOptions } from '../identity/from-contents.js';
import { parseFileJson } from '../identity/formats.js';
import type { AgentIdentity } from '../identity/identity.js';

export interface KeyStoreOptions {
  /** IndexedDB database name. Default 'pqmcp-keys'. */
  database?: string;
}

const STORE = 'identities';
const WRAPPING_KEY = '\u0000wrapping-key';

interface StoredIdentity {
  iv: Uint8Array<ArrayBuffer>;
  key: ArrayBuffer;
  credential: string;
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
  });
}

async function openDb(options: KeyStoreOptions): Promise<IDBDatabase> {
  const idb = (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  if (idb === undefined) throw new InvalidArgumentError('this runtime has no IndexedDB: keep the key file elsewhere and use identityFromContents');
  const open = idb.open(options.database ?? 'pqmcp-keys', 1);
  open.onupgradeneeded = () => open.result.createObjectStore(STORE);
  return request(open);
}

async function withStore<T>(options: KeyStoreOptions, mode: IDBTransactionMode, fn: (store: IDBObjectStore) => Promise<T>): Promise<T> {
  const db = await openDb(options);
  try {
    return await fn(db.transaction(STORE, mode).objectStore(STORE));
  } finally {
    db.close();
  }
}

function checkName(name: string): void {
  if (typeof name !== 'string' || name === '' || name === WRAPPING_KEY) throw new InvalidArgumentError('name must be a non-empty string');
}

async function wrappingKey(options: KeyStoreOptions): Promise<CryptoKey> {
  const existing = await withStore(options, 'readonly', (s) => request(s.get(WRAPPING_KEY)) as Promise<CryptoKey | undefined>);
  if (existing !== undefined) return existing;
  const key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
  // add(), not put(): if another tab stored one first, this fails and we read theirs.
  try {
    await withStore(options, 'readwrite', (s) => request(s.add(key, WRAPPING_KEY)));
    return key;
  } catch {
    return (await withStore(options, 'readonly', (s) => request(s.get(WRAPPING_KEY)))) as CryptoKey;
  }
}

const text = (c: FileContents): string => (typeof c === 'string' ? c : JSON.stringify(c));

/**
 * Check that the key and credential files make a valid identity, then store them under
 * `name` (replacing what was there), the key file encrypted.
 */
export async function storeIdentity(name: string, keyFile: FileContents, credentialFile: FileContents, options: KeyStoreOptions & IdentityFromContentsOptions = {}): Promise<void> {
  checkName(name);
  identityFromContents(keyFile, credentialFile, { ...options, checkValidity: false });
  const key = await wrappingKey(options);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const encoded = new TextEncoder().encode(text(keyFile));
  let sealed: ArrayBuffer;
  try {
    // WebCrypto copies its input when called; this copy of the key file is wiped once sealed.
    sealed = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: new TextEncoder().encode(name) }, key, encoded);
  } finally {
    encoded.fill(0);
  }
  const record: StoredIdentity = { iv, key: sealed, credential: text(credentialFile) };
  await withStore(options, 'readwrite', (s) => request(s.put(record, name)));
}

/** The identity stored under `name`, or undefined if there is none. */
export async function loadStoredIdentity(name: string, options: KeyStoreOptions & IdentityFromContentsOptions = {}): Promise<(AgentIdentity & { fingerprint: string }) | undefined> {
  checkName(name);
  const record = (await withStore(options, 'readonly', (s) => request(s.get(name)))) as StoredIdentity | undefined;
  if (record === undefined) return undefined;
  const key = await wrappingKey(options);
  const plain = new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: record.iv, additionalData: new TextEncoder().encode(name) }, key, record.key));
  try {
    const keyJson = parseFileJson(new TextDecoder().decode(plain), `stored key ${name}`) as object;
    return identityFromContents(keyJson, record.credential, { ...options, names: { key: `stored key ${name}`, credential: `stored credential ${name}` } });
  } finally {
    plain.fill(0);
  }
}

/** Remove the identity stored under `name` (the wrapping key stays for the others). */
export async function deleteStoredIdentity(name: string, options: KeyStoreOptions = {}): Promise<void> {
  checkName(name);
  await withStore(options, 'readwrite', (s) => request(s.delete(name)));
}
