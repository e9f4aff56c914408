/**
 * Admission of unauthenticated connections: every pending handshake is accounted to its
 * source, and a full table makes room by eviction instead of refusing the newcomer.
 *
 * Policy (docs/threat-model.md, "Admission"):
 * - A source is the client's address: IPv4 as is (an IPv4-mapped IPv6 address counts as
 *   its IPv4 address), IPv6 by its /64 prefix (one subscriber usually holds a whole /64,
 *   so counting single IPv6 addresses would give one attacker 2^64 sources).
 * - Behind a reverse proxy the source is the client address the proxy reports, but ONLY
 *   when the immediate peer is one of the configured trusted proxies; a header from any
 *   other peer is ignored (anyone can write one).
 * - At most `maxPerSource` pending handshakes per source and `maxPending` in all. A
 *   newcomer always gets a slot. When its own source is at its cap, that source's oldest
 *   entry is evicted; when the whole table is full, the source holding the most entries
 *   loses one (ties: the source whose candidate is oldest). Within the losing source, the
 *   oldest entry that has not yet delivered its first flight goes first, then the oldest.
 * - Why this and not random or global-oldest eviction: an honest client holds one entry
 *   and completes its first flight within a round trip, so it is never the largest holder
 *   while any other source holds two entries. To evict it an attacker must fill the whole
 *   table with one entry per source: `maxPending` distinct addresses (64 by default),
 *   where global-oldest eviction needs only the rate to recycle the table within one
 *   handshake, and random eviction hits honest clients with probability proportional to
 *   the flood. Idle sockets from one source only ever evict each other.
 *
 * Sharp edges:
 * - Pure bookkeeping: no timers and no sockets. The caller closes what `admit()` evicts
 *   and calls `release()` exactly once per admitted entry when it ends (or is handed over).
 * - `release()` of an entry already evicted or released is a no-op.
 */
import { BlockList, isIP } from 'node:net';
import { InvalidArgumentError } from '../errors.js';

/** One admitted pending handshake. */
export interface Ticket<T> {
  readonly source: string;
  readonly value: T;
  /** Admission order (for "oldest"). */
  readonly serial: number;
  /** True once the client's first flight (its ClientHello) is complete. */
  progressed: boolean;
  /** False once evicted or released. */
  live: boolean;
}

export interface AdmissionLimits {
  /** Pending handshakes in all. */
  maxPending: number;
  /** Pending handshakes per source. */
  maxPerSource: number;
}

export class AdmissionTable<T> {
  private readonly bySource = new Map<string, Ticket<T>[]>();
  private count = 0;
  private serial = 0;

  constructor(private readonly limits: AdmissionLimits) {
    for (const [name, value] of Object.entries(limits)) {
      if (!Number.isInteger(value) || value < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
    }
  }

  /** Pending handshakes in all. */
  get size(): number {
    return this.count;
  }

  /** Pending handshakes of `source`. */
  countFor(source: string): number {
    return this.bySource.get(source)?.length ?? 0;
  }

  /**
   * Admit a newcomer; returns its ticket and the entries evicted to make room for it (the
   * caller closes them). `maxPerSource` overrides the per-source cap for this admission
   * (a trusted proxy's address standing for many clients).
   */
  admit(source: string, value: T, maxPerSource = this.limits.maxPerSource): { ticket: Ticket<T>; evicted: T[] } {
    const evicted: T[] = [];
    const own = this.bySource.get(source);
    if (own !== undefined && own.length >= maxPerSource) evicted.push(this.evict(pick(own)));
    else if (this.count >= this.limits.maxPending) evicted.push(this.evict(this.victim()));
    const ticket: Ticket<T> = { source, value, serial: this.serial++, progressed: false, live: true };
    const list = this.bySource.get(source);
    if (list) list.push(ticket);
    else this.bySource.set(source, [ticket]);
    this.count++;
    return { ticket, evicted };
  }

  /** The entry's first flight is complete: it is evicted only after entries that are still silent. */
  progress(ticket: Ticket<T>): void {
    ticket.progressed = true;
  }

  /** The entry ended or was handed over. */
  release(ticket: Ticket<T>): void {
    if (!ticket.live) return;
    ticket.live = false;
    const list = this.bySource.get(ticket.source)!;
    list.splice(list.indexOf(ticket), 1);
    if (list.length === 0) this.bySource.delete(ticket.source);
    this.count--;
  }

  private evict(ticket: Ticket<T>): T {
    this.release(ticket);
    return ticket.value;
  }

  /** The candidate of the source holding the most entries (ties: the older candidate). */
  private victim(): Ticket<T> {
    let best: Ticket<T> | undefined;
    let bestCount = 0;
    for (const list of this.bySource.values()) {
      if (list.length < bestCount) continue;
      const candidate = pick(list);
      if (list.length > bestCount || candidate.serial < best!.serial) {
        best = candidate;
        bestCount = list.length;
      }
    }
    return best!;
  }
}

/** Within one source (admission order): the oldest entry still silent, else the oldest. */
function pick<T>(list: Ticket<T>[]): Ticket<T> {
  return list.find((t) => !t.progressed) ?? list[0]!;
}

// --- sources ------------------------------------------------------------------------------

/**
 * The keys of recently seen addresses: a connection's address is keyed at its accept, its
 * upgrade, its admission, its crypto and its failure report (eighth session of issue 10).
 * Bounded: cleared when full, so a flood from many addresses costs a lookup more, no memory;
 * only addresses of a plain address's length are kept (an IPv6 zone id may be long).
 */
const recentKeys = new Map<string, string>();
const MAX_RECENT_KEYS = 1024;
const MAX_KEPT_ADDRESS = 64;

/** The accounting key of an address: IPv4 (mapped forms unwrapped), or an IPv6 /64 prefix. */
export function sourceKey(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  if (address.length > MAX_KEPT_ADDRESS) return keyOf(address);
  let key = recentKeys.get(address);
  if (key === undefined) {
    if (recentKeys.size >= MAX_RECENT_KEYS) recentKeys.clear();
    key = keyOf(address);
    recentKeys.set(address, key);
  }
  return key;
}

function keyOf(address: string): string {
  const bare = unmapped(address.replace(/%.*$/, ''));
  if (isIP(bare) !== 6) return bare;
  return `${expandIpv6(bare).slice(0, 4).join(':')}::/64`;
}

/** An IPv4-mapped IPv6 address (::ffff:1.2.3.4, or in hex, ::ffff:102:304) as IPv4; anything else unchanged. */
function unmapped(address: string): string {
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (dotted) return dotted[1]!;
  if (isIP(address) !== 6) return address;
  const g = expandIpv6(address);
  if (!g.slice(0, 5).every((x) => x === '0') || g[5] !== 'ffff') return address;
  const [hi, lo] = [parseInt(g[6]!, 16), parseInt(g[7]!, 16)];
  return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
}

/** An X-Forwarded-For entry without a port: "1.2.3.4:5678" and "[2001:db8::1]:443" are the bare address. */
function withoutPort(hop: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hop);
  if (bracketed) return bracketed[1]!;
  const v4 = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(hop);
  return v4 ? v4[1]! : hop;
}

/** The eight 16-bit groups of an IPv6 address, as lowercase hex without leading zeros. */
function expandIpv6(address: string): string[] {
  const toGroups = (part: string): string[] => {
    if (part === '') return [];
    const groups = part.split(':');
    const last = groups[groups.length - 1]!;
    if (last.includes('.')) {
      const [a, b, c, d] = last.split('.').map(Number) as [number, number, number, number];
      groups.splice(-1, 1, ((a << 8) | b).toString(16), ((c << 8) | d).toString(16));
    }
    return groups;
  };
  const [head, tail] = address.split('::') as [string, string | undefined];
  const h = toGroups(head);
  const t = tail === undefined ? [] : toGroups(tail);
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => parseInt(g, 16).toString(16));
}

/**
 * The proxies whose client-address reports are believed: addresses or CIDR blocks
 * ('10.0.0.0/8', '::1', '127.0.0.2'). Throws InvalidArgumentError on anything else.
 */
export class TrustedProxies {
  private readonly list = new BlockList();
  readonly size: number;

  constructor(entries: readonly string[]) {
    if (!Array.isArray(entries)) throw new InvalidArgumentError('trustedProxies must be an array of addresses or CIDR blocks');
    for (const entry of entries) {
      const [address, bits, extra] = String(entry).split('/');
      const family = isIP(address ?? '');
      if (family === 0 || extra !== undefined) throw new InvalidArgumentError(`trustedProxies: ${JSON.stringify(entry)} is not an address or CIDR block`);
      const type = family === 4 ? 'ipv4' : 'ipv6';
      if (bits === undefined) {
        this.list.addAddress(address!, type);
        continue;
      }
      const prefix = Number(bits);
      if (!/^\d+$/.test(bits) || prefix > (family === 4 ? 32 : 128)) throw new InvalidArgumentError(`trustedProxies: bad prefix length in ${JSON.stringify(entry)}`);
      this.list.addSubnet(address!, prefix, type);
    }
    this.size = entries.length;
  }

  has(address: string | undefined): boolean {
    if (address === undefined || this.size === 0) return false;
    const bare = unmapped(address.replace(/%.*$/, ''));
    const family = isIP(bare);
    return family !== 0 && this.list.check(bare, family === 4 ? 'ipv4' : 'ipv6');
  }
}

/**
 * The client's address: the immediate peer, unless that peer is a trusted proxy, in which
 * case the proxy's report wins: `X-Forwarded-For` read from the right, skipping the
 * trusted proxies (each proxy appends the address it saw, so the rightmost untrusted entry
 * is the first one no trusted proxy vouches for). A trusted peer without a usable header is
 * itself the source. Entries may carry a port ("1.2.3.4:5678", "[2001:db8::1]:443").
 *
 * When every entry is trusted (a client whose own address is in a trusted range), the
 * rightmost entry is the source: the one our peer wrote. Anything left of it may have
 * come from the client, so the leftmost is never believed (review F9): such clients are
 * told apart only as far as the nearest proxy saw them. That holds only while no client
 * lives in a trusted range: one that does can write an untrusted address left of its own,
 * and is taken for it (review 21, R21-2); trust the proxies' own addresses, not their
 * clients' ranges (docs/usage.md, trustedProxies).
 *
 * Read from the right, an entry at a time, at most MAX_FORWARDED_HOPS of them (empty ones
 * included): the header's length (up to Node's 16 KiB) costs nothing past them (review 21,
 * R21-3). A header with more, all trusted or empty, is taken as garbage: the proxy itself.
 */
export function clientAddress(peer: string | undefined, forwardedFor: string | string[] | undefined, trusted: TrustedProxies): string | undefined {
  if (!trusted.has(peer) || forwardedFor === undefined) return peer;
  const header = Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor;
  let rightmost: string | undefined;
  let end = header.length;
  for (let examined = 0; end > 0 && examined < MAX_FORWARDED_HOPS; examined++) {
    const comma = header.lastIndexOf(',', end - 1);
    const hop = withoutPort(header.slice(comma + 1, end).trim());
    end = comma === -1 ? 0 : comma;
    if (hop === '') continue; // An empty item (",,") is no hop, but counts as read.
    if (isIP(hop) === 0) return peer; // Garbage from a trusted proxy: fall back to the proxy itself.
    if (!trusted.has(hop)) return hop;
    rightmost ??= hop;
  }
  if (end > 0) return peer; // More entries than we read, all trusted or empty: garbage.
  return rightmost ?? peer;
}

/** The most X-Forwarded-For entries read (from the right, empty ones included): no real chain of proxies is longer. */
export const MAX_FORWARDED_HOPS = 32;
