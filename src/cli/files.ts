/**
 * Writing key, credential, trust and revocation files safely. Reading them is the library's
 * (identity/files.ts: loadIdentity, loadTrustStore, ...), so the CLI and programs read the
 * same files through the same parsers.
 *
 * Sharp edges:
 * - Private key files are created mode 0600 (O_EXCL, then fchmod, so the umask cannot
 *   widen them). The library refuses to read one that the group or others can access.
 * - Writes never overwrite an existing file unless `force`; then they go to a temporary
 *   file in the same directory and are renamed over the target, so a crash leaves either
 *   the old file or the new one, never half of each.
 */
import { closeSync, constants, fchmodSync, fstatSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { CryptoBackend } from '../crypto/types.js';
import { defaultCredentialPath, loadIdentity, readPqmcpFile } from '../identity/files.js';
import { expectFileKind } from '../identity/formats.js';
import type { LoadedIdentity } from '../identity/files.js';
import { CliError } from './output.js';

export const PRIVATE_FILE_MODE = 0o600;
export const PUBLIC_FILE_MODE = 0o644;

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

/**
 * A secret file's text and mode, both from one open descriptor: the mode checked is the
 * mode of the bytes read (a stat and a read by path could see two files, one swapped in
 * between). Throws what node:fs throws (ENOENT, EACCES, EISDIR, ...).
 */
export function readWithMode(path: string): { text: string; mode: number } {
  const fd = openSync(path, 'r');
  try {
    const mode = fstatSync(fd).mode;
    return { text: readFileSync(fd, 'utf8'), mode };
  } finally {
    closeSync(fd);
  }
}

/** The permission bits of an existing file (to keep them on rewrite), or `fallback`. */
export function existingMode(path: string, fallback: number): number {
  try {
    return statSync(path).mode & 0o777;
  } catch {
    return fallback;
  }
}

/**
 * This side's identity for serve/connect: the library's loadIdentity, with the CLI's usage
 * error when there is no credential to find (a key file not named NAME.key.json and no
 * --credential).
 */
export async function loadOwnIdentity(backend: CryptoBackend, keyPath: string, credentialPath: string | undefined, allowLoosePermissions: boolean): Promise<LoadedIdentity> {
  if (credentialPath === undefined && defaultCredentialPath(keyPath) === undefined) {
    // `--identity tools.pub.json`: say it is a public key, not that its credential is missing.
    expectFileKind((await readPqmcpFile(keyPath)).json, 'private-key', keyPath);
    throw new CliError('ERR_USAGE', `no credential for ${keyPath}: pass --credential <file> (default: <name>.cred.json beside <name>.key.json)`);
  }
  return loadIdentity(keyPath, { backend, allowLoosePermissions, ...(credentialPath !== undefined ? { credentialPath } : {}) });
}
