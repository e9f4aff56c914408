/**
 * Where tool pins are kept: per server identity (its agent id, under the issuer that vouched
 * for it), the approved definition of each tool, the definitions held for approval, and the
 * keys the server was seen with.
 *
 *   MemoryPinStore      for one process (tests, short-lived clients)
 *   FilePinStore(path)  a JSON file (mode 0600, written atomically), shared with
 *                       `pqmcp pins list|approve|forget` and `pqmcp connect --pins`
 *
 * File format, version 2 (docs/cli.md, "Tool pins"):
 *   { "type": "pqmcp-tool-pins", "version": 2,
 *     "servers": { "<agent id>": { agentId, issuer?, manifest?,
 *         keys:  [ { fingerprint, issuer?, firstSeen } ],          (in the order first seen)
 *         tools: { <name>: { hash, definition, pinnedAt } },
 *         held:  { <name>: { hash, definition, seenAt, reason, changed?, from?, key?, issuer?, migrated? } },
 *         unapproved?: [ <name> ] } } }                           (migrated entries only)
 *
 * Why per agent id and not per key (version 1 was keyed by "<agent id> <key fingerprint>",
 * "a new key is a new server"): a key is re-issued routinely (the issuer signs a credential
 * for the server's new key), and the verified identity, the one the user approved tools of,
 * is the agent id its issuer vouches for. Keying pins by key let a rotation redefine every
 * tool with no `changed` report under the default newTools 'pin' (review 8, L2). A new key
 * of the same agent id is the same server: its tools are compared with the pins it had, and
 * the key is appended to `keys` with the time it was first seen, so the file shows the
 * rotation. Another issuer for the same agent id is not a rotation: see hook.ts
 * ('issuer-changed').
 *
 * Version 1 files are read and migrated (migrateV1), and written back as version 2 at the
 * next change, after their original text is kept beside them as `<file>.v1` (0600, never
 * overwritten). The entries of one agent id under several keys merge into one; version 1
 * pinned a new key's tools on trust on first use, so only the pins of the key the identity
 * was first trusted under (the earliest time recorded) stay pinned, and what later keys
 * pinned besides is held for one approval (`migrated`, `pqmcp pins approve`): another
 * definition of a pinned tool as 'changed' (it may be exactly the rug pull a rotation let
 * through: review 9, P1), a tool that key never pinned as 'new', held whatever newTools
 * says (`unapproved`, review 9, F5). Nothing pinned is lost: it is pinned or held. Held
 * tools already pinned with the same hash are dropped, and a manifest any key claimed is
 * kept.
 * Version 1 recorded no issuer: a migrated entry adopts the issuer of the first session that
 * presents one of the keys the file recorded (they carry no `issuer` in `keys`); a session
 * with another key before that has every tool held as 'issuer-changed' (review 9, P2).
 *
 * Sharp edges:
 * - The interface is synchronous (pins are checked inside message hooks, which keep order).
 * - FilePinStore reads the file at each use and decodes it again when its text changed, so
 *   an approval made with the CLI reaches a running bridge at its next tools/list. Every
 *   change (put, update, approve, acceptIssuer, forget) is made under the file's lock
 *   (lock.ts, `<file>.lock`) to the file as re-read then, and written whole (a temporary
 *   file, renamed): bridges and the CLI sharing one file lose no change of another's
 *   (review 9, P4; before, the last rename won). A busy lock past LOCK_WAIT_MS fails the
 *   change with FileReadError (a bridge then fails closed). The pinning hook uses update,
 *   which takes no lock when a listing changes nothing.
 *   An older pqmcp refuses a version 2 file (it fails closed; it never overwrites it).
 * - A file that is not a pin file is refused at construction with InvalidArgumentError; it
 *   is never overwritten. So is a server entry any of whose fields, tool entries (hash,
 *   definition, times, reason...) and keys included, has the wrong type: an edited file
 *   never reaches the hook or `pins approve` half-valid (approve pinned a numeric hash;
 *   list failed with an internal error).
 * - What a server can make an entry grow by is bounded: `keys` to MAX_KEYS (below), the tools
 *   recorded (`tools` and `held`, each name once) to the hook's `maxTools` (hook.ts, default
 *   1,024), and their bytes as this file writes them (toolRecordBytes) to the hook's
 *   `maxToolBytes` per tool and `maxEntryBytes` per server (default 256 KiB and 16 MiB). The
 *   file is shared by every server a client pins: one server's entry too large to write
 *   (past V8's longest string) would fail pinning for all. This store itself takes whatever
 *   it is given (`put`, `pqmcp pins approve`, which adds no name and no byte).
 * - Tool names are the server's: `tools` and `held` are read and written by own property
 *   only (toolEntry, setToolEntry), so "__proto__" or "constructor" is a name like another.
 *   Agent ids are too: `servers` has a null prototype in memory.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { changedFields } from './canonical.js';
import { withFileLock } from './lock.js';

export const PINS_TYPE = 'pqmcp-tool-pins';
/** The pin file version this code writes (it reads 1 and 2). */
export const PINS_VERSION = 2;

export type HeldReason = 'new' | 'changed' | 'renamed' | 'outside-manifest' | 'manifest-unknown' | 'manifest-missing' | 'issuer-changed';

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
  /** The fingerprint of the server key whose session first listed it held (this definition, for this reason). */
  key?: string;
  /** For 'issuer-changed': the issuer that vouched for the server in that session. */
  issuer?: string;
  /**
   * Set by the migration of a version 1 file: this definition was pinned under a later key
   * than the pinned one (another definition of the tool), and is held for approval.
   */
  migrated?: boolean;
}

/** A key a server was seen with. */
export interface SeenKey {
  /** Lowercase hex key fingerprint. */
  fingerprint: string;
  /** The issuer id of the credential it was first seen with (absent in migrated entries). */
  issuer?: string;
  /** ISO 8601 (for a migrated entry: the earliest time recorded under that key). */
  firstSeen: string;
}

export interface PinnedServer {
  agentId: string;
  /**
   * The issuer id the pins were made under (the agent id itself for a self-signed server).
   * A session vouched for by another issuer has every tool withheld ('issuer-changed')
   * until `pqmcp pins approve --accept-issuer` accepts the new issuer (acceptIssuer).
   * Absent only in an entry migrated from version 1, which adopts the issuer of its first
   * session with a key the file recorded (a session with another key is held whole, as
   * 'issuer-changed').
   */
  issuer?: string;
  /**
   * The keys the server was seen with, in the order first seen (the last is the newest): the
   * first one and the newest MAX_KEYS - 1 (recordKey).
   */
  keys: SeenKey[];
  /**
   * The tool manifest hash this server's credential claimed when last seen. Once set, a
   * session whose credential claims none (an older credential, or a new key's credential
   * issued without the claim) has every tool withheld ('manifest-missing') instead of
   * falling back to trust on first use; `pqmcp pins forget` clears it.
   */
  manifest?: string;
  tools: Record<string, PinnedTool>;
  held: Record<string, HeldTool>;
  /**
   * Set by the migration of a version 1 file: tools pinned there only under a later key
   * than the one the identity was first trusted under (on trust on first use, typically,
   * after a rotation). They are held ('new') whatever newTools says until approved, which
   * takes them off this list (review 9, F5).
   */
  unapproved?: string[];
}

export interface PinStore {
  get(server: string): PinnedServer | undefined;
  put(server: string, entry: PinnedServer): void;
  /**
   * Change a server's entry in one step: `fn` gets the entry as stored now and returns the
   * one to store (undefined: no change). The pinning hook uses it when present (else get,
   * then put): a store shared by processes makes it atomic (FilePinStore: under a lock).
   */
  update?(server: string, fn: (entry: PinnedServer | undefined) => PinnedServer | undefined): void;
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

/**
 * Drop what an entry holds as 'issuer-changed' (the issuer was accepted, or the pinned one
 * vouches again): those tools are checked against their pins at the next listing. Returns
 * whether anything was dropped.
 */
export function dropIssuerHolds(entry: PinnedServer): boolean {
  let dropped = false;
  for (const [name, h] of Object.entries(entry.held)) {
    if (h.reason !== 'issuer-changed') continue;
    delete entry.held[name];
    dropped = true;
  }
  return dropped;
}

/** Take approved (or forgotten) tools off a migrated entry's `unapproved` list. */
export function clearUnapproved(entry: PinnedServer, names: readonly string[]): void {
  if (entry.unapproved === undefined) return;
  const left = entry.unapproved.filter((n) => !names.includes(n));
  if (left.length) entry.unapproved = left;
  else delete entry.unapproved;
}

/**
 * How many keys a server entry keeps (review 9, P5): the first one and the newest
 * MAX_KEYS - 1. Every key the trust store accepts for the agent id is recorded, and an
 * issuer that issues freely (or another one vouching for the id) could otherwise grow the
 * file, read and rewritten at every change, without end. What an evicted key was used for
 * is only shown or reported: pins are per agent id, not per key; a key seen again after its
 * eviction is recorded (and reported, 'rotated') again; a version 1 file's key (no issuer)
 * evicted before its server's first session no longer sets the migrated entry's issuer,
 * which then fails closed (held as 'issuer-changed' until accepted). The first key stays:
 * it is the one the identity was first trusted under.
 */
export const MAX_KEYS = 16;

/** Append a key to an entry's `keys`, evicting the oldest but the first past MAX_KEYS. */
export function recordKey(entry: PinnedServer, key: SeenKey): void {
  entry.keys.push(key);
  if (entry.keys.length > MAX_KEYS) entry.keys.splice(1, entry.keys.length - MAX_KEYS);
}

/**
 * The key of a server in a pin store: its agent id (pins belong to the identity, not to one
 * of its keys; version 1 used "<agent id> <fingerprint>").
 */
export function serverKey(peer: { agentId: string }): string {
  return peer.agentId;
}

/**
 * The UTF-8 bytes of `JSON.stringify(value, null, 2)` for a value written `level` levels deep
 * in such a text (each of its lines but the first indented 2 x level more), counted without
 * writing it, and without recursion (any depth). Counted as written, not as canonical JSON:
 * the indentation grows with depth, a definition nested 3,000 deep takes 6 KB as canonical
 * JSON and 20 MB in the pin file. Stops counting (returns a number over `cap`) once past `cap`.
 * Values JSON leaves out of an object (undefined, functions) are left out, written null in
 * an array; `toJSON` is not called (tool definitions come from JSON.parse).
 */
export function indentedJsonBytes(value: unknown, level = 0, cap = Number.POSITIVE_INFINITY): number {
  let total = 0;
  // The containers being counted, innermost last, each with the next member to count: memory
  // grows with the depth, not with the members (an array of millions of numbers is no copy).
  const frames: Array<{ of: unknown[] | Record<string, unknown>; keys: string[] | undefined; next: number; depth: number }> = [];
  const skipped = (x: unknown): boolean => x === undefined || typeof x === 'function' || typeof x === 'symbol';
  const add = (v: unknown, depth: number): void => {
    if (v === null || skipped(v)) total += 4; // null (a skipped value in an array)
    else if (typeof v === 'boolean') total += v ? 4 : 5;
    else if (typeof v === 'number') total += Number.isFinite(v) ? String(v).length : 4;
    else if (typeof v === 'string') total += v.length + 2 > cap - total ? v.length + 2 : utf8Bytes(JSON.stringify(v)); // UTF-8 takes at least a byte per code unit
    else if (typeof v === 'bigint') total += String(v).length; // JSON.stringify throws; never a definition (canonicalJson refuses it)
    else {
      // "[" or "{", then per member a newline, 2 x (depth + 1) spaces, the member and a comma
      // (none after the last), then a newline, 2 x depth spaces and "]" or "}"; empty: "[]", "{}".
      const keys = Array.isArray(v) ? undefined : Object.keys(v as object).filter((k) => !skipped((v as Record<string, unknown>)[k]));
      const n = keys === undefined ? (v as unknown[]).length : keys.length;
      if (n === 0) total += 2;
      else {
        total += 2 + n * (1 + 2 * (depth + 1)) + (n - 1) + 1 + 2 * depth;
        frames.push({ of: v as unknown[] | Record<string, unknown>, keys, next: 0, depth: depth + 1 });
      }
    }
  };
  add(value, level);
  while (frames.length > 0 && total <= cap) {
    const f = frames[frames.length - 1]!;
    const i = f.next++;
    if (f.keys === undefined) {
      if (i < (f.of as unknown[]).length) add((f.of as unknown[])[i], f.depth);
      else frames.pop();
    } else if (i < f.keys.length) {
      const key = f.keys[i]!;
      total += utf8Bytes(JSON.stringify(key)) + 2; // "key": 
      add((f.of as Record<string, unknown>)[key], f.depth);
    } else frames.pop();
  }
  return total;
}

/** The UTF-8 length of a string (a lone surrogate as U+FFFD, 3 bytes; JSON.stringify escapes those anyway). */
function utf8Bytes(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/**
 * The bytes a tool's record (in `tools` or `held`) takes in the pin file as FilePinStore
 * writes it: its name as key, the record (hash, definition, times, reason...) at its depth,
 * and the line's end. What the hook's `maxToolBytes` and `maxEntryBytes` count (the
 * MemoryPinStore keeps the same records). Past `cap`, a number over it.
 */
export function toolRecordBytes(name: string, record: PinnedTool | HeldTool, cap = Number.POSITIVE_INFINITY): number {
  // file > servers > entry > tools|held > name: the key's line is indented 2 x 4 spaces.
  const key = 2 * 4 + utf8Bytes(JSON.stringify(name)) + 2 + 2; // indent, "name": , and ",\n"
  return key + indentedJsonBytes(record, 4, cap - key);
}

/** The bytes of an entry's tool records (toolRecordBytes), pinned and held. */
export function entryToolBytes(entry: Pick<PinnedServer, 'tools' | 'held'>): number {
  let total = 0;
  for (const [name, t] of Object.entries(entry.tools)) total += toolRecordBytes(name, t);
  for (const [name, h] of Object.entries(entry.held)) total += toolRecordBytes(name, h);
  return total;
}

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

/** A map keyed by names a peer chose: no prototype, so "__proto__" is a key like another. */
function servers(entries: Iterable<[string, PinnedServer]> = []): Record<string, PinnedServer> {
  const out = Object.create(null) as Record<string, PinnedServer>;
  for (const [k, v] of entries) out[k] = v;
  return out;
}

export class MemoryPinStore implements PinStore {
  protected servers: Record<string, PinnedServer> = servers();
  get(server: string): PinnedServer | undefined {
    const e = Object.hasOwn(this.servers, server) ? this.servers[server] : undefined;
    return e && clone(e);
  }
  put(server: string, entry: PinnedServer): void {
    this.servers[server] = clone(entry);
  }
  all(): Record<string, PinnedServer> {
    return clone(this.servers);
  }
  update(server: string, fn: (entry: PinnedServer | undefined) => PinnedServer | undefined): void {
    const next = fn(this.get(server));
    if (next !== undefined) this.put(server, next);
  }
}

interface PinFile {
  type: typeof PINS_TYPE;
  version: typeof PINS_VERSION;
  servers: Record<string, PinnedServer>;
}

/** A version 1 server entry: one per (agent id, key). */
interface PinnedServerV1 {
  agentId: string;
  fingerprint: string;
  manifest?: string;
  tools: Record<string, PinnedTool>;
  held: Record<string, HeldTool>;
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const optString = (v: unknown): boolean => v === undefined || typeof v === 'string';

/** The times recorded in an entry (pinnedAt, seenAt), as milliseconds; unparseable ones skipped. */
function times(e: { tools: Record<string, PinnedTool>; held: Record<string, HeldTool> }): number[] {
  const all = [...Object.values(e.tools).map((t) => (isMap(t) ? t.pinnedAt : undefined)), ...Object.values(e.held).map((h) => (isMap(h) ? h.seenAt : undefined))];
  return all.map((t) => (typeof t === 'string' ? Date.parse(t) : Number.NaN)).filter((t) => Number.isFinite(t));
}

/**
 * Version 1 entries (one per agent id and key) as version 2 entries (one per agent id).
 * Under version 1 a new key was a new server, so whatever a later key listed was pinned on
 * trust on first use (with the default newTools 'pin'): only what was pinned under the key
 * the identity was first trusted under (the one with the earliest time recorded; file order
 * breaks ties) stays pinned. What later keys pinned and that key did not is held for one
 * approval (`migrated: true`, `key` the key it was pinned under): another definition of a
 * pinned tool as 'changed' (review 9, P1), a tool that key never pinned as 'new', and its
 * name is put in `unapproved`, so the hook holds it whatever newTools says until
 * `pqmcp pins approve` pins it (review 9, F5). The other keys are read from the least to
 * the most recently active (the latest time recorded in each): the most recent one's other
 * definition is the one held, a later key back at the pinned definition drops an earlier
 * key's held one, and the most recent key's held tools and manifest win. Keys are listed in
 * the order first seen.
 */
export function migrateV1(old: Record<string, PinnedServerV1>, now = new Date()): Record<string, PinnedServer> {
  const groups = new Map<string, Array<{ e: PinnedServerV1; last: number; first: number; order: number }>>();
  let order = 0;
  for (const e of Object.values(old)) {
    const t = times(e);
    const group = groups.get(e.agentId) ?? [];
    group.push({ e, last: t.reduce((a, b) => Math.max(a, b), -Infinity), first: t.length ? t.reduce((a, b) => Math.min(a, b)) : now.getTime(), order: order++ });
    groups.set(e.agentId, group);
  }
  const out = servers();
  for (const [agentId, group] of groups) {
    const merged: PinnedServer = { agentId, keys: [], tools: {}, held: {} };
    group.sort((a, b) => a.first - b.first || a.order - b.order);
    for (const { e, first } of group) if (!merged.keys.some((k) => k.fingerprint === e.fingerprint)) merged.keys.push({ fingerprint: e.fingerprint, firstSeen: new Date(first).toISOString() });
    // The key the identity was first trusted under: its pins, and only its, stay pinned.
    const base = group[0]!.e;
    for (const [name, t] of Object.entries(base.tools)) setToolEntry(merged.tools, name, t);
    const unapproved = new Set<string>();
    group.sort((a, b) => a.last - b.last || a.order - b.order);
    for (const { e } of group) {
      for (const [name, t] of Object.entries(e.tools)) {
        const pinned = toolEntry(merged.tools, name);
        if (pinned?.hash === t.hash) {
          // A later key back at the pinned definition: an earlier key's other one is no longer what the server serves.
          if (toolEntry(merged.held, name)?.migrated === true) delete merged.held[name];
        } else if (pinned) {
          // Another definition pinned under a later key: under version 1 that was typically trust
          // on first use after a rotation (review 8, L2). The older pin stays; this one is held.
          setToolEntry(merged.held, name, { hash: t.hash, definition: t.definition, seenAt: t.pinnedAt, reason: 'changed', changed: changedFields(pinned.definition, t.definition), key: e.fingerprint, migrated: true });
        } else {
          // A tool first pinned under a later key (on first use, after a rotation): held as new.
          setToolEntry(merged.held, name, { hash: t.hash, definition: t.definition, seenAt: t.pinnedAt, reason: 'new', key: e.fingerprint, migrated: true });
          unapproved.add(name);
        }
      }
      for (const [name, h] of Object.entries(e.held)) setToolEntry(merged.held, name, { ...h, key: e.fingerprint });
      if (e.manifest !== undefined) merged.manifest = e.manifest;
    }
    // A tool held under one key and pinned with that very definition under the first is approved.
    for (const [name, h] of Object.entries(merged.held)) if (toolEntry(merged.tools, name)?.hash === h.hash) delete merged.held[name];
    if (unapproved.size) merged.unapproved = [...unapproved];
    out[agentId] = merged;
  }
  return out;
}

const isPinnedTool = (t: unknown): boolean => isMap(t) && typeof t.hash === 'string' && isMap(t.definition) && typeof t.pinnedAt === 'string';
const isHeldTool = (h: unknown): boolean =>
  isMap(h) &&
  typeof h.hash === 'string' &&
  isMap(h.definition) &&
  typeof h.seenAt === 'string' &&
  typeof h.reason === 'string' &&
  (h.changed === undefined || (Array.isArray(h.changed) && h.changed.every((c) => typeof c === 'string'))) &&
  optString(h.from) &&
  optString(h.key) &&
  optString(h.issuer) &&
  (h.migrated === undefined || typeof h.migrated === 'boolean');

function decodePinFile(text: string, path: string): { servers: Record<string, PinnedServer>; version: number } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new InvalidArgumentError(`${path} is not JSON (not a pin file)`);
  }
  const f = json as { type?: unknown; version?: unknown; servers?: unknown };
  if (!isMap(f) || f.type !== PINS_TYPE || (f.version !== 1 && f.version !== PINS_VERSION) || !isMap(f.servers)) {
    throw new InvalidArgumentError(`${path} is not a pqmcp pin file (type ${PINS_TYPE}, version 1 or ${PINS_VERSION})`);
  }
  const bad = (key: string): never => {
    throw new InvalidArgumentError(`${path}: server entry ${JSON.stringify(key)} is malformed`);
  };
  for (const [key, e] of Object.entries(f.servers)) {
    if (!isMap(e) || !isMap(e.tools) || !isMap(e.held) || typeof e.agentId !== 'string' || !optString(e.manifest)) bad(key);
    const entry = e as Record<string, unknown>;
    // Each tool's entry as the code reads it (a wrong type would fail listings, pins list and approve later, or be pinned as it is).
    for (const t of Object.values(entry.tools as Record<string, unknown>)) if (!isPinnedTool(t)) bad(key);
    for (const h of Object.values(entry.held as Record<string, unknown>)) if (!isHeldTool(h)) bad(key);
    if (f.version === 1) {
      if (typeof entry.fingerprint !== 'string') bad(key);
      continue;
    }
    if (key !== entry.agentId || !optString(entry.issuer) || !Array.isArray(entry.keys)) bad(key);
    if (entry.unapproved !== undefined && !(Array.isArray(entry.unapproved) && entry.unapproved.every((n) => typeof n === 'string'))) bad(key);
    for (const k of entry.keys as unknown[]) if (!isMap(k) || typeof k.fingerprint !== 'string' || typeof k.firstSeen !== 'string' || !optString(k.issuer)) bad(key);
  }
  if (f.version === 1) return { servers: migrateV1(f.servers as unknown as Record<string, PinnedServerV1>), version: 1 };
  return { servers: servers(Object.entries(f.servers as Record<string, PinnedServer>)), version: PINS_VERSION };
}

/**
 * Write `text` to `path` atomically with mode 0600: a temporary file beside it, fsync, rename.
 * With `replace` false an existing `path` is kept (EEXIST): the file is linked, not renamed.
 */
export function writeFileAtomic(path: string, text: string, replace = true): void {
  const tmp = join(dirname(path), `.${process.pid}.${Date.now()}.${randomBytes(4).toString('hex')}.pins.tmp`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    if (replace) renameSync(tmp, path);
    else linkSync(tmp, path); // fails with EEXIST rather than replace (or follow) what is there
  } catch (err) {
    unlinkSync(tmp);
    throw err;
  }
  if (!replace) unlinkSync(tmp);
}

export class FilePinStore extends MemoryPinStore {
  /** The text last read or written: the file is decoded again only when it differs. */
  private text: string | undefined;
  /** The text of a version 1 file as read, kept as `<path>.v1` before it is first rewritten. */
  private v1Text: string | undefined;

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
    this.locked(() => {
      super.put(server, entry);
      this.save();
    });
  }

  /**
   * Change a server's entry as it is in the file now: `fn` gets it (undefined: none) and
   * returns the entry to write, or undefined to write nothing. A change is made under the
   * file's lock (`<file>.lock`) to the file re-read then, so one another process made in
   * between is neither lost nor undone (review 9, P4): `fn` runs first on the file as read
   * without the lock and, if it changes something, again under the lock; the last run is
   * the one that counts. A check that changes nothing takes no lock and writes nothing (a
   * read-only pin file still serves). `fn` must not use the file itself.
   */
  override update(server: string, fn: (entry: PinnedServer | undefined) => PinnedServer | undefined): void {
    this.reload();
    if (fn(super.get(server)) === undefined) return;
    this.locked(() => {
      const next = fn(super.get(server));
      if (next === undefined) return;
      super.put(server, next);
      this.save();
    });
  }

  /** Remove a server's entry (or one of its tools, pinned or held). Returns whether anything was removed. */
  forget(server: string, tool?: string): boolean {
    return this.locked(() => this.forgetLocked(server, tool));
  }

  private forgetLocked(server: string, tool?: string): boolean {
    const e = Object.hasOwn(this.servers, server) ? this.servers[server] : undefined;
    if (!e) return false;
    if (tool === undefined) delete this.servers[server];
    else if (toolEntry(e.tools, tool) || toolEntry(e.held, tool) || e.unapproved?.includes(tool)) {
      delete e.tools[tool];
      delete e.held[tool];
      clearUnapproved(e, [tool]);
    } else return false;
    this.save();
    return true;
  }

  /**
   * Approve held tools of a server (all, or the named ones): they become pinned. Returns the
   * names approved. With `expected` (name -> hash prefix), a tool is approved only if the
   * definition held NOW has that hash: what was reviewed is what gets pinned, even if the
   * server listed another definition in between (review F6).
   *
   * A tool held as 'issuer-changed' is never approved here, named or not: accepting another
   * issuer is acceptIssuer's, and pins no definition (review 9, F4).
   */
  approve(server: string, tools?: readonly string[], expected: Readonly<Record<string, string>> = {}): string[] {
    return this.locked(() => this.approveLocked(server, tools, expected));
  }

  private approveLocked(server: string, tools: readonly string[] | undefined, expected: Readonly<Record<string, string>>): string[] {
    const e = Object.hasOwn(this.servers, server) ? this.servers[server] : undefined;
    if (!e) return [];
    const names = tools ?? Object.keys(e.held);
    const done: string[] = [];
    for (const name of names) {
      const h = toolEntry(e.held, name);
      if (!h || h.reason === 'issuer-changed') continue;
      const want = Object.hasOwn(expected, name) ? expected[name]! : undefined;
      if (want !== undefined && !h.hash.startsWith(want.toLowerCase())) continue;
      setToolEntry(e.tools, name, { hash: h.hash, definition: h.definition, pinnedAt: new Date().toISOString() });
      delete e.held[name];
      done.push(name);
    }
    if (done.length) {
      clearUnapproved(e, done);
      this.save();
    }
    return done;
  }

  /**
   * Accept `issuer` as the one vouching for a server whose tools are held as 'issuer-changed'
   * under it (`pqmcp pins approve <id> --accept-issuer <issuer>`): it becomes the server's
   * issuer and the 'issuer-changed' holds are dropped. No definition is pinned (review 9, F4):
   * the next listing checks each tool against the pin it had, as after a key rotation, so a
   * tool the new issuer's server redefined is then held as 'changed', to be approved on its
   * own. Returns false (nothing written) unless a tool is held as 'issuer-changed' under
   * `issuer`.
   */
  acceptIssuer(server: string, issuer: string): boolean {
    return this.locked(() => this.acceptIssuerLocked(server, issuer));
  }

  private acceptIssuerLocked(server: string, issuer: string): boolean {
    const e = Object.hasOwn(this.servers, server) ? this.servers[server] : undefined;
    if (!e || !Object.values(e.held).some((h) => h.reason === 'issuer-changed' && h.issuer === issuer)) return false;
    e.issuer = issuer;
    dropIssuerHolds(e);
    this.save();
    return true;
  }

  /** Run a change holding the file's lock, on the file as it is now (re-read under the lock). */
  private locked<T>(fn: () => T): T {
    return withFileLock(this.path, () => {
      this.reload();
      try {
        return fn();
      } catch (err) {
        this.text = undefined; // what failed half-way is read again from the file next time
        throw err;
      }
    });
  }

  /**
   * Read the file, and decode it if its text is not the one last read or written (a change
   * is found by content: a modification time and size could miss one written in the same
   * tick with the same length).
   */
  private reload(): void {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return; // a new pin file
      throw err;
    }
    if (text === this.text) return;
    const decoded = decodePinFile(text, this.path);
    this.servers = decoded.servers;
    this.v1Text = decoded.version === 1 ? text : undefined;
    this.text = text;
  }

  private save(): void {
    if (this.v1Text !== undefined) {
      // The version 1 file as it was, once, beside the new one (an existing copy is kept).
      try {
        writeFileAtomic(`${this.path}.v1`, this.v1Text, false);
      } catch (err) {
        if ((err as { code?: string }).code !== 'EEXIST') throw err;
      }
      this.v1Text = undefined;
    }
    const file: PinFile = { type: PINS_TYPE, version: PINS_VERSION, servers: this.servers };
    const text = `${JSON.stringify(file, null, 2)}\n`;
    writeFileAtomic(this.path, text);
    this.text = text;
  }
}
