/**
 * Audit trail: events (events.ts), the request auditor hook (request-hook.ts), the hash
 * chain (chain.ts), audit files with rotation (writer.ts), reading them back line by line
 * (trail.ts), metering (report.ts).
 */
export { MAX_TEXT } from './events.js';
export type { AuditEvent, AuditPeer, AuditSink, HandshakeFailureEvent, HandshakeFailureSummaryEvent, PolicyNote, RequestEvent, RequestOutcome, SessionCloseEvent, SessionEnd, SessionOpenEvent } from './events.js';
export { requestAuditor } from './request-hook.js';
export type { RequestAuditorOptions } from './request-hook.js';
export { ChainVerifier, GENESIS, MAX_PROBLEMS, MAX_SEQ_RUNS, chainLine, parseLine, verifyChain } from './chain.js';
export type { ChainHead, ChainProblem, ParsedLine, ProblemKind, VerifyOptions, VerifyResult } from './chain.js';
export { AuditLog, auditFiles } from './writer.js';
export type { AuditLogOptions } from './writer.js';
export { DEFAULT_MAX_LINE_BYTES, trailLines, verifyTrail } from './trail.js';
export type { TrailLine, TrailReadOptions } from './trail.js';
export { ReportTally, failureTotals, meter } from './report.js';
export type { FailureTotals, ReportKey, ReportOptions, ReportRow } from './report.js';
export { MAX_AGENT_SERIES, auditMetrics } from './metrics.js';
export type { AuditMetricsOptions, MetricsMeter } from './metrics.js';
export { FAILURE_REPORT_DEFAULTS, FailureReportLimiter } from './failure-limiter.js';
export type { FailureReportOptions } from './failure-limiter.js';
