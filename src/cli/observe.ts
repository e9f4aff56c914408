/**
 * The gateway's observability: audit files (--audit DIR), Prometheus metrics with health
 * and readiness endpoints (--metrics HOST:PORT). `pqmcp serve` sets them up here.
 *
 *   GET /metrics   Prometheus text (OpenTelemetry SDK + @opentelemetry/exporter-prometheus)
 *   GET /healthz   200 "ok" while the process runs
 *   GET /readyz    200 "ready" while new handshakes can complete; 503 "draining" after SIGTERM,
 *                  503 "credential expired" while the gateway's own credential has ended
 *
 * Sharp edges:
 * - The OpenTelemetry SDK and exporter are optional peer dependencies, loaded only with
 *   --metrics; without them --metrics fails at start with a clear error (exit 1).
 * - The metrics endpoint has no authentication: bind it to a private interface
 *   (default host 127.0.0.1). It shows method names, outcomes and counts; agent ids only
 *   with --metrics-agent-ids.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AuditLog } from '../audit/writer.js';
import type { AuditEvent, AuditSink } from '../audit/events.js';
import { auditMetrics } from '../audit/metrics.js';
import { AuditLogLockedError } from '../errors.js';
import { CliError } from './output.js';

export interface ObserveOptions {
  auditDir?: string | undefined;
  auditMaxBytes?: number | undefined;
  auditMaxAgeMs?: number | undefined;
  metrics?: { host: string; port: number } | undefined;
  metricsAgentIds: boolean;
  /** Why the gateway cannot complete new handshakes now (/readyz answers 503 with it), or undefined: ready. */
  notReady: () => string | undefined;
  /** When the credential new handshakes present ends (Unix seconds): the pqmcp_credential_not_after_seconds gauge. */
  credentialNotAfter?: () => number;
  log: (event: string, fields: Record<string, unknown>, human: string) => void;
}

export interface Observability {
  /** Undefined when neither --audit nor --metrics is set. */
  onAuditEvent: AuditSink | undefined;
  /** Whether a sink reads the request and response hashes (the audit file does; metrics do not). */
  auditHashes: boolean;
  metricsUrl: string | undefined;
  close(): Promise<void>;
}

export async function openObservability(o: ObserveOptions): Promise<Observability> {
  const sinks: AuditSink[] = [];
  let log: AuditLog | undefined;
  if (o.auditDir !== undefined) {
    try {
      log = await AuditLog.open(o.auditDir, {
        ...(o.auditMaxBytes !== undefined ? { maxBytes: o.auditMaxBytes } : {}),
        ...(o.auditMaxAgeMs !== undefined ? { maxAgeMs: o.auditMaxAgeMs } : {}),
        // A lost directory lock is not a failed write: nothing was lost, but the chain may fork.
        onerror: (err) =>
          err instanceof AuditLogLockedError
            ? o.log('audit-lock-lost', { error: err.message }, `audit: ${err.message}`)
            : o.log('audit-write-failed', { error: err.message }, `audit: write failed, events lost: ${err.message}`),
        onrotate: (file, head) => o.log('audit-file-closed', { file, seq: head.seq, hash: head.hash }, `audit: finished ${file}; chain head seq ${head.seq} ${head.hash}`),
      });
    } catch (err) {
      // Another gateway writes there (two would fork the chain): its own code, same exit.
      if (err instanceof AuditLogLockedError) throw new CliError(err.code, `cannot write to the audit directory: ${err.message}`, 1, { cause: err });
      throw new CliError('ERR_FILE_WRITE', `cannot open the audit directory ${o.auditDir}: ${(err as Error).message}`, 1, { cause: err });
    }
    const opened = log;
    sinks.push((e) => opened.write(e));
    const head = log.position;
    o.log('audit', { dir: o.auditDir, seq: head.seq, hash: head.hash }, head.seq < 0 ? `audit: writing to ${o.auditDir}, a new chain` : `audit: writing to ${o.auditDir}, continuing the chain after seq ${head.seq}`);
  }
  let http: Server | undefined;
  let shutdownMetrics: (() => Promise<void>) | undefined;
  let metricsUrl: string | undefined;
  if (o.metrics !== undefined) {
    // The audit directory's lock is held from here on: a failure below releases it.
    const failed = async (err: unknown): Promise<never> => {
      await log?.close();
      throw err;
    };
    const { exporter, meter, shutdown } = await loadPrometheus().catch(failed);
    shutdownMetrics = shutdown;
    sinks.push(auditMetrics(meter, { agentIds: o.metricsAgentIds }));
    const notAfter = o.credentialNotAfter;
    if (notAfter) {
      meter
        .createObservableGauge('pqmcp.credential.not_after.seconds', { description: "When this gateway's own credential ends (Unix time): alert well before it", unit: 's' })
        .addCallback((result) => result.observe(notAfter()));
    }
    http = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405).end();
      } else if (path === '/metrics') {
        exporter.getMetricsRequestHandler(req, res);
      } else if (path === '/healthz') {
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
      } else if (path === '/readyz') {
        const why = o.notReady();
        res.writeHead(why === undefined ? 200 : 503, { 'Content-Type': 'text/plain' }).end(`${why ?? 'ready'}\n`);
      } else {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: /metrics, /healthz, /readyz\n');
      }
    });
    const { host, port } = o.metrics;
    await new Promise<void>((resolve, reject) => {
      http!.once('error', (err) => {
        const code = (err as NodeJS.ErrnoException).code;
        const reason = code === 'EADDRINUSE' ? 'address already in use (choose another --metrics port)' : code === 'EADDRNOTAVAIL' ? 'address not available on this machine' : err.message;
        reject(new CliError('ERR_LISTEN', `cannot listen on ${host}:${port} for --metrics: ${reason}`, 1, { cause: err }));
      });
      http!.listen(port, host, () => resolve());
    }).catch(failed);
    const a = http.address() as AddressInfo;
    metricsUrl = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
    o.log('metrics', { url: metricsUrl }, `metrics on ${metricsUrl}/metrics (health ${metricsUrl}/healthz, readiness ${metricsUrl}/readyz)`);
  }
  const onAuditEvent: AuditSink | undefined =
    sinks.length === 0
      ? undefined
      : sinks.length === 1
        ? sinks[0]
        : (e: AuditEvent) => {
            for (const sink of sinks) sink(e);
          };
  return {
    onAuditEvent,
    auditHashes: log !== undefined,
    metricsUrl,
    async close() {
      await log?.close();
      if (http) {
        http.closeAllConnections();
        await new Promise<void>((r) => http!.close(() => r()));
      }
      await shutdownMetrics?.();
    },
  };
}

interface Prometheus {
  exporter: { getMetricsRequestHandler(req: unknown, res: unknown): void };
  meter: import('@opentelemetry/api').Meter;
  shutdown: () => Promise<void>;
}

async function loadPrometheus(): Promise<Prometheus> {
  let sdk: typeof import('@opentelemetry/sdk-metrics');
  let prom: typeof import('@opentelemetry/exporter-prometheus');
  try {
    sdk = await import('@opentelemetry/sdk-metrics');
    prom = await import('@opentelemetry/exporter-prometheus');
  } catch (err) {
    throw new CliError('ERR_USAGE', '--metrics needs the optional packages @opentelemetry/sdk-metrics and @opentelemetry/exporter-prometheus: npm install @opentelemetry/api @opentelemetry/sdk-metrics @opentelemetry/exporter-prometheus', 1, { cause: err });
  }
  const exporter = new prom.PrometheusExporter({ preventServerStart: true });
  const provider = new sdk.MeterProvider({ readers: [exporter] });
  return { exporter, meter: provider.getMeter('pqmcp'), shutdown: () => provider.shutdown() };
}
