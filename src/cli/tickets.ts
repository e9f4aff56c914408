/**
 * Resumption on the command line:
 *   pqmcp ticket-keys create <file> | rotate <file> [--keep N] | show <file>
 *   pqmcp serve ... --ticket-keys <file> [--ticket-lifetime <dur>]   (re-read on SIGHUP)
 *   pqmcp connect ... --tickets <file>                               (a 0600 ticket cache)
 *
 * Sharp edges:
 * - Both files are secrets (ticket keys open every ticket; a ticket store lets its holder
 *   resume as this client): written 0600, atomically (temporary file + rename), and a
 *   ticket key file others can read is refused like a private key.
 * - The client's ticket file is a cache: a missing, unreadable or malformed one is
 *   reported on stderr and replaced, never fatal. One the group or others can access is
 *   not used (its PSKs may have been read: resuming with them could be impersonated) and
 *   is replaced at once by an empty 0600 file, loudly (review F10).
 * - Bridges may share a ticket file, at the same time too: each change is made under the
 *   file's lock to what is in the file then (R17-3). The lock is advisory (only pqmcp takes
 *   it) and waited for at most LOCK_WAIT_MS (then the change stays in memory, reported).
 */
import { createHash } from 'node:crypto';
import { equalBytes, toHex } from '../bytes.js';
import { InvalidArgumentError } from '../errors.js';
import { describeFileKind, detectFileKind } from '../identity/formats.js';
import { withFileLock } from '../pins/lock.js';
import { MemoryTicketStore } from '../resumption/client-tickets.js';
import type { ClientTicket } from '../resumption/client-tickets.js';
import { MAX_TICKET_KEYS, TicketKeys } from '../resumption/ticket-keys.js';
import type { ServerTicketOptions } from '../transport/server.js';
import { flag, integerFlag, parse, parseDuration, positionals, str } from './args.js';
import type { Parsed } from './args.js';
import type { Context } from './context.js';
import { PRIVATE_FILE_MODE, readWithMode, writeFile, writeJson } from './files.js';
import { CliError, UsageError, printResult } from './output.js';

export const TICKET_KEYS_USAGE = `pqmcp ticket-keys create <file>            a new ticket key file (0600) for pqmcp serve --ticket-keys
pqmcp ticket-keys rotate <file> [--keep N]  put a fresh key first, keep N previous ones (default 2)
pqmcp ticket-keys show <file>               key ids and ages (never the keys)

  Ticket keys seal the resumption tickets a gateway hands its clients. Gateways that load
  the same file accept each other's tickets. Rotate at least every ticket lifetime and keep
  a previous key, then send the gateways SIGHUP: tickets sealed before stay valid.`;

export const TICKET_SERVE_USAGE = `  --ticket-keys <file>     issue and accept resumption tickets sealed under these keys
                           (pqmcp ticket-keys; re-read on SIGHUP)
  --ticket-lifetime <dur>  how long a ticket lasts after the full handshake (default 12h, at most 7d)`;

export const TICKET_SERVE_OPTIONS = {
  'ticket-keys': { type: 'string' },
  'ticket-lifetime': { type: 'string' },
} as const;

// TICKET_CONNECT_USAGE / TICKET_CONNECT_OPTIONS (`pqmcp connect --tickets`) live in connect.ts,
// which must stay light.

/** Read a ticket key file; refuse one the group or others can read. */
export function readTicketKeys(path: string, allowLoose = false): TicketKeys {
  let text: string;
  try {
    const file = readWithMode(path);
    if ((file.mode & 0o077) !== 0 && !allowLoose && process.platform !== 'win32') {
      throw new CliError('ERR_KEY_PERMISSIONS', `${path}: ticket key file is accessible by group or others; run "chmod 600 ${path}"`, 2);
    }
    text = file.text;
  } catch (err) {
    if (err instanceof CliError) throw err;
    const code = (err as { code?: string }).code;
    throw new CliError(code === 'ENOENT' ? 'ERR_FILE_NOT_FOUND' : 'ERR_FILE_READ', `${path}: ${code === 'ENOENT' ? `no such file (create one: pqmcp ticket-keys create ${path})` : `cannot read (${code ?? 'error'})`}`, 2, { cause: err });
  }
  try {
    return TicketKeys.fromJSON(text);
  } catch (err) {
    throw new CliError('ERR_FILE_FORMAT', `${path}: ${err instanceof InvalidArgumentError ? err.message : 'not a ticket key file'}`, 2, { cause: err });
  }
}

/** serve: --ticket-lifetime in seconds (undefined: not given), or a usage error; serve checks it before anything loads. */
export function serveTicketLifetime(p: Parsed): number | undefined {
  const lifetime = str(p, 'ticket-lifetime');
  if (lifetime === undefined) return undefined;
  if (str(p, 'ticket-keys') === undefined) throw new UsageError('serve: --ticket-lifetime needs --ticket-keys');
  const lifetimeSeconds = parseDuration(lifetime, '--ticket-lifetime');
  if (lifetimeSeconds > 7 * 24 * 3600) throw new UsageError(`--ticket-lifetime must be at most 7d; got ${JSON.stringify(lifetime)}`);
  return lifetimeSeconds;
}

/** serve: the listen() `tickets` option from --ticket-keys / --ticket-lifetime (none without them). */
export function serveTicketOptions(p: Parsed, allowLoose: boolean): { tickets?: ServerTicketOptions; path?: string } {
  const path = str(p, 'ticket-keys');
  const lifetimeSeconds = serveTicketLifetime(p);
  if (path === undefined) return {};
  return { tickets: { keys: readTicketKeys(path, allowLoose), ...(lifetimeSeconds !== undefined ? { lifetimeSeconds } : {}) }, path };
}

/**
 * Refuse (exit 2, file untouched) a --tickets file that is not a ticket store: anything but
 * an empty file or a JSON object with no other members than a store's (`version`,
 * `servers`), which may be damaged or of another version and is replaced. pqmcp writes the
 * store atomically, so other content is another file given by mistake, not a torn write.
 */
function refuseForeignFile(path: string, text: string): void {
  if (text.trim() === '') return;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (typeof json === 'object' && json !== null && !Array.isArray(json) && Object.keys(json).every((k) => k === 'version' || k === 'servers')) return;
  const kind = detectFileKind(json);
  const what = kind !== undefined ? describeFileKind(kind) : json === undefined ? 'not JSON' : 'another JSON document';
  throw new CliError('ERR_FILE_FORMAT', `${path}: not a tickets file (it is ${what}); --tickets needs a file of its own (created if missing): this one is left as it is`, 2);
}

/**
 * The client's ticket store in a file: loaded at start; every take and put is made holding
 * the file's lock (pins/lock.ts, `<file>.lock`) to the file as it is then (re-read when it
 * changed), and the result written back (0600, atomically). Bridges running at the same time
 * on one file keep each other's tickets, and a ticket one takes is gone for the others
 * (review 17, R17-3: each rewrote the file whole from what it read at start, so the last to
 * write dropped the others' new tickets). A lock that cannot be had (LOCK_WAIT_MS, or the
 * directory unwritable) is reported on stderr and the change made in memory only.
 */
export class FileTicketStore extends MemoryTicketStore {
  private loading = false;
  /** SHA-256 of the file's text as last read or written here: an unchanged file is not decoded again. */
  private digest: string | undefined;

  constructor(
    readonly path: string,
    private readonly warn: (text: string) => void,
  ) {
    super();
    if (this.reload(true) === 'loose') this.withLock(() => this.write());
  }

  override take(key: string, nowMs: number): ClientTicket | undefined {
    return this.update(() => super.take(key, nowMs));
  }

  override put(key: string, ticket: ClientTicket): void {
    if (this.loading) super.put(key, ticket);
    else this.update(() => super.put(key, ticket));
  }

  /** Make a change to the file as it is now, under its lock, and write the result. */
  private update<T>(change: () => T): T {
    let result: { value: T } | undefined;
    this.withLock(() => {
      const state = this.reload(false);
      result = { value: change() };
      if (state !== 'foreign') this.write();
    });
    return result === undefined ? change() : result.value;
  }

  /** Run `fn` holding the file's lock; false (reported) when the lock cannot be had. */
  private withLock(fn: () => void): boolean {
    let ran = false;
    try {
      withFileLock(this.path, () => {
        ran = true;
        fn();
      });
      return true;
    } catch (err) {
      if (ran) throw err;
      this.digest = undefined;
      this.warn(`tickets file ${this.path} not updated (${err instanceof Error ? err.message : 'error'}); this change is kept in memory only`);
      return false;
    }
  }

  /**
   * Read the file into memory, unless it is what was last read or written here. Tickets this
   * process holds that the file still has keep their object (a ticket received in this
   * process is re-checked without its issuer signature: src/handshake/resumption.ts).
   */
  private reload(first: boolean): 'same' | 'loaded' | 'loose' | 'foreign' {
    let file: { text: string; mode: number };
    try {
      // Mode and text from one descriptor (readWithMode): the mode judged is that of the
      // bytes read.
      file = readWithMode(this.path);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ENOENT') this.byKey.clear(); // none yet, or removed: no tickets
      else this.warn(`tickets file ${this.path} not read (${code ?? 'error'}); ${first ? 'starting without tickets' : 'using the tickets held in memory'}`);
      this.digest = undefined;
      return 'loaded';
    }
    const digest = createHash('sha256').update(file.text).digest('hex');
    if (digest === this.digest) return 'same';
    try {
      // Only a ticket store is ever replaced: `--tickets trust.json` (or a key file) must
      // not cost the user that file, whatever its mode.
      refuseForeignFile(this.path, file.text);
    } catch (err) {
      if (first) throw err;
      this.warn(`tickets file ${this.path} is no longer a tickets file: left as it is; tickets kept in memory only`);
      this.digest = undefined;
      return 'foreign';
    }
    const held = new Map<string, ClientTicket>();
    for (const list of this.byKey.values()) for (const t of list) held.set(toHex(t.ticket), t);
    this.byKey.clear();
    this.digest = undefined;
    if ((file.mode & 0o077) !== 0 && process.platform !== 'win32') {
      const octal = (file.mode & 0o777).toString(8).padStart(4, '0');
      this.warn(`WARNING: tickets file ${this.path} is accessible by group or others (mode ${octal}); its tickets hold secrets that let their reader resume as you and impersonate those servers to you, so they are NOT used; the file is replaced by an empty one (mode 0600)`);
      return 'loose';
    }
    this.loading = true;
    try {
      this.load(JSON.parse(file.text));
      this.digest = digest;
    } catch {
      this.warn(`tickets file ${this.path} is not a ticket store; ${first ? 'starting without tickets' : 'replaced'}`);
    } finally {
      this.loading = false;
    }
    for (const [key, list] of this.byKey) this.byKey.set(key, list.map((t) => sameTicket(held.get(toHex(t.ticket)), t) ?? t));
    return 'loaded';
  }

  private write(): void {
    const text = `${JSON.stringify(this.toJSON(), null, 2)}\n`;
    try {
      writeFile(this.path, text, { mode: PRIVATE_FILE_MODE, force: true });
      this.digest = createHash('sha256').update(text).digest('hex');
    } catch (err) {
      this.digest = undefined;
      this.warn(`tickets file ${this.path} not written: ${err instanceof Error ? err.message : 'error'}`);
    }
  }
}

/** `mine` when it holds exactly what `read` holds, else undefined. */
function sameTicket(mine: ClientTicket | undefined, read: ClientTicket): ClientTicket | undefined {
  if (mine === undefined || mine.suite !== read.suite || mine.expiresAt !== read.expiresAt) return undefined;
  const same = equalBytes(mine.ticket, read.ticket) && equalBytes(mine.psk, read.psk) && equalBytes(mine.serverCredential, read.serverCredential) && equalBytes(mine.clientCredentialHash, read.clientCredentialHash);
  return same ? mine : undefined;
}

export async function ticketKeysCommand(ctx: Context, argv: string[]): Promise<number> {
  const p = parse(argv, { keep: { type: 'string' }, force: { type: 'boolean' }, 'allow-loose-key-permissions': { type: 'boolean' } }, 'ticket-keys');
  if (flag(p, 'help')) return ctx.help(TICKET_KEYS_USAGE);
  const [verb, file] = positionals(p, 'ticket-keys', ['create|rotate|show', '<file>']);
  const backend = ctx.backend(undefined);
  const allowLoose = flag(p, 'allow-loose-key-permissions');
  if (verb === 'create') {
    const keys = TicketKeys.generate(backend);
    writeJson(file!, keys.toJSON(), { mode: PRIVATE_FILE_MODE, force: flag(p, 'force') });
    printResult(ctx.output, ctx.json, { file, ids: keys.ids }, () => [`wrote ${file} (key ${keys.ids[0]})`]);
    return 0;
  }
  if (verb === 'rotate') {
    const keep = integerFlag(p, 'keep', { min: 0, max: MAX_TICKET_KEYS - 1, unit: 'previous keys' }) ?? 2;
    const rotated = readTicketKeys(file!, allowLoose).rotate(backend, { keep });
    writeJson(file!, rotated.toJSON(), { mode: PRIVATE_FILE_MODE, force: true });
    printResult(ctx.output, ctx.json, { file, ids: rotated.ids }, () => [`rotated ${file}: current ${rotated.ids[0]}, kept ${rotated.ids.slice(1).join(', ') || 'none'}`]);
    return 0;
  }
  if (verb === 'show') {
    const keys = readTicketKeys(file!, allowLoose).toJSON().keys.map((k) => ({ id: k.id, createdAt: k.createdAt }));
    printResult(ctx.output, ctx.json, { file, keys }, () => keys.map((k, i) => `${i === 0 ? 'current ' : 'previous'} ${k.id} created ${new Date(k.createdAt * 1000).toISOString()}`));
    return 0;
  }
  throw new UsageError(`ticket-keys: unknown action ${JSON.stringify(verb)} (create, rotate or show)`);
}
