/**
 * Where tool pins are kept: per server identity (agent id and key fingerprint), the approved
 * definition of each tool, and the definitions held for approval.
 *
 *   MemoryPinStore      for one process (tests, short-lived clients)
 *   FilePinStore(path)  a JSON file (mode 0600, written atomically), shared with
 *                       `pqmcp pins list|approve|forget` and `pqmcp connect --pins`
 *
 * File format (docs/cli.md, "Tool pins"):
 *   { "type": "pqmcp-tool-pins", "version": 1,
 *     "servers": { "<agent id> <fingerprint>": { agentId, fingerprint, manifest?,
 *         tools: { <name>: { hash, definition, pinnedAt } },
 *         held:  { <name>: { hash, definition, seenAt, reason, changed?, from? } } } } }
 *
 * Sharp edges:
 * - The interface is synchronous (pins are checked inside message hooks, which keep order).
 * - FilePinStore re-reads the file when its modification time or size changed, so an
 *   approval made with the CLI reaches a running bridge at its next tools/list. Two
 *   processes writing at once: the last rename wins (each write is whole, never torn).
 * - A file that is not a pin file is refused at construction with InvalidArgumentError; it
 *   is never overwritten.
 * - Tool names are the server's: `tools` and `held` are read and written by own property
 *   only (toolEntry, setToolEntry), so "__proto__" or "constructor" is a name like another.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { InvalidArgumentError } from '../errors.js';

export const PINS_TYPE = 'pqmcp-tool-pins';

export type HeldReason = 'new' | 'changed' | 'renamed' | 'outside-manifest' | 'manifest-unknown' | 'manifest-missing';

export interface PinnedTool {
  hash: string;
  definition: Record<string, unknown>;
  /** ISO 8601. */
  pinnedAt: string;
}

export interface HeldTool {
  hash: string;
  definition: Record<string, unknown>;
  seenAt: string;
  reason: HeldReason;
  /** For 'changed': the pinned fields that differ. */
  changed?: string[];
  /** For 'renamed': the pinned tool with the same definition. */
  from?: string;
}

export interface PinnedServer {
  agentId: string;
  fingerprint: string;
  /**
   * The tool manifest hash this server's credential claimed when last seen. Once set, a
   * session whose credential claims none (an older credential of the same key) has every
   * tool withheld ('manifest-missing') instead of falling back to trust on first use;
   * `pqmcp pins forget` clears it.
   */
  manifest?: string;
  tools: Record<string, PinnedTool>;
  held: Record<string, HeldTool>;
}

export interface PinStore {
  get(server: string): PinnedServer | undefined;
  put(server: string, entry: PinnedServer): void;
  /** Every server entry (for listing). */
  all(): Record<string, PinnedServer>;
}

/**
 * A tool's entry in `tools` or `held`, by name. Tool names come from the server, so they are
 * read as own properties only: "constructor" or "__proto__" must not find Object.prototype's
 * members (which failed every listing that had such a tool).
 */
export function toolEntry<T>(map: Record<string, T>, name: string): T | undefined {
  return Object.hasOwn(map, name) ? map[name] : undefined;
}

/** Set a tool's entry as an own property ("__proto__" included: never the prototype setter). */
export function setToolEntry<T>(map: Record<string, T>, name: string, value: T): void {
  Object.defineProperty(map, name, { value, enumerable: true, writable: true, configurable: true });
}

/** The key of a server in a pin store. */
export function serverKey(peer: { agentId: string; fingerprint: string }): string {
  return `${peer.agentId} ${peer.fingerprint}`;
}

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

export class MemoryPinStore implements PinStore {
  protected servers: Record<string, PinnedServer> = {};
  get(server: string): PinnedServer | undefined {
    const e = this.servers[server];
    return e && clone(e);
  }
  put(server: string, entry: PinnedServer): void {
    this.servers[server] = clone(entry);
  }
  all(): Record<string, PinnedServer> {
    return clone(this.servers);
  }
}

interface PinFile {
  type: typeof PINS_TYPE;
  version: 1;
  servers: Record<string, PinnedServer>;
}

function decodePinFile(text: string, path: string): Record<string, PinnedServer> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new InvalidArgumentError(`${path} is not JSON (not a pin file)`);
  }
  const f = json as Partial<PinFile>;
  if (typeof f !== 'object' || f === null || f.type !== PINS_TYPE || f.version !== 1 || typeof f.servers !== 'object' || f.servers === null) {
    throw new InvalidArgumentError(`${path} is not a pqmcp pin file (type ${PINS_TYPE}, version 1)`);
  }
  for (const [key, e] of Object.entries(f.servers)) {
    if (typeof e !== 'object' || e === null || typeof e.tools !== 'object' || typeof e.held !== 'object' || typeof e.agentId !== 'string' || typeof e.fingerprint !== 'string' || (e.manifest !== undefined && typeof e.manifest !== 'string')) {
      throw new InvalidArgumentError(`${path}: server entry ${JSON.stringify(key)} is malformed`);
    }
  }
  return f.servers;
}

/** Write `text` to `path` atomically with mode 0600: a temporary file beside it, fsync, rename. */
export function writeFileAtomic(path: string, text: string): void {
  const tmp = join(dirname(path), `.${process.pid}.${Date.now()}.pins.tmp`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path);
  } catch (err) {
    unlinkSync(tmp);
    throw err;
  }
}

export class FilePinStore extends MemoryPinStore {
  private stamp = '';

  constructor(readonly path: string) {
    super();
    this.reload();
  }

  override get(server: string): PinnedServer | undefined {
    this.reload();
    return super.get(server);
  }

  override all(): Record<string, PinnedServer> {
    this.reload();
    return super.all();
  }

  override put(server: string, entry: PinnedServer): void {
    this.reload();
    super.put(server, entry);
    this.save();
  }

  /** Remove a server's entry (or one of its tools, pinned or held). Returns whether anything was removed. */
  forget(server: string, tool?: string): boolean {
    this.reload();
    const e = this.servers[server];
    if (!e) return false;
    if (tool === undefined) delete this.servers[server];
    else if (toolEntry(e.tools, tool) || toolEntry(e.held, tool)) {
      delete e.tools[tool];
      delete e.held[tool];
    } else return false;
    this.save();
    return true;
  }

  /**
   * Approve held tools of a server (all, or the named ones): they become pinned. Returns the
   * names approved. With `expected` (name -> hash prefix), a tool is approved only if the
   * definition held NOW has that hash: what was reviewed is what gets pinned, even if the
   * server listed another definition in between (review F6).
   */
  approve(server: string, tools?: readonly string[], expected: Readonly<Record<string, string>> = {}): string[] {
    this.reload();
    const e = this.servers[server];
    if (!e) return [];
    const names = tools ?? Object.keys(e.held);
    const done: string[] = [];
    for (const name of names) {
      const h = toolEntry(e.held, name);
      if (!h) continue;
      const want = Object.hasOwn(expected, name) ? expected[name]! : undefined;
      if (want !== undefined && !h.hash.startsWith(want.toLowerCase())) continue;
      setToolEntry(e.tools, name, { hash: h.hash, definition: h.definition, pinnedAt: new Date().toISOString() });
      delete e.held[name];
      done.push(name);
    }
    if (done.length) this.save();
    return done;
  }

  private reload(): void {
    let st;
    try {
      st = statSync(this.path);
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return; // a new pin file
      throw err;
    }
    const stamp = `${st.mtimeMs}:${st.size}`;
    if (stamp === this.stamp) return;
    this.servers = decodePinFile(readFileSync(this.path, 'utf8'), this.path);
    this.stamp = stamp;
  }

  private save(): void {
    const file: PinFile = { type: PINS_TYPE, version: 1, servers: this.servers };
    writeFileAtomic(this.path, `${JSON.stringify(file, null, 2)}\n`);
    const st = statSync(this.path);
    this.stamp = `${st.mtimeMs}:${st.size}`;
  }
}
