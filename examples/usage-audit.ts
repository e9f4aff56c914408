/**
 * docs/usage.md: audit events to a hash-chained trail (pqmcp audit verify checks it) and to
 * OpenTelemetry metrics scraped by Prometheus. The SDK and exporter are the application's
 * choice; pqmcp needs only @opentelemetry/api.
 */
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { AuditLog, auditMetrics, serveMcp } from 'pqmcp';
import type { AgentIdentity, PqmcpServer, SessionFactory, TrustStore } from 'pqmcp';

export async function auditedServer(identity: AgentIdentity, trust: TrustStore, factory: SessionFactory): Promise<PqmcpServer> {
  const log = await AuditLog.open('./audit', { maxBytes: 64 << 20 });
  const exporter = new PrometheusExporter({ port: 9464 });
  const record = auditMetrics(new MeterProvider({ readers: [exporter] }).getMeter('pqmcp'));
  return serveMcp(
    {
      identity,
      trust,
      port: 7443,
      onAuditEvent: (e) => {
        log.write(e);
        record(e);
      },
    },
    factory,
  );
}
