/**
 * The client's side of resumption: tickets received from servers, kept per server identity
 * and endpoint, each used at most once.
 *
 * Sharp edges:
 * - A ClientTicket holds the PSK: anyone who has it (and the sealed ticket) can resume as
 *   this client until it expires. Keep it in memory, or in a 0600 file (pqmcp connect's
 *   --tickets); never log it.
 * - `take()` removes the ticket it returns (single use; the server refuses a second use
 *   anyway). Expired tickets are dropped on the way.
 * - Bounded: `maxPerServer` tickets per key (oldest dropped) and `maxServers` keys (least
 *   recently used dropped).
 */
import { equalBytes, fromHex, toHex } from '../bytes.js';
import { InvalidArgumentError } from '../errors.js';

export interface ClientTicket {
  /** The sealed ticket, sent back as it came. */
  ticket: Uint8Array;
  psk: Uint8Array;
  suite: number;
  /** Unix seconds: min(receipt + lifetime, the server credential's not_after). */
  expiresAt: number;
  /**
   * The server's credential as this client verified it. Before each resumption it is
   * re-checked without the issuer signature if this is the object the handshake made in
   * this process, else verified in full (a store may have been written by someone else).
   */
  serverCredential: Uint8Array;
  /** SHA-256 of this client's own credential when the ticket was issued: offered only with that credential. */
  clientCredentialHash: Uint8Array;
}

/**
 * Where a client transport keeps tickets between connections. Trusted with their secrecy
 * (PSKs) and their integrity: a ticket taken back is verified in full unless it is the
 * object put (docs/api.md), yet a writer holding some server's genuine credential can
 * plant a ticket for it with a PSK of its own. Keep it where only this client writes.
 */
export interface TicketStore {
  /** Remove and return the newest unexpired ticket for `key`, if any. */
  take(key: string, nowMs: number): ClientTicket | undefined;
  put(key: string, ticket: ClientTicket): void;
}

/** How many tickets takeTicketFor takes from a store before it gives up (a store keeps 4 per key by default). */
const MAX_TAKES = 64;

/**
 * The newest unexpired ticket under `key` that was issued to the client credential whose
 * SHA-256 is `clientCredentialHash`, taken from `store`. Tickets of other credentials found
 * on the way (two identities of one process sharing a store for one server) are put back,
 * oldest first, so each identity keeps its own (review 16, R16-10: the handshake could not
 * offer them, and they were dropped).
 */
export function takeTicketFor(store: TicketStore, key: string, clientCredentialHash: Uint8Array, nowMs: number): ClientTicket | undefined {
  const others: ClientTicket[] = [];
  let found: ClientTicket | undefined;
  try {
    for (let i = 0; i < MAX_TAKES; i++) {
      const ticket = store.take(key, nowMs);
      if (ticket === undefined || others.includes(ticket)) break;
      if (equalBytes(ticket.clientCredentialHash, clientCredentialHash)) {
        found = ticket;
        break;
      }
      others.push(ticket);
    }
  } finally {
    for (let i = others.length - 1; i >= 0; i--) store.put(key, others[i]!);
  }
  return found;
}

export interface ClientTicketJson {
  ticket: string;
  psk: string;
  suite: number;
  expiresAt: number;
  serverCredential: string;
  clientCredentialHash: string;
}

export function ticketToJson(t: ClientTicket): ClientTicketJson {
  return { ticket: toHex(t.ticket), psk: toHex(t.psk), suite: t.suite, expiresAt: t.expiresAt, serverCredential: toHex(t.serverCredential), clientCredentialHash: toHex(t.clientCredentialHash) };
}

export function ticketFromJson(j: unknown): ClientTicket {
  const v = j as Partial<ClientTicketJson> | null;
  const hex = (x: unknown, field: string): Uint8Array => {
    if (typeof x !== 'string' || !/^([0-9a-f]{2})+$/.test(x)) throw new InvalidArgumentError(`ticket ${field} must be lowercase hex`);
    return fromHex(x);
  };
  if (typeof v !== 'object' || v === null) throw new InvalidArgumentError('ticket must be an object');
  if (!Number.isSafeInteger(v.suite) || !Number.isSafeInteger(v.expiresAt)) throw new InvalidArgumentError('ticket suite and expiresAt must be whole numbers');
  return {
    ticket: hex(v.ticket, 'ticket'),
    psk: hex(v.psk, 'psk'),
    suite: v.suite!,
    expiresAt: v.expiresAt!,
    serverCredential: hex(v.serverCredential, 'serverCredential'),
    clientCredentialHash: hex(v.clientCredentialHash, 'clientCredentialHash'),
  };
}

/** An in-memory TicketStore. Share one between the transports of one client process. */
export class MemoryTicketStore implements TicketStore {
  protected readonly byKey = new Map<string, ClientTicket[]>();

  constructor(
    readonly maxPerServer = 4,
    readonly maxServers = 64,
  ) {
    if (!Number.isSafeInteger(maxPerServer) || maxPerServer < 1) throw new InvalidArgumentError('maxPerServer must be a positive whole number');
    if (!Number.isSafeInteger(maxServers) || maxServers < 1) throw new InvalidArgumentError('maxServers must be a positive whole number');
  }

  /** Tickets held for `key` (for tests and diagnostics). */
  count(key: string): number {
    return this.byKey.get(key)?.length ?? 0;
  }

  take(key: string, nowMs: number): ClientTicket | undefined {
    const list = this.byKey.get(key);
    if (!list) return undefined;
    const live = list.filter((t) => t.expiresAt * 1000 > nowMs);
    const ticket = live.pop();
    if (live.length > 0) this.byKey.set(key, live);
    else this.byKey.delete(key);
    this.changed();
    return ticket;
  }

  put(key: string, ticket: ClientTicket): void {
    const list = this.byKey.get(key) ?? [];
    this.byKey.delete(key);
    list.push(ticket);
    while (list.length > this.maxPerServer) list.shift();
    this.byKey.set(key, list);
    while (this.byKey.size > this.maxServers) this.byKey.delete(this.byKey.keys().next().value as string);
    this.changed();
  }

  toJSON(): { version: 1; servers: Record<string, ClientTicketJson[]> } {
    const servers: Record<string, ClientTicketJson[]> = {};
    for (const [k, list] of this.byKey) servers[k] = list.map(ticketToJson);
    return { version: 1, servers };
  }

  /** Load the JSON form; expired tickets are dropped. */
  load(json: unknown, nowMs: number = Date.now()): this {
    const v = json as { version?: unknown; servers?: unknown } | null;
    if (typeof v !== 'object' || v === null || v.version !== 1 || typeof v.servers !== 'object' || v.servers === null) {
      throw new InvalidArgumentError('ticket store JSON: expected { version: 1, servers: {...} }');
    }
    for (const [k, list] of Object.entries(v.servers as Record<string, unknown>)) {
      if (!Array.isArray(list)) throw new InvalidArgumentError('ticket store JSON: each server maps to an array');
      for (const t of list) {
        const ticket = ticketFromJson(t);
        if (ticket.expiresAt * 1000 > nowMs) this.put(k, ticket);
      }
    }
    return this;
  }

  /** Called after every change (a persistent store saves here). */
  protected changed(): void {}
}
