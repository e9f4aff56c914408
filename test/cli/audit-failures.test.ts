/**
 * `pqmcp serve --audit DIR --failure-reports n/dur` (review3 P4), the real CLI: empty TCP
 * connections from one address as fast as it can open them give at most n
 * handshake.failure events per window in the audit files; the rest are counted in a
 * handshake.failure.summary event, which `pqmcp audit verify` accepts as a chained event
 * and `pqmcp audit report` counts in its failure totals. The stderr failure log's summary
 * counts them too.
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { auditFiles, parseLine } from '../../src/audit/index.js';
import type { AuditEvent } from '../../src/audit/index.js';
import { EVERYTHING, cli, killAll, startGateway, tempDir, writeAgent, writeIssuer, writeTrust } from './helpers.js';

const tmp = tempDir('audit-failures');

afterAll(() => {
  killAll();
  tmp.remove();
});

function readTrail(dir: string): AuditEvent[] {
  return auditFiles(dir).flatMap((f) =>
    readFileSync(f, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => parseLine(l)!.event),
  );
}

/** `count` empty TCP connections from `localAddress`, one after another; resolves when all are closed by the server. */
async function emptyConnections(port: number, localAddress: string, count: number): Promise<void> {
  const closed: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const s = connect({ host: '127.0.0.1', port, localAddress });
    s.on('error', () => {});
    s.resume();
    closed.push(new Promise<void>((r) => s.once('close', () => r())));
    await new Promise<void>((r) => s.once('connect', () => r()).once('close', () => r()));
  }
  await Promise.all(closed);
}

describe('pqmcp serve --audit --failure-reports (real gateway)', () => {
  it('60 empty connections from one address: 5 events one by one, one summary of 55; verify accepts it, report counts all 62 (a second address: its own 2)', async () => {
    const issuer = writeIssuer(tmp.dir, 'issuer://audit-failures', 'issuer');
    const server = writeAgent(tmp.dir, issuer, 'agent://audit-failures/gateway', 'gateway');
    const trust = writeTrust(join(tmp.dir, 'trust.json'), issuer);
    const auditDir = join(tmp.dir, 'audit');
    const { gateway, url } = await startGateway(
      ['--identity', server.key, '--trust', trust, '--audit', auditDir, '--failure-reports', '5/10m', '--failure-log', '1000/10m', '--max-pending-per-source', '4', '--first-flight-timeout', '500'],
      [process.execPath, EVERYTHING, 'stdio'],
    );
    const port = Number(new URL(url).port);
    await emptyConnections(port, '127.0.0.150', 60);
    await emptyConnections(port, '127.0.0.151', 2);
    expect(await gateway.stop('SIGTERM')).toBe(0);

    const trail = readTrail(auditDir);
    const one = trail.filter((e) => e.type === 'handshake.failure');
    expect(one.filter((e) => e.remoteAddress === '127.0.0.150')).toHaveLength(5);
    expect(one.filter((e) => e.remoteAddress === '127.0.0.151')).toHaveLength(2);
    const summaries = trail.filter((e) => e.type === 'handshake.failure.summary');
    expect(summaries).toMatchObject([{ remoteAddress: '127.0.0.150', count: 55, windowMs: 600_000, role: 'server' }]);
    // The stderr log: 7 lines one by one, and the 55 in its summary at shutdown.
    expect(gateway.stderr.match(/connection from 127\.0\.0\.15[01] failed/g)).toHaveLength(7);
    expect(gateway.stderr).toMatch(/55 more connection failures .* not logged one by one/);

    const verify = await cli(['audit', 'verify', auditDir]);
    expect(verify.code).toBe(0);
    const report = await cli(['audit', 'report', auditDir, '--json']);
    expect(report.code).toBe(0);
    expect(JSON.parse(report.stdout)).toMatchObject({ rows: [], handshakeFailures: { failures: 62, oneByOne: 7, summarised: 55 } });
    const human = await cli(['audit', 'report', auditDir]);
    expect(human.stdout).toMatch(/failed handshakes: 62 \(55 of them counted in summaries\)/);
  }, 60_000);

  it('rejects a bad --failure-reports', async () => {
    for (const bad of ['0/10s', '5', 'x/10s', '5/0s']) {
      const r = await cli(['serve', '--identity', 'x', '--trust', 'y', '--failure-reports', bad, '--', 'true']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('--failure-reports');
    }
  }, 60_000);
});
