/**
 * The listener's edge: who a connection comes from, whether it gets a pending-handshake
 * slot (admission.ts), the first-flight deadline, and the gate in front of its handshake
 * crypto (crypto-pool.ts). The server calls it; it knows nothing of MCP.
 *
 * Sharp edges:
 * - The first flight is complete when the handshake asks for its encapsulation: the
 *   ClientHello arrived whole and parsed. A connection without it after
 *   `firstFlightTimeoutMs` is aborted (ERR_HANDSHAKE_TIMEOUT), however slowly bytes trickle.
 * - Evicted connections are aborted with ServerBusyError (close code 4006).
 * - `release()` must be called once per admitted connection (closed or handed over).
 * - New connections are rate-limited per source BEFORE the WebSocket upgrade
 *   (`connectionRatePerSource`, burst of three seconds' worth): a refused upgrade costs no
 *   WebSocket, no Session and no admission slot, and is answered 429 after a second's hold
 *   (refusals.ts), so a client that re-connects as soon as it is refused is slowed down too.
 * - Every TCP connection of an own-port listener holds a slot from its accept until its
 *   upgrade request (pre-upgrade.ts), deadline `firstFlightTimeoutMs`: of its peer's
 *   address (`acceptDirect`), or, when the peer is a trusted proxy, a shared slot of the
 *   proxy ("via <proxy>", global cap only) since only the request's X-Forwarded-For names
 *   the client. With `proxyProtocol` (proxy-front.ts): of its proxy (shared) until the
 *   PROXY header, then of the client the header names. At the upgrade request the
 *   WebSocket takes its own slot, of the request's client address, as above. A listener
 *   attached to the caller's `server` does not account connections before their upgrade:
 *   that server's own timeouts (`headersTimeout`...) govern them.
 * - Before it takes that slot, a new TCP connection needs a token of its source's accept
 *   rate (`acceptRatePerSource`, `admitAccept`; with `proxyProtocol`, of the client the
 *   header names, once it arrived). Without one it is answered 429 at once and destroyed
 *   once written, never handed to the HTTP server (server.ts accepts on a TCP front): no
 *   slot, no eviction, no HTTP parser, no hold (held answers are what an accept flood
 *   would turn into descriptors). A trusted X-Forwarded-For proxy's connections are not
 *   rated: each carries a client named only by its request, and one client's flood through
 *   the proxy would otherwise spend every other client's accepts; the connection rate
 *   applies to each client at its upgrade request.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { availableParallelism } from 'node:os';
import type { Socket } from 'node:net';
import { HandshakeTimeoutError, InvalidArgumentError, ServerBusyError, type PqmcpError } from '../errors.js';
import type { CompositeKeyPair } from '../crypto/composite.js';
import type { BackendName, CryptoBackend } from '../crypto/types.js';
import type { CryptoRequest, CryptoResult } from '../handshake/types.js';
import { AdmissionTable, TrustedProxies, clientAddress, sourceKey, type Ticket } from './admission.js';
import { CryptoPool, type CryptoPoolStats } from './crypto-pool.js';
import { MAX_TIMER_MS, timerLimitText, unref, type Timer } from './timers.js';
import { SourceRates } from './rate.js';
import { RATE_ANSWER, Refusals } from './refusals.js';
import { answerAndClose, destroySocket } from './http-answer.js';
import { ProxyFront, UpgradeTimeoutError } from './proxy-front.js';
import { PreUpgrade, type Report } from './pre-upgrade.js';
import { stackless } from '../stackless.js';

/** The listener options this module reads (a contiguous block of PqmcpServerOptions). */
export interface EdgeOptions {
  /** Unfinished handshakes at once; when full, one is evicted to admit a newcomer. Default 64. */
  maxPendingHandshakes?: number;
  /** Unfinished handshakes per source address (IPv6: per /64). Default 8. */
  maxPendingPerSource?: number;
  /**
   * The ClientHello must be complete within this after the WebSocket opens. Default 2 000 ms.
   * On an own-port listener it also bounds the time from the TCP accept (with
   * `proxyProtocol`: from the PROXY header) to the WebSocket upgrade request.
   */
  firstFlightTimeoutMs?: number;
  /** Reverse proxies whose X-Forwarded-For is believed (addresses or CIDR blocks). Default none. */
  trustedProxies?: readonly string[];
  /** Worker threads for the handshake's encapsulation and signature; 0: on the event loop. Default: cores - 1, from 1 to 4. */
  cryptoWorkers?: number;
  /** New handshakes waiting for crypto before the busiest source's are refused (server_busy). Default 64. */
  maxCryptoQueue?: number;
  /** New handshakes per second per source address before server_busy. Default 50; 0: no limit. */
  handshakeRatePerSource?: number;
  /**
   * New connections (WebSocket upgrades) per second per source address, with a burst of
   * three seconds' worth; past it the upgrade is refused with HTTP 429 (after a one-second
   * hold) before any WebSocket or handshake state exists. Default 20; 0: no limit.
   */
  connectionRatePerSource?: number;

  // --- PROXY protocol from trusted proxies (proxy-front.ts) ---
  /**
   * Every connection must come from a `trustedProxies` peer and start with a PROXY
   * protocol header (v1 or v2, told apart by their first bytes), read before any HTTP; the
   * client it names is the connection's source (X-Forwarded-For is then never read). A
   * connection from any other peer is refused unread. Needs `trustedProxies` and the
   * listener's own port (not `server`). Default false.
   */
  proxyProtocol?: boolean;
  /** With `proxyProtocol`: the header must be complete within this after the TCP connection opens. Default 3 000 ms (the spec's minimum). */
  proxyHeaderTimeoutMs?: number;

  // --- speed (issue 12): handshake crypto on the event loop while the crypto pool is idle ---
  /**
   * Handshake crypto jobs (an encapsulation or a signature, two per full handshake) per
   * second that may run on the event loop instead of a worker thread while no worker is busy
   * and no handshake waits: an idle worker's wake-up costs latency and CPU (crypto-pool.ts).
   * A burst of one second's worth; past it, whenever the pool is busy, and for a second after
   * a job found it busy or was refused (a flood), the workers serve as before. Only with
   * native ML-KEM and ML-DSA (Node >= 24.7; the portable ones take many ms a job). Default 100 (at most ~0.1 s of the event loop per second); 0: always the workers.
   */
  inlineCryptoPerSecond?: number;

  // --- accept rate (issue 10, fifth session): new TCP connections per source, at the accept ---
  /**
   * New TCP connections per second per source address, checked at the accept of an
   * own-port listener (with `proxyProtocol`: at the PROXY header, for the client it names),
   * with a burst of one second's worth. Past it the connection is answered HTTP 429
   * (`Retry-After: 1`) at once and closed once written: it takes no admission slot and
   * evicts nothing. Connections whose peer is a trusted X-Forwarded-For proxy are not
   * counted (they carry many clients; `connectionRatePerSource` applies to each at its
   * upgrade). Default: ten times `connectionRatePerSource` (200; 0 when that is 0); 0: no limit.
   */
  acceptRatePerSource?: number;

  // --- flood p99 (issue 10): the crypto worker threads' scheduling (crypto-worker.ts) ---
  /**
   * Linux only. 'idle': each crypto worker thread asks for SCHED_IDLE (through `chrt`, at a
   * fixed path) so that the event loop, woken by an established session's record, takes a
   * core from handshake crypto at once instead of after the worker's time slice (about
   * 1 ms); where that is not possible, 'low'. SCHED_IDLE workers run only on what normal
   * threads of the same scheduling group leave idle, so the pool keeps one more worker at
   * nice +10, the reserve (the starvation guard): a job with an idle worker for longer than
   * 100 ms (250 ms with the portable ML-KEM / ML-DSA) is computed again by the reserve, which
   * then serves the handshakes alone while the idle workers starve (crypto-guard.ts).
   * 'low': nice +10 only (a smaller share of the CPU, no prompt preemption, no reserve).
   * Default: 'idle' with native ML-KEM and ML-DSA (Node >= 24.7), 'low' with the portable
   * ones (jobs of ~23 ms). Measured (docs/benchmarks.md, "Floods"): on Node 24 'idle' keeps
   * the established session's p99 under the crypto floods closer to idle than 'low'; on a
   * one-core server with a saturated event loop, without the guard 'idle' let honest
   * handshakes wait up to 9.6 s (Node 20) and 4.6 s (Node 24), with it they keep the pace
   * of 'low'.
   */
  cryptoWorkerPriority?: 'idle' | 'low';
}

export const EDGE_DEFAULTS = {
  maxPendingHandshakes: 64,
  maxPendingPerSource: 8,
  firstFlightTimeoutMs: 2_000,
  maxCryptoQueue: 64,
  handshakeRatePerSource: 50,
  connectionRatePerSource: 20,
  proxyHeaderTimeoutMs: 3_000,
  inlineCryptoPerSecond: 100,
} as const;

/** The burst of the connection rate, in seconds' worth of it. */
const CONNECTION_BURST_SECONDS = 3;
/** The accept rate's default, in multiples of the connection rate (see `acceptRates`); its burst is one second's worth. */
const ACCEPT_RATE_PER_CONNECTION_RATE = 10;
/** How long a refused upgrade is held before its 429, and how many are held at once. */
const REFUSAL_HOLD_MS = 1_000;
const MAX_HELD_REFUSALS = 1_024;

/** The error of a connection that did not deliver its ClientHello in time. */
export class FirstFlightTimeoutError extends HandshakeTimeoutError {
  constructor(ms: number) {
    super(ms);
    this.message = `no complete ClientHello within ${ms} ms`;
  }
}

/** The report of a TCP connection refused at its accept by `acceptRatePerSource` (ERR_SERVER_BUSY). */
export class AcceptRateError extends ServerBusyError {
  constructor() {
    super('server busy: too many new TCP connections from this address (acceptRatePerSource), refused at the accept');
  }
}

interface Pending {
  /** Close the connection with `error` (evicted, or past its deadline). */
  abort: (error: PqmcpError) => void;
  timer: Timer | undefined;
}

export class Edge {
  private readonly table: AdmissionTable<Pending>;
  private readonly trusted: TrustedProxies;
  private readonly firstFlightMs: number;
  private readonly connectionRates: SourceRates;
  /** `acceptRatePerSource`: new TCP connections per source, at the accept (or the PROXY header). */
  private readonly acceptRates: SourceRates;
  /** TCP connections refused by `acceptRates` so far. */
  refusedAccepts = 0;
  private readonly refusals = new Refusals({ delayMs: REFUSAL_HOLD_MS, maxHeld: MAX_HELD_REFUSALS });
  private readonly maxPending: number;
  /** Set with `proxyProtocol`: reads the PROXY header of each connection before HTTP. */
  private readonly front: ProxyFront<Ticket<Pending>> | undefined;
  /** TCP connections of an own-port listener not yet upgraded, each holding a slot. */
  private readonly preUpgrade = new PreUpgrade<Ticket<Pending>>(this);

  private constructor(
    options: EdgeOptions,
    private readonly pool: CryptoPool,
  ) {
    this.maxPending = options.maxPendingHandshakes ?? EDGE_DEFAULTS.maxPendingHandshakes;
    this.table = new AdmissionTable({
      maxPending: this.maxPending,
      maxPerSource: options.maxPendingPerSource ?? EDGE_DEFAULTS.maxPendingPerSource,
    });
    this.trusted = new TrustedProxies(options.trustedProxies ?? []);
    this.firstFlightMs = options.firstFlightTimeoutMs ?? EDGE_DEFAULTS.firstFlightTimeoutMs;
    const rateNow = (): number => this.testRateClock?.() ?? performance.now();
    this.connectionRates = connectionRates(options.connectionRatePerSource, rateNow);
    this.acceptRates = acceptRates(options, rateNow);
    this.front = options.proxyProtocol
      ? new ProxyFront(
          this.preUpgrade,
          this.trusted,
          { headerTimeoutMs: options.proxyHeaderTimeoutMs ?? EDGE_DEFAULTS.proxyHeaderTimeoutMs, upgradeTimeoutMs: this.firstFlightMs },
          (socket, address, report) => this.admitAccept(socket, address, report),
        )
      : undefined;
  }

  /** Check the options and start the crypto pool. `workerBackend`: see CryptoPool.start. */
  static async start(options: EdgeOptions, backend: CryptoBackend, workerBackend: BackendName | undefined, key: CompositeKeyPair): Promise<Edge> {
    const ff = options.firstFlightTimeoutMs;
    if (ff !== undefined && !(typeof ff === 'number' && Number.isFinite(ff) && ff >= 1)) throw new InvalidArgumentError('firstFlightTimeoutMs must be a number >= 1');
    if (ff !== undefined && ff > MAX_TIMER_MS) throw new InvalidArgumentError(timerLimitText('firstFlightTimeoutMs'));
    // Validate the table and the proxies before starting threads.
    new AdmissionTable({ maxPending: options.maxPendingHandshakes ?? 1, maxPerSource: options.maxPendingPerSource ?? 1 });
    new TrustedProxies(options.trustedProxies ?? []);
    connectionRates(options.connectionRatePerSource);
    acceptRates(options);
    checkProxyOptions(options);
    const pool = await CryptoPool.start(backend, workerBackend, key, {
      workers: options.cryptoWorkers ?? Math.max(1, Math.min(4, availableParallelism() - 1)),
      maxQueue: options.maxCryptoQueue ?? EDGE_DEFAULTS.maxCryptoQueue,
      ratePerSource: options.handshakeRatePerSource ?? EDGE_DEFAULTS.handshakeRatePerSource,
      inlineWhenIdle: options.inlineCryptoPerSecond ?? EDGE_DEFAULTS.inlineCryptoPerSecond,
      ...(options.cryptoWorkerPriority !== undefined ? { workerPriority: options.cryptoWorkerPriority } : {}),
    });
    return new Edge(options, pool);
  }

  /**
   * @internal Tests only: when set, the per-source connection and accept rates read this
   * clock, ms, instead of performance.now, so a test decides when a source's tokens come
   * back (as CryptoPool.testRateClock does for the handshake rate). Set it before the first
   * connection.
   */
  testRateClock: (() => number) | undefined;

  /** Connections holding a pending-handshake slot. */
  get pending(): number {
    return this.table.size;
  }

  get cryptoStats(): CryptoPoolStats {
    return this.pool.stats;
  }

  /**
   * The client's address: the peer, or what a trusted proxy reports for it (with
   * `proxyProtocol`, the PROXY header; X-Forwarded-For is then not read).
   */
  clientAddress(req: IncomingMessage): string | undefined {
    if (this.front) return this.front.clientAddress(req.socket);
    return clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], this.trusted);
  }

  /** True when connections must come through `acceptProxied` (the `proxyProtocol` option). */
  get proxied(): boolean {
    return this.front !== undefined;
  }

  /**
   * A new TCP connection on a `proxyProtocol` listener: refused unless its peer is a trusted
   * proxy; else its PROXY header is read (holding a slot of the proxy's address), then it
   * is handed to the HTTP server (holding a slot of the client's address until its upgrade
   * request, see `upgrading`). Failures are given to `report`.
   */
  acceptProxied(socket: Socket, handOver: (socket: Socket) => void, report: Report): void {
    this.front!.accept(socket, handOver, report);
  }

  /**
   * A new TCP connection on an own-port listener without `proxyProtocol` (from the TCP
   * front's accept, before Node's HTTP server sees it): true when it may be handed to the
   * HTTP server, holding a slot until its upgrade request (`upgrading`) or its close, at
   * most `firstFlightTimeoutMs`. The slot is its peer's, or, when the peer is a trusted
   * proxy, the proxy's shared one (its client is named only by the request). False: it was
   * refused (answered and closing) or reset before its accept completed (destroyed); the
   * HTTP server must never see it.
   */
  acceptDirect(socket: Socket, report: Report): boolean {
    const peer = socket.remoteAddress;
    // Reset before the accept completed: nothing to account, nothing to answer.
    if (peer === undefined) {
      socket.destroy();
      return false;
    }
    const shared = this.trusted.has(peer);
    // A trusted proxy's connections carry many clients: its address has no accept rate.
    if (!shared && !this.admitAccept(socket, peer, report)) return false;
    const ms = this.firstFlightMs;
    this.preUpgrade.hold(socket, { address: peer, shared, deadlineMs: ms, timeout: () => stackless(() => new UpgradeTimeoutError(ms, 'of the TCP connection')) }, report);
    return true;
  }

  /**
   * The accept rate of `address`'s source, for a new TCP connection (or one whose PROXY
   * header just named its client): true to go on; false when refused: the connection then
   * holds no slot (released if it held one), is answered 429 at once and closed once
   * written, and the refusal is reported (at the `failureReports` rate, like any failure).
   */
  admitAccept(socket: Duplex, address: string, report: Report): boolean {
    if (this.acceptRates.take(sourceKey(address))) return true;
    this.refusedAccepts++;
    this.preUpgrade.upgraded(socket);
    // No HTTP server ever sees it (direct: `acceptDirect` returns false; with PROXY
    // protocol the front keeps it): nothing parses it, nothing answers it but this.
    socket.on('error', destroySocket);
    answerAndClose(socket, RATE_ANSWER);
    report(stackless(() => new AcceptRateError()), address);
    return false;
  }

  /** The upgrade request of `socket` arrived: it leaves the pre-upgrade accounting (own-port listeners). */
  upgrading(socket: Duplex): void {
    this.preUpgrade.upgraded(socket);
  }

  /** Connections refused because their TCP peer is not a trusted proxy (`proxyProtocol` only). */
  get refusedDirect(): number {
    return this.front?.refusedDirect ?? 0;
  }

  /** Upgrades refused by the connection rate so far. */
  get refusedConnections(): number {
    return this.refusals.refused;
  }

  /**
   * The connection rate of `address`'s source, before the upgrade: true to go on; false when
   * refused (the socket is then held and answered 429: leave it alone).
   */
  admitUpgrade(address: string | undefined, socket: Duplex): boolean {
    if (this.connectionRates.take(sourceKey(address))) return true;
    this.refusals.refuse(socket);
    return false;
  }

  /**
   * Give a WebSocket a slot (evicting another if needed) and arm its first-flight deadline;
   * `abort` ends it (evicted, or past the deadline: `Connection.abort`).
   */
  admit(address: string | undefined, abort: (error: PqmcpError) => void): Ticket<Pending> {
    return this.hold(address, abort, this.firstFlightMs, () => stackless(() => new FirstFlightTimeoutError(this.firstFlightMs)));
  }

  /**
   * Give a connection a slot of `address`'s source (evicting another if needed); past
   * `deadlineMs`, unless it progressed, it is aborted with `timeout()`. `shared`: the
   * address is a trusted proxy's, standing for all of its clients (a connection whose
   * PROXY header has not arrived): such entries are a source of their own ("via <proxy>",
   * apart from the proxy's own connections) under the global cap only, since a per-source
   * cap would let a burst of honest connections through one proxy evict each other.
   */
  hold(address: string | undefined, abort: (error: PqmcpError) => void, deadlineMs: number, timeout: () => PqmcpError, shared = false): Ticket<Pending> {
    const pending: Pending = { abort, timer: undefined };
    const source = shared ? `via ${sourceKey(address)}` : sourceKey(address);
    const { ticket, evicted } = this.table.admit(source, pending, shared ? this.maxPending : undefined);
    for (const victim of evicted) {
      this.clear(victim);
      victim.abort(stackless(() => new ServerBusyError('server busy: this pending handshake was evicted for a newer one, try again later')));
    }
    pending.timer = unref(
      setTimeout(() => {
        pending.timer = undefined;
        if (ticket.live && !ticket.progressed) abort(timeout());
      }, deadlineMs),
    );
    return ticket;
  }

  /** Run a deferred handshake step of the connection holding `ticket`. */
  compute(ticket: Ticket<Pending>, request: CryptoRequest): Promise<CryptoResult> {
    if (request.op === 'encapsulate') {
      this.table.progress(ticket);
      this.clear(ticket.value);
    }
    return this.pool.run(ticket.source, request);
  }

  release(ticket: Ticket<Pending>): void {
    this.clear(ticket.value);
    this.table.release(ticket);
  }

  close(): Promise<void> {
    this.refusals.close();
    this.preUpgrade.close();
    return this.pool.close();
  }

  private clear(pending: Pending): void {
    if (pending.timer) clearTimeout(pending.timer);
    pending.timer = undefined;
  }
}

function checkProxyOptions(options: EdgeOptions): void {
  const { proxyProtocol, proxyHeaderTimeoutMs: ms } = options;
  if (proxyProtocol !== undefined && typeof proxyProtocol !== 'boolean') {
    throw new InvalidArgumentError('proxyProtocol must be true or false (true: every connection comes from a trustedProxies peer and starts with a PROXY v1 or v2 header)');
  }
  if (proxyProtocol && (options.trustedProxies ?? []).length === 0) {
    throw new InvalidArgumentError('proxyProtocol needs trustedProxies: the addresses of the proxies that send the PROXY header (every other peer is refused)');
  }
  if (ms !== undefined) {
    if (!proxyProtocol) throw new InvalidArgumentError('proxyHeaderTimeoutMs applies only with proxyProtocol: true');
    if (!(typeof ms === 'number' && Number.isFinite(ms) && ms >= 1)) throw new InvalidArgumentError('proxyHeaderTimeoutMs must be a number >= 1');
    if (ms > MAX_TIMER_MS) throw new InvalidArgumentError(timerLimitText('proxyHeaderTimeoutMs'));
  }
}

/**
 * The accept rate: `acceptRatePerSource`, by default ten times the connection rate, burst
 * one second's worth. It must not bind on connections that send their request: those are
 * paced by the upgrade (its rate, and its 429 held a second, so a source re-opens at most
 * once a second per connection it holds), and a 429 at once instead would let them re-open
 * as fast as they are refused. The flood benchmark's idle-1 (96 WebSockets from one address,
 * re-opened when closed) opens ~125 a second: at twice the connection rate (40) it spun at
 * ~900 opens a second, at ten times (200) nothing is refused. An operator who raises (or
 * lifts) the connection rate for a large NAT raises (or lifts) this one with it.
 */
function acceptRates(options: EdgeOptions, now?: () => number): SourceRates {
  const explicit = options.acceptRatePerSource;
  if (explicit !== undefined && !(Number.isInteger(explicit) && explicit >= 0)) throw new InvalidArgumentError('acceptRatePerSource must be an integer >= 0');
  const r = explicit ?? ACCEPT_RATE_PER_CONNECTION_RATE * (options.connectionRatePerSource ?? EDGE_DEFAULTS.connectionRatePerSource);
  return new SourceRates({ rate: r, burst: Math.max(1, r), now }, 'acceptRatePerSource');
}

function connectionRates(rate: number | undefined, now?: () => number): SourceRates {
  const r = rate ?? EDGE_DEFAULTS.connectionRatePerSource;
  if (!Number.isInteger(r) || r < 0) throw new InvalidArgumentError('connectionRatePerSource must be an integer >= 0');
  return new SourceRates({ rate: r, burst: Math.max(1, r * CONNECTION_BURST_SECONDS), now }, 'connectionRatePerSource');
}
