/**
 * Ticket keys: the secrets a server seals resumption tickets under, and their file form.
 * Several servers that load the same keys accept each other's tickets.
 *
 *   {
 *     "version": 1,
 *     "keys": [                                   // newest first: keys[0] seals
 *       { "id": "<16 hex>", "key": "<base64url of 32 bytes>", "createdAt": <unix seconds> },
 *       ...                                        // older keys: open only (overlap)
 *     ]
 *   }
 *
 * Sharp edges:
 * - Rotation with overlap: `rotate()` puts a fresh key first and keeps the previous ones (at
 *   most `keep`), so tickets sealed before the rotation stay valid. Rotate no more often
 *   than the ticket lifetime and keep at least one previous key, and no valid ticket is
 *   lost; a key dropped from the file invalidates every ticket sealed under it (a quick way
 *   to revoke them all).
 * - Whoever holds these keys can read every ticket (and so the PSK of every resumable
 *   session) and mint tickets for any client identity they have seen a credential of. Keep
 *   the file like a private key (0600), and rotate it.
 * - Key ids are random, 8 bytes; they only select a key, they are not secret.
 */
import { equalBytes, fromHex, toHex } from '../bytes.js';
import type { CryptoBackend } from '../crypto/types.js';
import { InvalidArgumentError } from '../errors.js';
import { base64urlDecode, base64urlEncode } from '../identity/base64url.js';

export const TICKET_KEY_ID_LENGTH = 8;
export const TICKET_KEY_LENGTH = 32;
export const TICKET_KEYS_JSON_VERSION = 1;
/** Most keys one file may hold (current + previous). */
export const MAX_TICKET_KEYS = 8;

export interface TicketKey {
  readonly id: Uint8Array;
  readonly key: Uint8Array;
  /** Unix seconds. */
  readonly createdAt: number;
}

export interface TicketKeysJson {
  version: 1;
  keys: { id: string; key: string; createdAt: number }[];
}

export class TicketKeys {
  private readonly list: readonly TicketKey[];

  /** `keys[0]` seals; every key opens. Ids must be distinct. */
  constructor(keys: readonly TicketKey[]) {
    if (!Array.isArray(keys) || keys.length === 0 || keys.length > MAX_TICKET_KEYS) {
      throw new InvalidArgumentError(`ticket keys: 1..${MAX_TICKET_KEYS} keys required`);
    }
    keys.forEach((k, i) => {
      if (!(k?.id instanceof Uint8Array) || k.id.length !== TICKET_KEY_ID_LENGTH) throw new InvalidArgumentError(`ticket keys: keys[${i}].id must be ${TICKET_KEY_ID_LENGTH} bytes`);
      if (!(k.key instanceof Uint8Array) || k.key.length !== TICKET_KEY_LENGTH) throw new InvalidArgumentError(`ticket keys: keys[${i}].key must be ${TICKET_KEY_LENGTH} bytes`);
      if (!Number.isSafeInteger(k.createdAt) || k.createdAt < 0) throw new InvalidArgumentError(`ticket keys: keys[${i}].createdAt must be unix seconds`);
      if (keys.slice(0, i).some((o) => equalBytes(o.id, k.id))) throw new InvalidArgumentError(`ticket keys: keys[${i}].id is a duplicate`);
    });
    this.list = keys.map((k) => ({ id: new Uint8Array(k.id), key: new Uint8Array(k.key), createdAt: k.createdAt }));
  }

  /** One fresh key. */
  static generate(backend: CryptoBackend, nowMs: number = Date.now()): TicketKeys {
    return new TicketKeys([freshKey(backend, nowMs)]);
  }

  /** A fresh key first, then the current ones, keeping at most `keep` previous keys (default 2). */
  rotate(backend: CryptoBackend, options: { keep?: number; nowMs?: number } = {}): TicketKeys {
    const keep = options.keep ?? 2;
    if (!Number.isSafeInteger(keep) || keep < 0 || keep > MAX_TICKET_KEYS - 1) throw new InvalidArgumentError(`keep must be a whole number in [0, ${MAX_TICKET_KEYS - 1}]`);
    return new TicketKeys([freshKey(backend, options.nowMs ?? Date.now()), ...this.list.slice(0, keep)]);
  }

  /** The key new tickets are sealed under. */
  get current(): TicketKey {
    return this.list[0]!;
  }

  get size(): number {
    return this.list.length;
  }

  /** Key ids, newest first (hex). */
  get ids(): string[] {
    return this.list.map((k) => toHex(k.id));
  }

  find(id: Uint8Array): TicketKey | undefined {
    return this.list.find((k) => equalBytes(k.id, id));
  }

  toJSON(): TicketKeysJson {
    return { version: TICKET_KEYS_JSON_VERSION, keys: this.list.map((k) => ({ id: toHex(k.id), key: base64urlEncode(k.key), createdAt: k.createdAt })) };
  }

  /** Parse the file form (object or JSON text). Strict: InvalidArgumentError naming the field. */
  static fromJSON(json: unknown): TicketKeys {
    let value = json;
    if (typeof json === 'string') {
      try {
        value = JSON.parse(json);
      } catch {
        throw new InvalidArgumentError('ticket keys JSON: not valid JSON');
      }
    }
    const v = value as Partial<TicketKeysJson> | null;
    if (typeof v !== 'object' || v === null || v.version !== TICKET_KEYS_JSON_VERSION) throw new InvalidArgumentError(`ticket keys JSON: version must be ${TICKET_KEYS_JSON_VERSION}`);
    // Section 12's rules for every pqmcp file: unknown fields refused, hex in either case.
    const unknown = Object.keys(v).filter((f) => f !== 'version' && f !== 'keys');
    if (unknown.length > 0) throw new InvalidArgumentError(`ticket keys JSON: unknown field ${JSON.stringify(unknown[0])}`);
    if (!Array.isArray(v.keys)) throw new InvalidArgumentError('ticket keys JSON: keys must be an array');
    const keys = v.keys.map((k, i): TicketKey => {
      if (typeof k !== 'object' || k === null) throw new InvalidArgumentError(`ticket keys JSON: keys[${i}] must be an object`);
      const extra = Object.keys(k).filter((f) => !['id', 'key', 'createdAt'].includes(f));
      if (extra.length > 0) throw new InvalidArgumentError(`ticket keys JSON: keys[${i}] has unknown field ${JSON.stringify(extra[0])}`);
      if (typeof k.id !== 'string' || !/^[0-9a-fA-F]{16}$/.test(k.id)) throw new InvalidArgumentError(`ticket keys JSON: keys[${i}].id must be 16 hex digits`);
      const key = typeof k.key === 'string' ? base64urlDecode(k.key) : undefined;
      if (!key || key.length !== TICKET_KEY_LENGTH) throw new InvalidArgumentError(`ticket keys JSON: keys[${i}].key must be base64url of ${TICKET_KEY_LENGTH} bytes`);
      return { id: fromHex(k.id.toLowerCase()), key, createdAt: k.createdAt };
    });
    return new TicketKeys(keys);
  }
}

function freshKey(backend: CryptoBackend, nowMs: number): TicketKey {
  return { id: backend.randomBytes(TICKET_KEY_ID_LENGTH), key: backend.randomBytes(TICKET_KEY_LENGTH), createdAt: Math.floor(nowMs / 1000) };
}
