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
 *   is replaced at once by an empty 0600 file, loudly (review F10). Tickets are removed when used, so two
 *   bridges sharing a file at worst both do a full handshake.
 */
import { InvalidArgumentError } from '../errors.js';
import { describeFileKind, detectFileKind } from '../identity/formats.js';
import { MemoryTicketStore } from '../resumption/client-tickets.js';
import { TicketKeys } from '../resumption/ticket-keys.js';
import type { ServerTicketOptions } from '../transport/server.js';
import { flag, parse, parseDuration, positionals, str } from './args.js';
import type { Parsed } from './args.js';
import type { Context } from './context.js';
import { PRIVATE_FILE_MODE, readWithMode, writeJson } from './files.js';
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

/** serve: the listen() `tickets` option from --ticket-keys / --ticket-lifetime (none without them). */
export function serveTicketOptions(p: Parsed, allowLoose: boolean): { tickets?: ServerTicketOptions; path?: string } {
  const path = str(p, 'ticket-keys');
  const lifetime = str(p, 'ticket-lifetime');
  if (path === undefined) {
    if (lifetime !== undefined) throw new UsageError('serve: --ticket-lifetime needs --ticket-keys');
    return {};
  }
  const lifetimeSeconds = lifetime === undefined ? undefined : parseDuration(lifetime, '--ticket-lifetime');
  if (lifetimeSeconds !== undefined && lifetimeSeconds > 7 * 24 * 3600) throw new UsageError('--ticket-lifetime must be at most 7d');
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

/** The client's ticket store in a file: loaded at start, saved (0600, atomically) on every change. */
export class FileTicketStore extends MemoryTicketStore {
  private loading = false;

  constructor(
    readonly path: string,
    private readonly warn: (text: string) => void,
  ) {
    super();
    let text: string | undefined;
    try {
      // Mode and text from one descriptor (readWithMode): the mode judged is that of the
      // bytes read.
      const { text: read, mode } = readWithMode(path);
      // Only a ticket store is ever replaced: `--tickets trust.json` (or a key file) must not
      // cost the user that file, whatever its mode.
      refuseForeignFile(path, read);
      if ((mode & 0o077) !== 0 && process.platform !== 'win32') {
        const octal = (mode & 0o777).toString(8).padStart(4, '0');
        warn(`WARNING: tickets file ${path} is accessible by group or others (mode ${octal}); its tickets hold secrets that let their reader resume as you and impersonate those servers to you, so they are NOT used; the file is replaced by an empty one (mode 0600)`);
        this.changed();
        return;
      }
      text = read;
    } catch (err) {
      if (err instanceof CliError) throw err;
      if ((err as { code?: string }).code !== 'ENOENT') warn(`tickets file ${path} not read (${(err as { code?: string }).code ?? 'error'}); starting without tickets`);
    }
    if (text === undefined) return;
    this.loading = true;
    try {
      this.load(JSON.parse(text));
    } catch {
      warn(`tickets file ${path} is not a ticket store; starting without tickets`);
    } finally {
      this.loading = false;
    }
  }

  protected override changed(): void {
    if (this.loading) return;
    try {
      writeJson(this.path, this.toJSON(), { mode: PRIVATE_FILE_MODE, force: true });
    } catch (err) {
      this.warn(`tickets file ${this.path} not written: ${err instanceof Error ? err.message : 'error'}`);
    }
  }
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
    const keepText = str(p, 'keep');
    const keep = keepText === undefined ? 2 : Number(keepText);
    if (!Number.isSafeInteger(keep) || keep < 0 || keep > 7) throw new UsageError('--keep must be a whole number in [0, 7]');
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
