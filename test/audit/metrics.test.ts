/**
 * auditMetrics with the real OpenTelemetry SDK: which instruments each event moves, method
 * labels limited to MCP's own methods (a peer cannot create series), agent ids only when
 * allowed.
 */
import { describe, expect, it } from 'vitest';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import type { AuditEvent, RequestEvent } from '../../src/audit/index.js';
import { auditMetrics } from '../../src/audit/index.js';
import { MAX_AGENT_SERIES } from '../../src/index.js'; // the package entry: docs/api.md names it

class Reader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

const peer = { agentId: 'agent://t/alice', issuer: 'issuer://t', fingerprint: 'f'.repeat(64), serial: '01' };
const request = (over: Partial<RequestEvent>): RequestEvent => ({
  type: 'request', time: 0, role: 'server', sessionId: 's', ...peer, direction: 'fromPeer', method: 'tools/call', requestBytes: 10, responseBytes: 20, durationMs: 4, outcome: 'ok', ...over,
});

async function run(events: AuditEvent[], agentIds = false): Promise<Map<string, number>> {
  const reader = new Reader();
  const provider = new MeterProvider({ readers: [reader] });
  const record = auditMetrics(provider.getMeter('pqmcp'), { agentIds });
  for (const e of events) record(e);
  const out = await collect(reader);
  await provider.shutdown();
  return out;
}

async function collect(reader: Reader): Promise<Map<string, number>> {
  const { resourceMetrics } = await reader.collect();
  const out = new Map<string, number>();
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const m of scope.metrics) {
      for (const p of m.dataPoints) {
        const labels = Object.entries(p.attributes).map(([k, v]) => `${k}=${String(v)}`).sort().join(',');
        const value = typeof p.value === 'number' ? p.value : (p.value as { count: number }).count;
        out.set(`${m.descriptor.name}{${labels}}`, value);
      }
    }
  }
  return out;
}

describe('auditMetrics', () => {
  it('counts the failures of a handshake.failure.summary (failureReports) like single ones', async () => {
    const m = await run([
      { type: 'handshake.failure', time: 0, role: 'server', remoteAddress: '127.0.0.1', code: 'ERR_SERVER_BUSY', message: 'busy' },
      { type: 'handshake.failure.summary', time: 0, role: 'server', remoteAddress: '127.0.0.1', count: 180, codes: { ERR_SERVER_BUSY: 176, ERR_HANDSHAKE_TIMEOUT: 4 }, windowStart: 0, windowMs: 10_000 },
    ]);
    expect(m.get('pqmcp.handshakes{outcome=failed,reason=ERR_SERVER_BUSY}')).toBe(177);
    expect(m.get('pqmcp.handshakes{outcome=failed,reason=ERR_HANDSHAKE_TIMEOUT}')).toBe(4);
    expect(m.get('pqmcp.busy_refusals{}')).toBe(177);
  });

  it('counts handshakes, sessions, requests, bytes, key updates, busy refusals and denials', async () => {
    const m = await run([
      { type: 'handshake.failure', time: 0, role: 'server', remoteAddress: '127.0.0.1', code: 'ERR_SERVER_BUSY', message: 'busy' },
      { type: 'handshake.failure', time: 0, role: 'server', remoteAddress: '127.0.0.1', code: 'ERR_UNTRUSTED_ISSUER', message: 'x' },
      { type: 'session.open', time: 0, role: 'server', sessionId: 's', ...peer, suite: 'S', backend: 'native', endpoint: '/', remoteAddress: '127.0.0.1', handshakeMs: 3, resumed: false },
      request({}),
      request({ outcome: 'denied', policy: { decision: 'deny', policies: ['p'] } }),
      request({ method: 'evil/a1' }),
      request({ method: 'evil/a2' }),
      { type: 'session.close', time: 0, role: 'server', sessionId: 's', ...peer, durationMs: 9, bytesIn: 100, bytesOut: 200, keyUpdates: 2, end: 'peer' },
    ]);
    expect(m.get('pqmcp.handshakes{outcome=failed,reason=ERR_SERVER_BUSY}')).toBe(1);
    expect(m.get('pqmcp.handshakes{outcome=ok,reason=ok}')).toBe(1);
    expect(m.get('pqmcp.busy_refusals{}')).toBe(1);
    expect(m.get('pqmcp.handshake.duration.seconds{outcome=ok}')).toBe(1);
    expect(m.get('pqmcp.sessions.live{role=server}')).toBe(0);
    expect(m.get('pqmcp.requests{method=tools/call,outcome=ok}')).toBe(1);
    expect(m.get('pqmcp.requests{method=tools/call,outcome=denied}')).toBe(1);
    expect(m.get('pqmcp.requests{method=other,outcome=ok}')).toBe(2);
    expect([...m.keys()].some((k) => k.includes('evil'))).toBe(false);
    expect(m.get('pqmcp.policy.denials{}')).toBe(1);
    expect(m.get('pqmcp.request.bytes{kind=request}')).toBe(40);
    expect(m.get('pqmcp.session.bytes{direction=out}')).toBe(200);
    expect(m.get('pqmcp.key_updates{}')).toBe(2);
    expect([...m.keys()].some((k) => k.includes('agent='))).toBe(false);
  });

  it('counts resumed handshakes by role, and sessions a ticket-issuing server sent no ticket, by reason', async () => {
    const open = (resumed: boolean, role: 'client' | 'server', withheld?: 'client-hello' | 'max-ticket-length' | 'expired'): AuditEvent => ({
      type: 'session.open', time: 0, role, sessionId: 's', ...peer, suite: 'S', backend: 'native', endpoint: '/', remoteAddress: undefined, handshakeMs: 1, resumed,
      ...(withheld ? { ticketsWithheld: withheld } : {}),
    });
    const m = await run([open(false, 'server'), open(true, 'server'), open(true, 'server'), open(true, 'client'), open(false, 'server', 'expired'), open(false, 'server', 'client-hello'), open(true, 'server', 'client-hello')]);
    expect(m.get('pqmcp.handshakes{outcome=ok,reason=ok}')).toBe(7);
    expect(m.get('pqmcp.handshakes.resumed{role=server}')).toBe(3);
    expect(m.get('pqmcp.handshakes.resumed{role=client}')).toBe(1);
    expect(m.get('pqmcp.tickets.withheld{reason=client-hello}')).toBe(2);
    expect(m.get('pqmcp.tickets.withheld{reason=expired}')).toBe(1);
    expect(m.has('pqmcp.tickets.withheld{reason=max-ticket-length}')).toBe(false);
  });

  it('counts refused tickets by error code from the event of the connection that offered them: session.open, handshake.failure, and a summary (failureReports)', async () => {
    const m = await run([
      { type: 'session.open', time: 0, role: 'server', sessionId: 's', ...peer, suite: 'S', backend: 'native', endpoint: '/', remoteAddress: undefined, handshakeMs: 1, resumed: false, ticketRefused: 'ERR_TICKET_MISMATCH' },
      { type: 'session.open', time: 0, role: 'server', sessionId: 's', ...peer, suite: 'S', backend: 'native', endpoint: '/', remoteAddress: undefined, handshakeMs: 1, resumed: false },
      { type: 'handshake.failure', time: 0, role: 'server', remoteAddress: '127.0.0.1', code: 'ERR_UNTRUSTED_ISSUER', message: 'x', ticketRefused: 'ERR_TICKET_INVALID' },
      { type: 'handshake.failure', time: 0, role: 'server', remoteAddress: '127.0.0.1', code: 'ERR_UNTRUSTED_ISSUER', message: 'x' },
      { type: 'handshake.failure.summary', time: 0, role: 'server', remoteAddress: '127.0.0.1', count: 9, codes: { ERR_UNTRUSTED_ISSUER: 9 }, ticketsRefused: { ERR_TICKET_INVALID: 6, ERR_TICKET_UNKNOWN_KEY: 2 }, windowStart: 0, windowMs: 10_000 },
      { type: 'handshake.failure.summary', time: 0, role: 'server', remoteAddress: '127.0.0.2', count: 1, codes: { ERR_HANDSHAKE_TIMEOUT: 1 }, windowStart: 0, windowMs: 10_000 },
    ]);
    const refused = Object.fromEntries([...m].filter(([k]) => k.startsWith('pqmcp.tickets.refused')));
    expect(refused).toEqual({ 'pqmcp.tickets.refused{reason=ERR_TICKET_MISMATCH}': 1, 'pqmcp.tickets.refused{reason=ERR_TICKET_INVALID}': 7, 'pqmcp.tickets.refused{reason=ERR_TICKET_UNKNOWN_KEY}': 2 });
    // The handshakes themselves are counted as before (a refused ticket is not a failed handshake).
    expect(m.get('pqmcp.handshakes{outcome=failed,reason=ERR_UNTRUSTED_ISSUER}')).toBe(11);
    expect(m.get('pqmcp.handshakes{outcome=ok,reason=ok}')).toBe(2);
  });

  it('labels requests and denials with the agent id only when allowed', async () => {
    const m = await run([request({}), request({ outcome: 'denied' })], true);
    expect(m.get('pqmcp.requests{agent=agent://t/alice,method=tools/call,outcome=ok}')).toBe(1);
    expect(m.get('pqmcp.policy.denials{agent=agent://t/alice}')).toBe(1);
  });

  it('keeps counting across collections (cumulative), response bytes included', async () => {
    const reader = new Reader();
    const provider = new MeterProvider({ readers: [reader] });
    const record = auditMetrics(provider.getMeter('pqmcp'));
    record(request({}));
    const first = await collect(reader);
    record(request({}));
    record(request({ outcome: 'error', responseBytes: 5 }));
    const second = await collect(reader);
    await provider.shutdown();
    expect(first.get('pqmcp.requests{method=tools/call,outcome=ok}')).toBe(1);
    expect(first.get('pqmcp.request.bytes{kind=response}')).toBe(20);
    expect(second.get('pqmcp.requests{method=tools/call,outcome=ok}')).toBe(2);
    expect(second.get('pqmcp.requests{method=tools/call,outcome=error}')).toBe(1);
    expect(second.get('pqmcp.request.bytes{kind=request}')).toBe(30);
    expect(second.get('pqmcp.request.bytes{kind=response}')).toBe(45);
    expect(second.get('pqmcp.request.duration.seconds{method=tools/call}')).toBe(3);
  });

  it('bounds the agent series: agents beyond MAX_AGENT_SERIES are counted as other', async () => {
    const extra = 5;
    const events = Array.from({ length: MAX_AGENT_SERIES + extra }, (_, i) => request({ agentId: `agent://t/a${i}` }));
    events.push(request({ agentId: 'agent://t/a0' }), request({ agentId: 'agent://t/late' }));
    const m = await run(events, true);
    const series = [...m.keys()].filter((k) => k.startsWith('pqmcp.requests{'));
    expect(series.length).toBe(MAX_AGENT_SERIES + 1);
    expect(m.get('pqmcp.requests{agent=agent://t/a0,method=tools/call,outcome=ok}')).toBe(2);
    expect(m.get('pqmcp.requests{agent=other,method=tools/call,outcome=ok}')).toBe(extra + 1);
    expect(m.has(`pqmcp.requests{agent=agent://t/a${MAX_AGENT_SERIES},method=tools/call,outcome=ok}`)).toBe(false);
  });

  it('bounds the agent series of pqmcp.policy.denials the same way (review 15, R15-9)', async () => {
    const extra = 5;
    const events = Array.from({ length: MAX_AGENT_SERIES + extra }, (_, i) => request({ agentId: `agent://t/a${i}`, outcome: 'denied' }));
    events.push(request({ agentId: 'agent://t/a0', outcome: 'denied' }));
    const m = await run(events, true);
    const series = [...m.keys()].filter((k) => k.startsWith('pqmcp.policy.denials{'));
    expect(series.length).toBe(MAX_AGENT_SERIES + 1);
    expect(m.get('pqmcp.policy.denials{agent=agent://t/a0}')).toBe(2);
    expect(m.get('pqmcp.policy.denials{agent=other}')).toBe(extra);
    expect(m.has(`pqmcp.policy.denials{agent=agent://t/a${MAX_AGENT_SERIES}}`)).toBe(false);
  });
});
