/**
 * Real TCP load balancers speaking PROXY protocol in front of a `proxyProtocol` listener,
 * each started by the test on 127.0.0.x with its own temporary config, stopped after:
 *
 * - HAProxy (Debian's `haproxy`) in TCP mode with `send-proxy-v2` (version 2, binary);
 * - nginx's stream module (Debian's `nginx` + `libnginx-mod-stream`) with
 *   `proxy_protocol on;` (version 1, text).
 *
 * Through each: the session, its audit event and its calls see the real client address;
 * per-source limits apply to it (an idle WebSocket flood from one client address, through
 * the same proxy, never evicts an honest client from another); a client that bypasses the
 * proxy is refused.
 *
 * Skipped with a message where a binary is missing locally; in CI (CI=true) a missing
 * binary fails instead (.ci/run installs both).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { PqmcpError } from '../../src/errors.js';
import { PqmcpClientTransport } from '../../src/transport/index.js';
import type { PqmcpServer, PqmcpServerTransport } from '../../src/transport/index.js';
import type { AuditEvent } from '../../src/audit/index.js';
import { Flood, loopbackSources } from '../../benchmarks/lib/floods.js';
import { agent, trustFor } from '../helpers/identities.js';
import { Cleanup, SERVER_ID, startFeatureServer, waitFor } from '../helpers/mcp.js';

const HAPROXY = ['/usr/sbin/haproxy', '/usr/bin/haproxy'].find((p) => existsSync(p));
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
const STREAM_MODULE = ['/usr/lib/nginx/modules/ngx_stream_module.so', '/usr/lib64/nginx/modules/ngx_stream_module.so'].find((p) => existsSync(p));

const missing: string[] = [];
if (HAPROXY === undefined) missing.push('haproxy (apt-get install haproxy)');
if (NGINX === undefined || STREAM_MODULE === undefined) missing.push("nginx's stream module (apt-get install nginx libnginx-mod-stream)");
if (missing.length > 0 && process.env.CI) throw new Error(`CI needs ${missing.join(' and ')} for the PROXY protocol tests`);
if (missing.length > 0) console.warn(`[proxy-protocol-real] skipping what needs ${missing.join(' and ')}: not installed`);

async function freePort(host: string): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, host, () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Run `argv` (a proxy in the foreground) until cleanup; resolves once it accepts on host:port. */
async function startProxy(cleanup: Cleanup, name: string, argv: string[], prefix: string, host: string, port: number): Promise<void> {
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  cleanup.add(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(prefix, { recursive: true, force: true });
  });
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited: ${stderr}`);
    const up = await new Promise<boolean>((resolve) => {
      const c = connect(port, host, () => (c.destroy(), resolve(true)));
      c.on('error', () => resolve(false));
    });
    if (up) return;
    if (Date.now() > deadline) throw new Error(`${name} did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function startHaproxy(cleanup: Cleanup, host: string, port: number, target: number): Promise<void> {
  const prefix = mkdtempSync(join(tmpdir(), 'pqmcp-haproxy-'));
  writeFileSync(
    join(prefix, 'haproxy.cfg'),
    `
global
  maxconn 2000
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend pqmcp_front
  bind ${host}:${port}
  default_backend pqmcp
backend pqmcp
  # Health checks every 200 ms: with send-proxy-v2 they carry a LOCAL header, then close.
  server gateway 127.0.0.1:${target} send-proxy-v2 check inter 200ms
`,
  );
  await startProxy(cleanup, 'haproxy', [HAPROXY!, '-db', '-f', join(prefix, 'haproxy.cfg')], prefix, host, port);
}

async function startNginxStream(cleanup: Cleanup, host: string, port: number, target: number): Promise<void> {
  const prefix = mkdtempSync(join(tmpdir(), 'pqmcp-nginx-stream-'));
  writeFileSync(
    join(prefix, 'nginx.conf'),
    `
load_module ${STREAM_MODULE};
daemon off;
master_process off;
worker_processes 1;
error_log ${prefix}/error.log warn;
pid ${prefix}/nginx.pid;
events { worker_connections 1024; }
stream {
  server {
    listen ${host}:${port};
    proxy_pass 127.0.0.1:${target};
    proxy_protocol on;
  }
}`,
  );
  await startProxy(cleanup, 'nginx', [NGINX!, '-p', prefix, '-c', join(prefix, 'nginx.conf')], prefix, host, port);
}

async function honest(url: string, localAddress: string) {
  const transport = new PqmcpClientTransport(url, {
    identity: agent('agent://pqmcp-test/client'),
    trust: trustFor(),
    backend: 'native',
    expectedServerId: SERVER_ID,
    busyRetry: false,
    webSocketOptions: { localAddress },
  });
  const client = new Client({ name: 'behind-a-tcp-proxy', version: '1' });
  await client.connect(transport);
  return client;
}

const PROXIES = [
  { name: 'HAProxy send-proxy-v2 (version 2)', host: '127.0.0.12', start: startHaproxy, available: HAPROXY !== undefined, flood: 31 },
  { name: 'nginx stream proxy_protocol on (version 1)', host: '127.0.0.13', start: startNginxStream, available: NGINX !== undefined && STREAM_MODULE !== undefined, flood: 32 },
];

for (const proxy of PROXIES) {
  describe.skipIf(!proxy.available)(`behind a real ${proxy.name}`, { timeout: 60_000 }, () => {
    const cleanup = new Cleanup();
    afterAll(() => cleanup.run());
    let server: PqmcpServer;
    let url: string;
    const sessions: PqmcpServerTransport[] = [];
    const errors: { error: PqmcpError; remoteAddress: string | undefined }[] = [];
    const audit: AuditEvent[] = [];

    beforeAll(async () => {
      // The proxy reaches the listener from 127.0.0.1: that (and only that) is trusted.
      ({ server } = await startFeatureServer(cleanup, { backend: 'native', proxyProtocol: true, trustedProxies: ['127.0.0.1'], firstFlightTimeoutMs: 1_000, onAuditEvent: (e) => void audit.push(e) }));
      server.on('session', (t) => void sessions.push(t));
      server.on('clientError', (error, info) => void errors.push({ error, remoteAddress: info.remoteAddress }));
      const port = await freePort(proxy.host);
      await proxy.start(cleanup, proxy.host, port, server.address().port);
      url = `ws://${proxy.host}:${port}/`;
    });

    it('the session, its audit event and its calls see the real client address, not the proxy', async () => {
      const client = await honest(url, '127.0.0.210');
      const r = await client.callTool({ name: 'echo', arguments: { text: 'through the proxy' } });
      expect(r.content).toEqual([{ type: 'text', text: 'through the proxy' }]);
      expect(sessions.at(-1)!.remoteAddress).toBe('127.0.0.210');
      expect(audit.filter((e) => e.type === 'session.open').at(-1)).toMatchObject({ remoteAddress: '127.0.0.210' });
      await client.close();
    });

    it('per-source limits apply to the real client: an idle flood from one client address never evicts an honest client from another', async () => {
      const flood = new Flood({ url, kind: 'idle', sources: loopbackSources(1, proxy.flood), connections: 40, hellos: [], maxOpened: 5_000 });
      const before = errors.length;
      try {
        await new Promise((r) => setTimeout(r, 500));
        for (let i = 0; i < 3; i++) {
          const client = await honest(url, '127.0.0.211');
          const r = await client.callTool({ name: 'echo', arguments: { text: `call ${i}` } });
          expect(r.content).toEqual([{ type: 'text', text: `call ${i}` }]);
          expect(sessions.at(-1)!.remoteAddress).toBe('127.0.0.211');
          await client.close();
        }
        expect(flood.stats.opened).toBeGreaterThan(40);
        // The flood's evictions and timeouts are reported with its own address; nothing
        // with the proxy's (which every connection came from) or the honest client's.
        const during = errors.slice(before);
        expect(during.filter((e) => e.error.code === 'ERR_SERVER_BUSY').length).toBeGreaterThan(0);
        expect(new Set(during.map((e) => e.remoteAddress))).toEqual(new Set([`127.0.0.${proxy.flood}`]));
      } finally {
        await flood.stop();
      }
      await waitFor(() => server.pendingHandshakes === 0, 10_000, 'listener idle');
    });

    it('the proxy\'s own health checks are taken quietly: no report, no slot left', async () => {
      const before = errors.length;
      await new Promise((r) => setTimeout(r, 1_000));
      expect(errors.slice(before).filter((e) => e.remoteAddress !== `127.0.0.${proxy.flood}`)).toEqual([]);
      await waitFor(() => server.pendingHandshakes === 0, 5_000, 'no slot left');
    });

    it('a client that bypasses the proxy is refused before any HTTP', async () => {
      const refused = server.refusedDirectConnections;
      const before = errors.length;
      await expect(honest(`ws://127.0.0.1:${server.address().port}/`, '127.0.0.212')).rejects.toMatchObject({ code: 'ERR_CONNECTION' });
      expect(server.refusedDirectConnections).toBe(refused + 1);
      // (Late reports of the previous test's flood may be interleaved.)
      expect(errors.slice(before).filter((e) => e.remoteAddress !== `127.0.0.${proxy.flood}`)).toEqual([
        { error: expect.objectContaining({ code: 'ERR_PROXY_PROTOCOL', reason: 'untrusted-peer' }), remoteAddress: '127.0.0.212' },
      ]);
    });
  });
}
