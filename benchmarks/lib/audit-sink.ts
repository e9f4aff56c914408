/**
 * What `pqmcp serve --audit DIR --metrics HOST:PORT` does with each audit event, for the
 * benchmarks: an AuditLog in a fresh temporary directory and/or OpenTelemetry metrics (SDK
 * MeterProvider with the Prometheus exporter, its HTTP server not started, as the gateway
 * sets it up). `close()` flushes, shuts down and removes the directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog } from '../../src/audit/writer.js';
import { auditMetrics } from '../../src/audit/metrics.js';
import type { AuditSink } from '../../src/audit/events.js';

export interface BenchAuditSink {
  sink: AuditSink;
  close(): Promise<void>;
}

export async function benchAuditSink(options: { audit: boolean; metrics: boolean }): Promise<BenchAuditSink> {
  const sinks: AuditSink[] = [];
  const closers: Array<() => Promise<void>> = [];
  if (options.audit) {
    const dir = mkdtempSync(join(tmpdir(), 'pqmcp-bench-audit-'));
    const log = await AuditLog.open(dir);
    sinks.push((e) => log.write(e));
    closers.push(async () => {
      await log.close();
      rmSync(dir, { recursive: true, force: true });
    });
  }
  if (options.metrics) {
    const { MeterProvider } = await import('@opentelemetry/sdk-metrics');
    const { PrometheusExporter } = await import('@opentelemetry/exporter-prometheus');
    const provider = new MeterProvider({ readers: [new PrometheusExporter({ preventServerStart: true })] });
    sinks.push(auditMetrics(provider.getMeter('pqmcp')));
    closers.push(() => provider.shutdown());
  }
  const [a, b] = sinks;
  const sink: AuditSink = b ? (e) => (a!(e), b(e)) : a ?? (() => {});
  return { sink, close: async () => void (await Promise.all(closers.map((c) => c()))) };
}
