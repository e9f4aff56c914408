/**
 * OpenTelemetry metrics from audit events: give it a Meter (from your MeterProvider, or
 * `metrics.getMeter('pqmcp')` of `@opentelemetry/api`) and feed it the events.
 *
 *   const record = auditMetrics(meterProvider.getMeter('pqmcp'));
 *   await serveMcp({ ..., onAuditEvent: (e) => { log.write(e); record(e); } }, factory);
 *
 * Instruments (Prometheus names as the OpenTelemetry exporter writes them):
 *   pqmcp.handshakes            counter    outcome=ok|failed, reason=<error code>|ok
 *   pqmcp.handshake.duration.seconds  histogram  outcome
 *   pqmcp.sessions.live         updown     sessions open now (role)
 *   pqmcp.requests              counter    method, outcome=ok|error|denied|cancelled|unanswered [, agent]
 *   pqmcp.request.duration.seconds    histogram  method
 *   pqmcp.request.bytes         counter    bytes of requests and responses, kind=request|response
 *   pqmcp.session.bytes         counter    WebSocket bytes of ended sessions, direction=in|out
 *   pqmcp.key_updates           counter    KeyUpdates of ended sessions
 *   pqmcp.busy_refusals         counter    connections refused as busy (ERR_SERVER_BUSY)
 *   pqmcp.policy.denials        counter    requests a policy denied [, agent]
 *   pqmcp.handshakes.resumed    counter    successful handshakes that resumed from a ticket (role)
 *   pqmcp.tickets.withheld      counter    sessions a server issuing tickets sent none, reason=<why>
 *   pqmcp.tickets.refused       counter    resumption tickets a server refused, reason=<error code>
 *
 * Sharp edges:
 * - Only a type import of `@opentelemetry/api`: pqmcp does not depend on it at run time.
 * - Agent ids are attributes only with `agentIds: true` (each agent is a time series:
 *   unbounded cardinality if strangers' credentials are accepted). Methods are the peer's
 *   strings: any that is not one of MCP's own is counted as `other`, so a peer cannot
 *   create time series at will.
 * - Session bytes and key updates are counted when a session ends.
 * - A refused ticket is counted from the event of the connection that offered it (its
 *   session.open, its handshake.failure, or a summary's `ticketsRefused`): one per connection,
 *   labelled with the error code only (a short fixed set), so a forged-ticket flood adds
 *   counts, not series, and its refusals past the `failureReports` rate are still counted.
 * - A `handshake.failure.summary` (failures past the listener's `failureReports` rate)
 *   counts its failures in pqmcp.handshakes and pqmcp.busy_refusals like single ones; they
 *   have no durations.
 * - Cost per request (the hot path): requests and request bytes are summed here and handed
 *   to the SDK as cumulative observable counters when it collects (a scrape), so a request
 *   costs a few additions and one histogram record (duration), with attribute objects made
 *   once per method. The SDK sees the same counter series as from synchronous counters.
 *   With `agentIds`, at most MAX_AGENT_SERIES (method, outcome, agent) series are kept;
 *   requests of agents beyond that are counted with agent `other`, and so are their
 *   denials in pqmcp.policy.denials (one agent label per series of pqmcp.requests).
 */
/** Metric attributes (OpenTelemetry's Attributes, as far as pqmcp sets them). */
type Attributes = Record<string, string | number | boolean>;
interface InstrumentOptions {
  description?: string;
  unit?: string;
  advice?: { explicitBucketBoundaries?: number[] };
}
/**
 * The part of an OpenTelemetry `Meter` pqmcp uses, declared structurally so the published
 * types do not need `@opentelemetry/api` (an optional peer); any OTel Meter is assignable.
 */
export interface MetricsMeter {
  createCounter(name: string, options?: InstrumentOptions): { add(value: number, attributes?: Attributes): void };
  createUpDownCounter(name: string, options?: InstrumentOptions): { add(value: number, attributes?: Attributes): void };
  createHistogram(name: string, options?: InstrumentOptions): { record(value: number, attributes?: Attributes): void };
  createObservableCounter(name: string, options?: InstrumentOptions): { addCallback(callback: (result: { observe(value: number, attributes?: Attributes): void }) => void): void };
}
import type { AuditEvent, AuditSink } from './events.js';

export interface AuditMetricsOptions {
  /** Label requests and denials with the peer's agent id. Default false (cardinality). */
  agentIds?: boolean;
}

/** MCP's own methods (2025-06 to 2026-07 revisions); any other is labelled `other`. */
const METHODS = new Set([
  'initialize', 'ping', 'server/discover', 'tools/list', 'tools/call', 'resources/list', 'resources/read', 'resources/templates/list',
  'resources/subscribe', 'resources/unsubscribe', 'subscriptions/listen', 'prompts/list', 'prompts/get', 'completion/complete',
  'logging/setLevel', 'sampling/createMessage', 'elicitation/create', 'roots/list', 'tasks/get', 'tasks/result', 'tasks/list', 'tasks/cancel',
]);
/**
 * With agentIds: (method, outcome, agent) series kept at most; beyond, agent `other` (below the
 * SDK's own default limit of 2000 per instrument). No agent can be labelled `other` by name:
 * an agent id has a scheme (`scheme:...`, identity/rules.ts), so the label never collides.
 */
export const MAX_AGENT_SERIES = 1000;
const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

const REQUEST: Attributes = Object.freeze({ kind: 'request' });
const RESPONSE: Attributes = Object.freeze({ kind: 'response' });

/** An AuditSink that records the events as OpenTelemetry metrics. */
export function auditMetrics(meter: MetricsMeter, options: AuditMetricsOptions = {}): AuditSink {
  const withAgent = options.agentIds === true;
  const handshakes = meter.createCounter('pqmcp.handshakes', { description: 'Handshakes by outcome and reason' });
  const handshakeDuration = meter.createHistogram('pqmcp.handshake.duration.seconds', { description: 'Handshake duration', unit: 's', advice: { explicitBucketBoundaries: SECONDS } });
  const live = meter.createUpDownCounter('pqmcp.sessions.live', { description: 'Sessions open now' });
  const requests = meter.createObservableCounter('pqmcp.requests', { description: 'JSON-RPC requests by method and outcome' });
  const requestDuration = meter.createHistogram('pqmcp.request.duration.seconds', { description: 'Request duration', unit: 's', advice: { explicitBucketBoundaries: SECONDS } });
  const requestBytes = meter.createObservableCounter('pqmcp.request.bytes', { description: 'JSON bytes of requests and responses', unit: 'By' });
  const sessionBytes = meter.createCounter('pqmcp.session.bytes', { description: 'WebSocket payload bytes of ended sessions', unit: 'By' });
  const keyUpdates = meter.createCounter('pqmcp.key_updates', { description: 'KeyUpdates of ended sessions' });
  const busy = meter.createCounter('pqmcp.busy_refusals', { description: 'Connections refused: too many pending handshakes' });
  const denials = meter.createCounter('pqmcp.policy.denials', { description: 'Requests denied by a policy' });
  const resumptions = meter.createCounter('pqmcp.handshakes.resumed', { description: 'Successful handshakes that resumed a session from a ticket (of pqmcp.handshakes outcome ok)' });
  const withheld = meter.createCounter('pqmcp.tickets.withheld', { description: 'Sessions a server issuing tickets sent none, by reason' });
  const refused = meter.createCounter('pqmcp.tickets.refused', { description: 'Resumption tickets a server refused (a full handshake followed), by error code' });

  // Request counts per series (method, outcome[, agent]) and byte sums, observed at collection.
  // Looked up per method, then by outcome (or outcome and agent): no key string per request.
  interface Series {
    attributes: Attributes;
    count: number;
  }
  const counts: Series[] = [];
  const byMethod = new Map<string, { attributes: Attributes; series: Map<string, Series> }>();
  const bytes = { request: 0, response: 0 };
  requests.addCallback((result) => {
    for (const { attributes, count } of counts) result.observe(count, attributes);
  });
  requestBytes.addCallback((result) => {
    result.observe(bytes.request, REQUEST);
    if (bytes.response > 0) result.observe(bytes.response, RESPONSE);
  });
  const methodEntry = (method: string) => {
    let entry = byMethod.get(method);
    if (entry === undefined) byMethod.set(method, (entry = { attributes: Object.freeze({ method }), series: new Map() }));
    return entry;
  };
  /** Count a request; returns the agent label used (`other` past MAX_AGENT_SERIES), or undefined without agent ids. */
  const countRequest = (method: string, series: Map<string, Series>, outcome: string, agent: string | undefined): string | undefined => {
    let key = agent === undefined ? outcome : `${outcome} ${agent}`;
    let s = series.get(key);
    if (s === undefined && agent !== undefined && counts.length >= MAX_AGENT_SERIES) {
      key = `${outcome} \u0000other`;
      agent = 'other';
      s = series.get(key);
    }
    if (s === undefined) {
      const attributes: Attributes = agent === undefined ? { method, outcome } : { method, outcome, agent };
      s = { attributes: Object.freeze(attributes), count: 0 };
      series.set(key, s);
      counts.push(s);
    }
    s.count++;
    return agent;
  };

  return (event: AuditEvent) => {
    switch (event.type) {
      case 'handshake.failure':
        handshakes.add(1, { outcome: 'failed', reason: event.code });
        if (event.durationMs !== undefined) handshakeDuration.record(event.durationMs / 1000, { outcome: 'failed' });
        if (event.code === 'ERR_SERVER_BUSY') busy.add(1);
        if (event.ticketRefused !== undefined) refused.add(1, { reason: event.ticketRefused });
        break;
      case 'handshake.failure.summary':
        // The failures past the listener's failureReports rate: counted as if one by one (no durations).
        for (const [code, n] of Object.entries(event.codes)) {
          handshakes.add(n, { outcome: 'failed', reason: code });
          if (code === 'ERR_SERVER_BUSY') busy.add(n);
        }
        for (const [code, n] of Object.entries(event.ticketsRefused ?? {})) refused.add(n, { reason: code });
        break;
      case 'session.open':
        handshakes.add(1, { outcome: 'ok', reason: 'ok' });
        handshakeDuration.record(event.handshakeMs / 1000, { outcome: 'ok' });
        live.add(1, { role: event.role });
        if (event.resumed) resumptions.add(1, { role: event.role });
        if (event.ticketsWithheld !== undefined) withheld.add(1, { reason: event.ticketsWithheld });
        if (event.ticketRefused !== undefined) refused.add(1, { reason: event.ticketRefused });
        break;
      case 'session.close':
        live.add(-1, { role: event.role });
        sessionBytes.add(event.bytesIn, { direction: 'in' });
        sessionBytes.add(event.bytesOut, { direction: 'out' });
        if (event.keyUpdates > 0) keyUpdates.add(event.keyUpdates);
        break;
      case 'request': {
        const method = METHODS.has(event.method) ? event.method : 'other';
        const entry = methodEntry(method);
        const agent = countRequest(method, entry.series, event.outcome, withAgent ? event.agentId : undefined);
        requestDuration.record(event.durationMs / 1000, entry.attributes);
        bytes.request += event.requestBytes;
        bytes.response += event.responseBytes;
        // The agent label of the request's own series: `other` past the cap (review 15, R15-9).
        if (event.outcome === 'denied') denials.add(1, agent !== undefined ? { agent } : {});
        break;
      }
    }
  };
}
