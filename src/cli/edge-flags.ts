/**
 * `pqmcp serve` flags for the listener's edge (docs/cli.md, "Edge limits"): per-source
 * admission, the first-flight and handshake deadlines, trusted proxies (X-Forwarded-For or
 * PROXY protocol), the crypto pool (workers, queue, inline lane, the workers' priority), the
 * connection rates (at the upgrade, and at the accept).
 *
 * Sharp edges:
 * - Everything is checked here (UsageError, exit 2), so a typo never reaches the listener.
 */
import type { PqmcpServerOptions } from '../transport/server.js';
import { flag, integerFlag, list, str, type Parsed } from './args.js';
import { UsageError, asUsage } from './output.js';
import { TrustedProxies } from '../transport/admission.js';

export const EDGE_OPTIONS = {
  'max-pending': { type: 'string' },
  'max-pending-per-source': { type: 'string' },
  'first-flight-timeout': { type: 'string' },
  'handshake-timeout': { type: 'string' },
  'trusted-proxy': { type: 'string', multiple: true },
  'crypto-workers': { type: 'string' },
  'handshake-rate-per-source': { type: 'string' },
  'connection-rate-per-source': { type: 'string' },
  // PROXY protocol from trusted proxies (proxy-front.ts)
  'proxy-protocol': { type: 'boolean' },
  // the crypto pool's queue and idle inline lane (crypto-pool.ts)
  'max-crypto-queue': { type: 'string' },
  'inline-crypto-per-second': { type: 'string' },
  // the accept rate: new TCP connections per source, at the accept (edge.ts admitAccept)
  'accept-rate-per-source': { type: 'string' },
  // the crypto worker threads' scheduling (crypto-worker.ts)
  'crypto-worker-priority': { type: 'string' },
} as const;

export const EDGE_USAGE = `

  Edge limits (docs/threat-model.md, "The edge"):
  --max-pending <n>        unfinished handshakes in all (default 64; a newcomer evicts one)
  --max-pending-per-source <n>  unfinished handshakes per client address (default 8)
  --first-flight-timeout <ms>   the ClientHello must be complete within this (default 2000); also the
                           time a TCP connection has to send its upgrade request
  --handshake-timeout <ms> the whole handshake must finish within this (default 10000)
  --trusted-proxy <addr|cidr>   a reverse proxy whose X-Forwarded-For names the client, repeatable;
                           with --proxy-protocol, the load balancers allowed to connect at all
  --crypto-workers <n>     worker threads for handshake signatures and encapsulations
                           (default cores-1, 1..4; 0 = none)
  --handshake-rate-per-source <n>  new handshakes per second per address (default 50; 0 = no limit)
  --connection-rate-per-source <n> new connections per second per address, burst 3 s worth;
                           past it HTTP 429 before any WebSocket (default 20; 0 = no limit)
  --proxy-protocol         behind a TCP load balancer (HAProxy send-proxy[-v2], AWS NLB, nginx stream
                           proxy_protocol): every connection must come from a --trusted-proxy and
                           start with a PROXY v1/v2 header naming the client; others are refused
  --max-crypto-queue <n>   new handshakes waiting for a crypto worker; when full, the address with
                           the most waiting gets server_busy (default 64)
  --inline-crypto-per-second <n>  handshake crypto jobs per second run on the event loop while the
                           workers are idle (native ML-KEM/ML-DSA only; default 100; 0 = always workers)
  --accept-rate-per-source <n>  new TCP connections per second per address at the accept, burst
                           1 s worth; past it HTTP 429 at once, no slot taken (default 10 x
                           --connection-rate-per-source: 200; 0 = no limit; a --trusted-proxy is
                           exempt; with --proxy-protocol, per client the header names)
  --crypto-worker-priority idle|low  Linux: the crypto workers yield a core to the event loop at
                           once (idle: SCHED_IDLE via chrt, with a reserve worker at nice +10 for
                           jobs they are late with; the default with native ML-KEM/ML-DSA) or run
                           at nice +10 (low; the default with the portable ones)`;

/** The listener options the edge flags set (only those given). */
export function edgeOptions(p: Parsed): Partial<PqmcpServerOptions> {
  const out: Partial<PqmcpServerOptions> = {};
  const set = <K extends keyof PqmcpServerOptions>(key: K, value: PqmcpServerOptions[K] | undefined): void => {
    if (value !== undefined) out[key] = value;
  };
  set('maxPendingHandshakes', integerFlag(p, 'max-pending', { min: 1 }));
  set('maxPendingPerSource', integerFlag(p, 'max-pending-per-source', { min: 1 }));
  // The timeouts are plain milliseconds ("2000"), unlike the durations of other flags ("10s"): say so.
  set('firstFlightTimeoutMs', integerFlag(p, 'first-flight-timeout', { min: 1, unit: 'milliseconds, e.g. 2000' }));
  set('handshakeTimeoutMs', integerFlag(p, 'handshake-timeout', { min: 1, unit: 'milliseconds, e.g. 10000' }));
  set('cryptoWorkers', integerFlag(p, 'crypto-workers', { min: 0, unit: '0 = none' }));
  set('handshakeRatePerSource', integerFlag(p, 'handshake-rate-per-source', { min: 0, unit: 'a second; 0 = no limit' }));
  set('connectionRatePerSource', integerFlag(p, 'connection-rate-per-source', { min: 0, unit: 'a second; 0 = no limit' }));
  set('maxCryptoQueue', integerFlag(p, 'max-crypto-queue', { min: 1 }));
  set('inlineCryptoPerSecond', integerFlag(p, 'inline-crypto-per-second', { min: 0, unit: '0 = always the workers' }));
  set('acceptRatePerSource', integerFlag(p, 'accept-rate-per-source', { min: 0, unit: 'a second; 0 = no limit' }));
  const priority = str(p, 'crypto-worker-priority');
  if (priority !== undefined && priority !== 'idle' && priority !== 'low') throw new UsageError('--crypto-worker-priority must be idle or low');
  set('cryptoWorkerPriority', priority);
  const proxies = list(p, 'trusted-proxy');
  if (proxies.length > 0) {
    // The library's message names its option (trustedProxies); the user typed --trusted-proxy.
    asUsage(() => new TrustedProxies(proxies), (message) => message.replace(/^trustedProxies\b/, '--trusted-proxy'));
    out.trustedProxies = proxies;
  }
  if (flag(p, 'proxy-protocol')) {
    if (proxies.length === 0) throw new UsageError("--proxy-protocol needs --trusted-proxy <addr|cidr>: the load balancer's own addresses (every other peer is refused)");
    out.proxyProtocol = true;
  }
  return out;
}
