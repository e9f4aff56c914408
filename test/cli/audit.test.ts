/**
 * The gateway's audit trail, metrics and drain, end to end: a real `pqmcp serve` with
 * --audit and --metrics in front of server-everything, real SDK clients over pqmcp. The
 * test reads the audit files the gateway wrote (handshake failure, a refused agent, denials
 * by the Cedar policy (--policy), errors,
 * normal calls, session ends, rotation), verifies them with `pqmcp audit verify` (and
 * tampers with a copy), meters them with `pqmcp audit report` (in this process but for two:
 * cliInProcess), scrapes /metrics over HTTP
 * and checks the counters against the traffic it sent, drains on SIGTERM with a call in
 * flight (which succeeds while /readyz says 503 and new connections are refused), and
 * restarts the gateway on the same directory to check the chain continues.
 */
import { appendFileSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { PqmcpClientTransport } from '../../src/transport/client.js';
import { AuditLog, auditFiles, chainLine, parseLine } from '../../src/audit/index.js';
import type { AuditEvent, ChainHead, RequestEvent } from '../../src/audit/index.js';
import { makeAgent, fixtureCrypto, trustFor } from '../helpers/identities.js';
import type { Issuer } from '../helpers/identities.js';
import { EVERYTHING, cli, cliInProcess, killAll, metric, parsePrometheus, startGateway, tempDir, writeAgent, writeIssuer, writeTrust } from './helpers.js';
import type { CliProcess } from './helpers.js';

const SERVER_ID = 'agent://audit-test/gateway';
const ALICE = 'agent://audit-test/alice';
const BOB = 'agent://audit-test/bob';
const tmp = tempDir('audit');
const auditDir = join(tmp.dir, 'audit');
let issuer: Issuer;
let gatewayArgs: string[];

beforeAll(() => {
  issuer = writeIssuer(tmp.dir, 'issuer://audit-test', 'issuer');
  const server = writeAgent(tmp.dir, issuer, SERVER_ID, 'gateway');
  const trust = writeTrust(join(tmp.dir, 'trust.json'), issuer);
  const policy = join(tmp.dir, 'tools.cedar');
  writeFileSync(policy, '@id("three-tools")\npermit(principal, action == Action::"tools/call", resource)\n  when { ["echo", "get-sum", "trigger-long-running-operation"].contains(resource.name) };\n');
  gatewayArgs = ['--identity', server.key, '--trust', trust, '--policy', policy, '--allow-id', ALICE, '--audit', auditDir, '--audit-max-bytes', '4096', '--metrics', '127.0.0.1:0', '--drain-grace', '20s'];
});

afterAll(() => {
  killAll();
  tmp.remove();
});

async function connect(url: string, agentId: string, from: Issuer = issuer): Promise<Client> {
  const identity = makeAgent(fixtureCrypto(), from, agentId).identity;
  const transport = new PqmcpClientTransport(url, { identity, trust: trustFor(issuer), expectedServerId: SERVER_ID });
  const client = new Client({ name: 'audit-test', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

function readTrail(): AuditEvent[] {
  return auditFiles(auditDir).flatMap((f) =>
    readFileSync(f, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => parseLine(l)!.event),
  );
}


describe('pqmcp serve --audit --metrics (real gateway, server-everything, SDK clients)', () => {
  let gateway: CliProcess;
  let url: string;
  let metricsUrl: string;

  it('writes an audit trail of every path and exposes matching metrics, then drains on SIGTERM without failing a call', async () => {
    ({ gateway, url } = await startGateway(gatewayArgs, [process.execPath, EVERYTHING, 'stdio']));
    metricsUrl = (await gateway.waitForStderr(/metrics on (http:\/\/\S+)\/metrics/))[1]!;
    expect((await fetch(`${metricsUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${metricsUrl}/readyz`)).status).toBe(200);

    // Normal calls, a tool error and a protocol error.
    const alice = await connect(url, ALICE);
    for (let i = 0; i < 5; i++) expect(await alice.callTool({ name: 'echo', arguments: { message: `private ${i}` } })).toMatchObject({ content: [{ text: `Echo: private ${i}` }] });
    expect(await alice.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } })).toMatchObject({ content: [{ text: expect.stringContaining('5') }] });
    const bad = await alice.callTool({ name: 'echo', arguments: {} }).catch((e: Error) => e);
    const missing = await alice.callTool({ name: 'no-such-tool', arguments: {} }).catch((e: Error) => e);
    // Denied by the Cedar policy (--policy): recorded with the decision.
    await expect(alice.callTool({ name: 'get-env', arguments: {} })).rejects.toThrow(/not permitted by policy/);
    await alice.close();

    // Refused: an agent the gateway does not admit, and one from an untrusted issuer.
    const bob = await connect(url, BOB).catch((e: Error) => e);
    expect(String(bob)).toMatch(/not admitted/);
    const stranger = writeIssuer(tmp.dir, 'issuer://stranger', 'stranger');
    await expect(connect(url, 'agent://stranger/x', stranger)).rejects.toThrow();
    await gateway.waitForStderr(/connection from .* failed: .*ERR_UNTRUSTED_ISSUER/);

    // A session that will be draining when SIGTERM comes.
    const carol = await connect(url, ALICE);
    await carol.listTools();

    // Metrics match the traffic (events reach the meter synchronously).
    await new Promise((r) => setTimeout(r, 200));
    const scraped = await (await fetch(`${metricsUrl}/metrics`)).text();
    const metrics = parsePrometheus(scraped);
    const calls = (outcome: string): number => metric(metrics, 'pqmcp_requests_total', { method: 'tools/call', outcome });
    expect(calls('ok')).toBe(6);
    // `bad` is an isError result or an invalid-params error, depending on the SDK; `missing`
    // and get-env are not permitted by the policy.
    expect(calls('error')).toBe(1);
    expect(calls('denied')).toBe(2);
    expect(metric(metrics, 'pqmcp_policy_denials_total')).toBe(2);
    expect(metric(metrics, 'pqmcp_requests_total', { method: 'initialize', outcome: 'ok' })).toBe(2);
    expect(metric(metrics, 'pqmcp_requests_total', { method: 'initialize', outcome: 'error' })).toBe(1);
    expect(metric(metrics, 'pqmcp_requests_total', { method: 'tools/list', outcome: 'ok' })).toBe(1);
    expect(metric(metrics, 'pqmcp_handshakes_total', { outcome: 'ok', reason: 'ok' })).toBe(3);
    expect(metric(metrics, 'pqmcp_handshakes_total', { outcome: 'failed', reason: 'ERR_UNTRUSTED_ISSUER' })).toBe(1);
    expect(metric(metrics, 'pqmcp_sessions_live', { role: 'server' })).toBe(1);
    expect(metric(metrics, 'pqmcp_request_duration_seconds_count', { method: 'tools/call' })).toBe(9);
    expect(metric(metrics, 'pqmcp_request_bytes_total', { kind: 'request' })).toBeGreaterThan(0);
    expect(metric(metrics, 'pqmcp_session_bytes_total', { direction: 'in' })).toBeGreaterThan(0);
    expect([...metrics.keys()].some((k) => k.includes(ALICE))).toBe(false);

    // A long call the client cancels: audited as cancelled, and no longer waited for by the
    // drain below (server-everything never answers it; the gateway forgets it).
    const abort = new AbortController();
    const dropped = carol.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 30, steps: 3 } }, undefined, { signal: abort.signal, timeout: 60_000 }).catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 200));
    abort.abort('changed my mind');
    expect(String(await dropped)).toMatch(/changed my mind/);

    // Drain: a long call in flight, SIGTERM, the call still succeeds.
    const slow = carol.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 2, steps: 4 } }, undefined, { timeout: 30_000 });
    await new Promise((r) => setTimeout(r, 300));
    gateway.child.kill('SIGTERM');
    await gateway.waitForStderr(/SIGTERM: draining \(1 request/);
    expect((await fetch(`${metricsUrl}/readyz`)).status).toBe(503);
    expect((await fetch(`${metricsUrl}/healthz`)).status).toBe(200);
    await expect(connect(url, ALICE)).rejects.toThrow();
    expect(await slow).toMatchObject({ content: [{ text: expect.stringContaining('Long running operation completed') }] });
    expect(await gateway.exited).toBe(0);
    expect(gateway.stderr).not.toMatch(/drain-timeout|grace period over/);
    void bad;
    void missing;

    // The audit files: rotation, every path, no content.
    const files = auditFiles(auditDir);
    expect(files.length).toBeGreaterThan(1);
    const trail = readTrail();
    const raw = files.map((f) => readFileSync(f, 'utf8')).join('');
    expect(raw).not.toContain('private 3');
    expect(trail.filter((e) => e.type === 'handshake.failure')).toEqual([expect.objectContaining({ code: 'ERR_UNTRUSTED_ISSUER', remoteAddress: '127.0.0.1' })]);
    const opens = trail.filter((e) => e.type === 'session.open');
    expect(opens.map((e) => e.agentId)).toEqual([ALICE, BOB, ALICE]);
    expect(opens[0]).toMatchObject({ suite: expect.stringMatching(/^PQMCP_/), endpoint: '/', remoteAddress: '127.0.0.1', issuer: 'issuer://audit-test' });
    const closes = trail.filter((e) => e.type === 'session.close');
    expect(closes.map((e) => [e.agentId, e.end])).toEqual([
      [ALICE, 'peer'],
      [BOB, 'local'],
      [ALICE, 'local'],
    ]);
    const requests = trail.filter((e): e is RequestEvent => e.type === 'request');
    const echoes = requests.filter((r) => r.name === 'echo' && r.outcome === 'ok');
    expect(echoes).toHaveLength(5);
    expect(new Set(echoes.map((r) => r.requestHash)).size).toBe(5);
    expect(requests.find((r) => r.name === 'no-such-tool')).toMatchObject({ outcome: 'denied', policy: { decision: 'deny', policies: [] } });
    expect(requests.find((r) => r.name === 'get-env')).toMatchObject({ outcome: 'denied', errorCode: -32003, policy: { decision: 'deny', reason: expect.any(String) } });
    expect(requests.find((r) => r.name === 'echo' && r.outcome === 'ok')).toMatchObject({ policy: { decision: 'allow', policies: ['three-tools'] } });
    expect(requests.find((r) => r.agentId === BOB)).toMatchObject({ method: 'initialize', outcome: 'error', errorMessage: expect.stringContaining('not admitted') });
    const long = requests.filter((r) => r.name === 'trigger-long-running-operation');
    expect(long.map((r) => r.outcome)).toEqual(['cancelled', 'ok']);
    expect(long[0]).toMatchObject({ responseBytes: 0, requestHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(long[0]!.responseHash).toBeUndefined();
    expect(long[1]!.durationMs).toBeGreaterThanOrEqual(1500);
    // Anchors in the gateway's log: the head of each finished file.
    expect(gateway.stderr).toMatch(/audit: finished .*audit-.*\.jsonl; chain head seq \d+ [0-9a-f]{64}/);
  }, 90_000);

  it('pqmcp audit verify says the trail is whole, and where a copy was tampered with', async () => {
    const ok = await cli(['audit', 'verify', auditDir]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^ok: \d+ events in \d+ files, seq 0 to \d+, head [0-9a-f]{64}$/m);

    const copy = join(tmp.dir, 'tampered');
    mkdirSync(copy);
    for (const f of auditFiles(auditDir)) copyFileSync(f, join(copy, basename(f)));
    const second = auditFiles(copy)[1]!;
    const lines = readFileSync(second, 'utf8').split('\n');
    lines[1] = lines[1]!.replace(/"time":\d+/, '"time":0');
    writeFileSync(second, lines.join('\n'));
    const bad = await cliInProcess(['audit', 'verify', copy, '--json']);
    expect(bad.code).toBe(1);
    const result = JSON.parse(bad.stdout) as { ok: boolean; problems: Array<{ kind: string; file: string; line: number }> };
    expect(result.ok).toBe(false);
    expect(result.problems[0]).toMatchObject({ kind: 'edited', file: second, line: 2 });

    writeFileSync(second, lines.filter((_, i) => i !== 2).join('\n'));
    const human = await cliInProcess(['audit', 'verify', ...auditFiles(copy)]);
    expect(human.code).toBe(1);
    expect(human.stdout).toContain(`${second}:2: edited`);
    expect(human.stdout).toMatch(new RegExp(`${basename(second)}:3: deleted`));
  }, 30_000);

  it('pqmcp audit report meters calls, errors and denials per agent and per tool', async () => {
    const byAgent = await cli(['audit', 'report', auditDir, '--by', 'agent', '--json']);
    expect(byAgent.code).toBe(0);
    const rows = (JSON.parse(byAgent.stdout) as { rows: Array<{ key: string; calls: number; errors: number; denials: number }> }).rows;
    // alice: 2 initialize, 11 tools/call (the long ones included, one cancelled: not an error), 1 tools/list; bob: 1 refused initialize.
    expect(rows.find((r) => r.key === ALICE)).toMatchObject({ calls: 14, errors: 1, denials: 2 });
    expect(rows.find((r) => r.key === BOB)).toMatchObject({ calls: 1, errors: 1 });
    const byTool = await cliInProcess(['audit', 'report', auditDir, '--by', 'tool']);
    expect(byTool.stdout).toMatch(/^echo\s+6\s+1\s+0\s/m);
    const future = await cliInProcess(['audit', 'report', auditDir, '--since', '2099-01-01', '--json']);
    expect(JSON.parse(future.stdout)).toMatchObject({ rows: [] });
  }, 30_000);

  it('a restarted gateway continues the chain in a new file', async () => {
    const before = auditFiles(auditDir);
    const lastLine = readFileSync(before.at(-1)!, 'utf8').trim().split('\n').at(-1)!;
    const head = parseLine(lastLine)!;
    ({ gateway, url } = await startGateway(gatewayArgs, [process.execPath, EVERYTHING, 'stdio']));
    await gateway.waitForStderr(new RegExp(`continuing the chain after seq ${head.seq}`));
    const client = await connect(url, ALICE);
    await client.callTool({ name: 'echo', arguments: { message: 'again' } });
    await client.close();
    expect(await gateway.stop('SIGTERM')).toBe(0);
    const after = auditFiles(auditDir);
    const added = after.filter((f) => !before.includes(f));
    expect(added.length).toBeGreaterThanOrEqual(1);
    const first = parseLine(readFileSync(added[0]!, 'utf8').split('\n')[0]!)!;
    expect(first).toMatchObject({ seq: head.seq + 1, prev: head.hash });
    const verify = await cliInProcess(['audit', 'verify', auditDir]);
    expect(verify.code).toBe(0);
  }, 60_000);
});

describe('pqmcp audit report prints what peers named, not what they would have a terminal do (review 8)', () => {
  it('escapes control and bidi characters of a tool name and a method from the trail; --json keeps them exact', async () => {
    const dir = join(tmp.dir, 'hostile-names');
    const log = await AuditLog.open(dir);
    const evil = 'echo\u001b]0;pwned\u0007\r\nagent://forged  999  0\u202e';
    const event = (name: string | undefined, method: string): RequestEvent => ({
      type: 'request', time: Date.now(), role: 'server', sessionId: 'ab', agentId: 'agent://x', issuer: 'issuer://x', fingerprint: 'cd', serial: '01',
      direction: 'fromPeer', method, ...(name !== undefined ? { name } : {}), requestBytes: 10, responseBytes: 10, durationMs: 1, outcome: 'ok',
    });
    log.write(event(evil, 'tools/call'));
    log.write(event(undefined, 'x\u009b2J'));
    await log.close();
    const human = await cliInProcess(['audit', 'report', dir, '--by', 'tool']);
    expect(human.code).toBe(0);
    expect(human.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
    expect(human.stdout).toContain('echo\\u001b]0;pwned\\u0007\\u000d\\u000aagent://forged  999  0\\u202e');
    expect(human.stdout).toContain('x\\u009b2J');
    expect(human.stdout.split('\n').filter((l) => l.startsWith('agent://forged'))).toEqual([]);
    const json = await cliInProcess(['audit', 'report', dir, '--by', 'tool', '--json']);
    expect((JSON.parse(json.stdout) as { rows: Array<{ key: string }> }).rows.map((r) => r.key).sort()).toEqual([evil, 'x\u009b2J'].sort());
  });

  it('pqmcp audit verify --anchor: a head the gateway logged must be in the trail with its hash', async () => {
    const dir = join(tmp.dir, 'anchored');
    const heads: Array<{ seq: number; hash: string }> = [];
    const log = await AuditLog.open(dir, { onrotate: (_f, head) => void heads.push(head) });
    for (let i = 0; i < 6; i++) log.write({ type: 'handshake.failure', time: Date.now(), role: 'server', remoteAddress: '127.0.0.1', code: 'ERR_DECODE', message: `n${i}` });
    await log.close();
    const head = heads.at(-1)!;
    const ok = await cliInProcess(['audit', 'verify', dir, '--anchor', `${head.seq}:${head.hash}`]);
    expect(ok.code, ok.stdout).toBe(0);
    expect(ok.stdout).toMatch(/ok: 6 events in 1 file, seq 0 to 5, head [0-9a-f]{64}, 1 anchor matched/);
    // Cut the last event off: the files alone still verify; against the anchor they do not.
    const [file] = auditFiles(dir);
    writeFileSync(file!, readFileSync(file!, 'utf8').split('\n').slice(0, 5).map((l) => `${l}\n`).join(''));
    expect((await cliInProcess(['audit', 'verify', dir])).code).toBe(0);
    const cut = await cliInProcess(['audit', 'verify', dir, '--anchor', `${head.seq}:${head.hash}`]);
    expect(cut.code).toBe(1);
    expect(cut.stdout).toMatch(/deleted: the trail ends at seq 4, before the anchored seq 5: its tail was cut off/);
    expect((await cliInProcess(['audit', 'verify', dir, '--anchor', '5:abc'])).code).toBe(2);
  });
});

describe('pqmcp audit report over a trail edited with its hashes recomputed (review 9)', () => {
  it('counts events with fields of the wrong type apart (skippedEvents, a warning), never crashes or adds strings into totals; a __proto__ code is counted', async () => {
    const dir = join(tmp.dir, 'crafted');
    const log = await AuditLog.open(dir);
    const request = (over: Record<string, unknown>): AuditEvent =>
      ({
        type: 'request', time: Date.now(), role: 'server', sessionId: 'ab', agentId: 'agent://x', issuer: 'issuer://x', fingerprint: 'cd', serial: '01',
        direction: 'fromPeer', method: 'tools/call', name: 'echo', requestBytes: 10, responseBytes: 20, durationMs: 1, outcome: 'ok', ...over,
      }) as unknown as AuditEvent;
    log.write(request({}));
    log.write(request({ requestBytes: '1000' }));
    log.write(request({ agentId: null }));
    log.write({ type: 'handshake.failure.summary', time: Date.now(), role: 'server', remoteAddress: '127.0.0.1', count: 1, codes: null, windowStart: 0, windowMs: 1000 } as unknown as AuditEvent);
    log.write({ type: 'handshake.failure', time: Date.now(), role: 'server', remoteAddress: '127.0.0.1', code: '__proto__', message: 'm' } as unknown as AuditEvent);
    await log.close();
    // The chain holds: this is what an edit with recomputed hashes looks like to verify without anchors.
    expect((await cliInProcess(['audit', 'verify', dir])).code).toBe(0);
    const json = await cliInProcess(['audit', 'report', dir, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const out = JSON.parse(json.stdout) as { rows: Array<{ key: string; calls: number; requestBytes: number }>; handshakeFailures: { failures: number; byCode: Record<string, number> }; skippedLines: number; skippedEvents: number };
    expect(out.rows).toEqual([{ key: 'agent://x', calls: 1, errors: 0, denials: 0, requestBytes: 10, responseBytes: 20, totalMs: 1 }]);
    expect(out.skippedEvents).toBe(3);
    expect(out.skippedLines).toBe(0);
    expect(out.handshakeFailures.failures).toBe(1);
    expect(Object.entries(out.handshakeFailures.byCode)).toEqual([['__proto__', 1]]);
    const human = await cliInProcess(['audit', 'report', dir]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stderr).toContain('warning: 3 event(s) with a field of the wrong type not counted');
    expect(human.stdout).toContain('failed handshakes: 1: __proto__ 1');
  });
});

describe('pqmcp audit report over a trail edited without its hashes recomputed', () => {
  it("does not count an event whose own hash does not hold, nor a line that is no chained event: counts them apart (editedEvents, malformedLines) with a warning naming verify; a crash's partial last line is not damage", async () => {
    const dir = join(tmp.dir, 'edited');
    const log = await AuditLog.open(dir);
    for (let i = 0; i < 3; i++) {
      log.write({
        type: 'request', time: Date.now(), role: 'server', sessionId: 'ab', agentId: 'agent://x', issuer: 'issuer://x', fingerprint: 'cd', serial: '01',
        direction: 'fromPeer', method: 'tools/call', name: 'echo', requestBytes: 10, responseBytes: 20, durationMs: 1, outcome: 'ok',
      });
    }
    await log.close();
    const [file] = auditFiles(dir);
    const lines = readFileSync(file!, 'utf8').split('\n').filter((l) => l !== '');
    // Line 2: its byte count raised, its hash left as it was; then a line that is no event; then a crash's half line.
    lines[1] = lines[1]!.replace('"requestBytes":10', '"requestBytes":99999');
    writeFileSync(file!, `${lines[0]}\n${lines[1]}\nnot an event\n${lines[2]}\n${lines[2]!.slice(0, 40)}`);
    expect((await cliInProcess(['audit', 'verify', dir])).code).toBe(1);
    const json = await cliInProcess(['audit', 'report', dir, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const out = JSON.parse(json.stdout) as { rows: unknown[]; editedEvents: number; malformedLines: number; skippedEvents: number };
    expect(out.rows).toEqual([{ key: 'agent://x', calls: 2, errors: 0, denials: 0, requestBytes: 20, responseBytes: 40, totalMs: 2 }]);
    expect(out).toMatchObject({ editedEvents: 1, malformedLines: 1, skippedEvents: 0 });
    const human = await cliInProcess(['audit', 'report', dir]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stderr).toContain(`warning: the trail is damaged: 1 event(s) whose hash does not hold (changed after they were written) and 1 line(s) that are no chained audit event not counted, the first at ${file}:2; run pqmcp audit verify`);
    // An intact trail with only a crash's partial last line: no warning.
    writeFileSync(file!, `${lines[0]}\n${lines[2]!.slice(0, 40)}`);
    const partial = await cliInProcess(['audit', 'report', dir]);
    expect(partial.stderr).not.toContain('warning');
  });
});

describe('a line without its end at the end of a file is never part of the chain (review 15, R15-4)', () => {
  const call = (i: number, agentId = 'agent://x', requestBytes = 10): RequestEvent => ({
    type: 'request', time: 1_800_000_000_000 + i, role: 'server', sessionId: 'ab', agentId, issuer: 'issuer://x', fingerprint: 'cd', serial: '01',
    direction: 'fromPeer', method: 'tools/call', name: 'echo', requestBytes, responseBytes: 20, durationMs: 1, outcome: 'ok',
  });

  it('a forged whole event appended without its newline: inserted where it does not follow, the anchors do not vouch for it, report never counts it', async () => {
    const dir = join(tmp.dir, 'unterminated');
    const heads: ChainHead[] = [];
    const log = await AuditLog.open(dir, { maxBytes: 1024, flushMs: 0, onrotate: (_file, head) => heads.push(head) });
    for (let i = 0; i < 8; i++) {
      log.write(call(i));
      log.flush();
    }
    await log.close();
    const files = auditFiles(dir);
    expect(files.length).toBeGreaterThan(2);
    const anchors = heads.map((h) => `--anchor=${h.seq}:${h.hash}`);
    const first = readFileSync(files[0]!, 'utf8');
    // Self-hashed, any seq and prev, without '\n': to the first file.
    appendFileSync(files[0]!, chainLine({ seq: 999, hash: '1'.repeat(64) }, call(99, 'agent://forged', 123456789)).line);
    const v = await cliInProcess(['audit', 'verify', dir, ...anchors, '--json']);
    expect(v.code, v.stdout).toBe(1);
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: false, events: 8, anchorsMatched: heads.length, problems: [{ kind: 'inserted', file: files[0], line: first.split('\n').length }] });
    const r = await cliInProcess(['audit', 'report', dir, '--json']);
    const out = JSON.parse(r.stdout) as { rows: Array<{ key: string; calls: number }>; incompleteLines: number };
    expect(out.rows).toEqual([expect.objectContaining({ key: 'agent://x', calls: 8 })]);
    expect(out.incompleteLines).toBe(1);

    // One that does follow the last event, on the last file: as any event added at the end,
    // the files alone cannot tell; it is still not counted, and an anchor at its seq fails.
    writeFileSync(files[0]!, first);
    const head = heads.at(-1)!;
    const forged = chainLine(head, call(99, 'agent://forged', 123456789));
    appendFileSync(files.at(-1)!, forged.line);
    const plain = await cliInProcess(['audit', 'verify', dir, ...anchors]);
    expect(plain.code, plain.stdout).toBe(0);
    expect(plain.stdout).toContain(`incomplete: event seq ${head.seq + 1} has no end of line (the writer stopped before it, e.g. a crash): not part of the chain, not counted, no anchor`);
    expect(plain.stdout).toContain(`ok: 8 events in ${files.length} files, seq 0 to ${head.seq}`);
    const anchored = await cliInProcess(['audit', 'verify', dir, ...anchors, `--anchor=${forged.head.seq}:${forged.head.hash}`, '--json']);
    expect(anchored.code).toBe(1);
    expect(JSON.parse(anchored.stdout)).toMatchObject({ ok: false, problems: [{ kind: 'incomplete' }, { kind: 'deleted' }] });
    const human = await cliInProcess(['audit', 'report', dir]);
    expect(human.code).toBe(0);
    expect(human.stdout).not.toContain('agent://forged');
    expect(human.stderr).toContain(`note: 1 line(s) without their end at a file's end (what a crash leaves; not part of the chain) not counted, the first at ${files.at(-1)}:`);
    expect(human.stderr).not.toContain('warning');
  });

  it("a crash that cut only the last line's newline: verify is ok up to it, the restarted writer continues before it, report counts the chain", async () => {
    const dir = join(tmp.dir, 'crash-newline');
    const log = await AuditLog.open(dir, { flushMs: 0 });
    for (let i = 0; i < 3; i++) log.write(call(i));
    await log.close();
    const [file] = auditFiles(dir);
    writeFileSync(file!, readFileSync(file!, 'utf8').slice(0, -1));
    const again = await AuditLog.open(dir, { flushMs: 0 });
    expect(again.position.seq).toBe(1);
    again.write(call(3));
    await again.close();
    const v = await cliInProcess(['audit', 'verify', dir, '--json']);
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, events: 3, head: { seq: 2 }, problems: [{ kind: 'incomplete', file, line: 3 }] });
    const r = await cliInProcess(['audit', 'report', dir, '--json']);
    expect(JSON.parse(r.stdout)).toMatchObject({ rows: [{ key: 'agent://x', calls: 3 }], incompleteLines: 1 });
  });
});
