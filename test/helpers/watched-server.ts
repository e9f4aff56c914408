/**
 * A feature server (native backend) whose reports the edge tests read: every 'clientError'
 * with its source address, every audit event, every session, every failure summary.
 */
import type { PqmcpError } from '../../src/errors.js';
import type { PqmcpServer, PqmcpServerOptions, PqmcpServerTransport } from '../../src/transport/index.js';
import type { AuditEvent } from '../../src/audit/index.js';
import type { HandshakeFailureSummaryEvent } from '../../src/audit/events.js';
import { type Cleanup, startFeatureServer } from './mcp.js';

export interface WatchedServer {
  server: PqmcpServer;
  errors: { error: PqmcpError; remoteAddress: string | undefined }[];
  audit: AuditEvent[];
  sessions: PqmcpServerTransport[];
  summaries: HandshakeFailureSummaryEvent[];
}

export async function startWatched(cleanup: Cleanup, options: Partial<PqmcpServerOptions> = {}): Promise<WatchedServer> {
  const audit: AuditEvent[] = [];
  const { server } = await startFeatureServer(cleanup, { backend: 'native', onAuditEvent: (e) => void audit.push(e), ...options });
  const watched: WatchedServer = { server, errors: [], audit, sessions: [], summaries: [] };
  server.on('clientError', (error, info) => void watched.errors.push({ error, remoteAddress: info.remoteAddress }));
  server.on('session', (t) => void watched.sessions.push(t));
  server.on('failuresSuppressed', (s) => void watched.summaries.push(s));
  return watched;
}
