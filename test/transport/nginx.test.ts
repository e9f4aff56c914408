/**
 * A real nginx (Debian's package) in front of the listener, started by the test on
 * 127.0.0.x ports with its own temporary prefix and config, stopped after:
 *
 * - as a WebSocket reverse proxy reporting X-Forwarded-For, with the listener trusting it:
 *   the per-source limits apply to the real client address (an idle flood from one client
 *   address cannot evict an honest client from another, both through the same nginx), the
 *   session records the real client address, and a forged X-Forwarded-For is not believed;
 *   raw TCP floods (idle connections to nginx, and straight at the listener) never evict
 *   nginx's own connections, which hold a shared slot until their request names the client;
 * - terminating TLS (wss to nginx, ws behind it): the pqmcp session still authenticates end
 *   to end (the same transcript hash and exported channel binding on both ends), and a
 *   byte changed behind nginx (a tampering hop between nginx and pqmcp) is detected.
 *
 * Skipped where no nginx binary exists (.ci/run installs it).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { BadRecordMacError, PqmcpError } from '../../src/errors.js';
import { PqmcpClientTransport, SUBPROTOCOL } from '../../src/transport/index.js';
import type { PqmcpServer, PqmcpServerTransport } from '../../src/transport/index.js';
import { makeCertificates } from '../../benchmarks/lib/certs.js';
import { Flood, loopbackSources } from '../../benchmarks/lib/floods.js';
import { MitmProxy } from '../adversarial/socket-harness.js';
import { agent, trustFor } from '../helpers/identities.js';
import { Cleanup, SERVER_ID, startFeatureServer, waitFor } from '../helpers/mcp.js';

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p)) ?? whichNginx();
const NGINX_HOST = '127.0.0.9';

function whichNginx(): string | undefined {
  try {
    return execFileSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

async function freePort(host: string): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, host, () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Start nginx with `servers` (server blocks) in a fresh prefix; resolves once it accepts on `port`. */
async function startNginx(cleanup: Cleanup, servers: string, port: number, files: Record<string, string> = {}, host = NGINX_HOST): Promise<string> {
  const prefix = mkdtempSync(join(tmpdir(), 'pqmcp-nginx-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(prefix, name), text, { mode: 0o600 });
  const conf = `
daemon off;
master_process off;
worker_processes 1;
error_log ${prefix}/error.log warn;
pid ${prefix}/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  ${servers}
}`;
  writeFileSync(join(prefix, 'nginx.conf'), conf);
  const child: ChildProcess = spawn(NGINX!, ['-p', prefix, '-c', join(prefix, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  cleanup.add(async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(prefix, { recursive: true, force: true });
  });
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
    const up = await new Promise<boolean>((resolve) => {
      const c = connect(port, host, () => (c.destroy(), resolve(true)));
      c.on('error', () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline) throw new Error(`nginx did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return prefix;
}

/** The proxy block every test uses: WebSocket upgrade passed on, client address appended. */
function proxyTo(target: string): string {
  return `
    location / {
      proxy_pass ${target};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_read_timeout 60s;
    }`;
}

async function honest(url: string, localAddress: string, extra: Partial<ConstructorParameters<typeof PqmcpClientTransport>[1]> = {}) {
  const transport = new PqmcpClientTransport(url, {
    identity: agent('agent://pqmcp-test/client'),
    trust: trustFor(),
    backend: 'native',
    expectedServerId: SERVER_ID,
    busyRetry: false,
    ...extra,
    webSocketOptions: { localAddress, ...(extra.webSocketOptions ?? {}) },
  });
  const client = new Client({ name: 'behind-nginx', version: '1' });
  await client.connect(transport);
  return { client, transport };
}

describe.skipIf(NGINX === undefined)('behind a real nginx', { timeout: 60_000 }, () => {
  const cleanup = new Cleanup();
  afterAll(() => cleanup.run());

  describe('WebSocket reverse proxy with X-Forwarded-For, trusted', () => {
    let server: PqmcpServer;
    let url: string;
    let nginxPort: number;
    const sessions: PqmcpServerTransport[] = [];

    beforeAll(async () => {
      // nginx reaches the listener from 127.0.0.1: that (and only that) is trusted.
      // failureReports off: the floods below count every eviction one by one (the report rate
      // has its own tests, failure-reports.test.ts).
      ({ server } = await startFeatureServer(cleanup, { backend: 'native', trustedProxies: ['127.0.0.1'], firstFlightTimeoutMs: 1_000, failureReports: false }));
      server.on('session', (t) => void sessions.push(t));
      const port = await freePort(NGINX_HOST);
      await startNginx(cleanup, `server { listen ${NGINX_HOST}:${port}; ${proxyTo(`http://127.0.0.1:${server.address().port}`)} }`, port);
      url = `ws://${NGINX_HOST}:${port}/`;
      nginxPort = port;
    });

    it('the session records the real client address, not nginx', async () => {
      const { client } = await honest(url, '127.0.0.200');
      expect(sessions.at(-1)!.remoteAddress).toBe('127.0.0.200');
      await client.close();
    });

    it('per-source limits apply to the real client: an idle flood from one client address never evicts an honest client from another', async () => {
      // The flood's own slots, sampled in the listener's admission table: the listener-wide
      // count also holds nginx's connections waiting for their request (a shared slot each).
      const table = (server as unknown as { edge: { table: { countFor(source: string): number } } }).edge.table;
      let maxPending = 0;
      const sampler = setInterval(() => (maxPending = Math.max(maxPending, table.countFor('127.0.0.30'))), 5);
      const flood = new Flood({ url, kind: 'idle', sources: loopbackSources(1, 30), connections: 40, hellos: [], maxOpened: 5_000 });
      try {
        await new Promise((r) => setTimeout(r, 500));
        for (let i = 0; i < 3; i++) {
          const { client } = await honest(url, '127.0.0.201');
          const r = await client.callTool({ name: 'echo', arguments: { text: 'through nginx' } });
          expect(r.content).toEqual([{ type: 'text', text: 'through nginx' }]);
          await client.close();
        }
        // All 40 flood sockets share one real address: it never held more than its 8 slots,
        // although every connection reached the listener from nginx.
        expect(flood.stats.opened).toBeGreaterThan(40);
        expect(maxPending).toBeGreaterThan(0);
        expect(maxPending).toBeLessThanOrEqual(8);
        expect(flood.stats.closes[4006] ?? 0).toBeGreaterThan(0);
      } finally {
        clearInterval(sampler);
        await flood.stop();
      }
      await waitFor(() => server.pendingHandshakes === 0, 10_000, 'listener idle');
    });

    it('a forged X-Forwarded-For is not believed: through nginx the real address wins, directly the peer does', async () => {
      const errors: { remoteAddress: string | undefined }[] = [];
      server.on('clientError', (_e, info) => void errors.push(info));
      const forged = { headers: { 'X-Forwarded-For': '198.51.100.7' } };
      // Through nginx: it appends the address it saw; we read from the right.
      const viaNginx = new WebSocket(url, [SUBPROTOCOL], { localAddress: '127.0.0.202', ...forged });
      // Directly: the peer (127.0.0.203) is not a trusted proxy, so its header is ignored.
      const direct = new WebSocket(`ws://127.0.0.1:${server.address().port}/`, [SUBPROTOCOL], { localAddress: '127.0.0.203', ...forged });
      for (const ws of [viaNginx, direct]) ws.on('error', () => {});
      // Both stay silent: the first-flight deadline reports them with their source.
      const seen = (a: string) => errors.some((e) => e.remoteAddress === a);
      await waitFor(() => seen('127.0.0.202') && seen('127.0.0.203'), 10_000, 'two first-flight timeouts');
      // The forged address never appears; late closes of the previous test's flood (from
      // 127.0.0.30, also through nginx) may still be reported meanwhile, with their real address.
      expect(new Set(errors.map((e) => e.remoteAddress))).toEqual(new Set(['127.0.0.202', '127.0.0.203', ...(seen('127.0.0.30') ? ['127.0.0.30'] : [])]));
      viaNginx.terminate();
      direct.terminate();
    });

    it('raw TCP floods: through nginx from one client address and straight at the listener from another, an honest client through nginx gets through 3 of 3, and nginx\'s own connections are never evicted', async () => {
      const errors: { code: string; remoteAddress: string | undefined }[] = [];
      const onError = (e: PqmcpError, info: { remoteAddress: string | undefined }) => void errors.push({ code: e.code, remoteAddress: info.remoteAddress });
      server.on('clientError', onError);
      const rawFrom = async (host: string, port: number, localAddress: string): Promise<Socket> => {
        const s = connect({ host, port, localAddress });
        s.on('error', () => {});
        await new Promise<void>((r) => s.once('connect', () => r()));
        return s;
      };
      const sockets: Socket[] = [];
      // Idle TCP to nginx, and an idle WebSocket flood through it, from one client address:
      // each WebSocket reaches the listener as a connection from nginx (a shared slot of
      // nginx under the global cap) whose request then names 127.0.0.35.
      for (let i = 0; i < 30; i++) sockets.push(await rawFrom(NGINX_HOST, nginxPort, '127.0.0.35'));
      const flood = new Flood({ url, kind: 'idle', sources: ['127.0.0.35'], connections: 40, hellos: [], maxOpened: 5_000 });
      // Idle TCP straight at the listener from another address: held to its cap of 8.
      for (let i = 0; i < 30; i++) sockets.push(await rawFrom('127.0.0.1', server.address().port, '127.0.0.36'));
      try {
        await new Promise((r) => setTimeout(r, 500));
        for (let i = 0; i < 3; i++) {
          const { client } = await honest(url, '127.0.0.205');
          const r = await client.callTool({ name: 'echo', arguments: { text: `raw flood ${i}` } });
          expect(r.content).toEqual([{ type: 'text', text: `raw flood ${i}` }]);
          await client.close();
        }
        expect(sessions.at(-1)!.remoteAddress).toBe('127.0.0.205');
        // The direct flood: 22 of 30 evicted (HTTP 503), the 8 left cut at the deadline.
        expect(errors.filter((e) => e.remoteAddress === '127.0.0.36' && e.code === 'ERR_SERVER_BUSY').length).toBe(22);
        expect(flood.stats.opened).toBeGreaterThan(40);
        // Everything else is reported with the flood's own address; nothing with nginx's
        // (its connections hold shared slots until their request names the client).
        expect(new Set(errors.map((e) => e.remoteAddress))).toEqual(new Set(['127.0.0.35', '127.0.0.36']));
      } finally {
        await flood.stop();
        for (const s of sockets) s.destroy();
        server.off('clientError', onError);
      }
      await waitFor(() => server.pendingHandshakes === 0, 10_000, 'listener idle');
    });
  });

  describe('nginx terminating TLS in front of pqmcp', () => {
    let url: string;
    let server: PqmcpServer;
    let tamper = false;
    const certs = makeCertificates();

    beforeAll(async () => {
      ({ server } = await startFeatureServer(cleanup, { backend: 'native' }));
      // Between nginx and pqmcp: a hop that, once armed, changes one byte of the next
      // record from the server (a stand-in for a compromised or buggy TLS terminator).
      const hop = await MitmProxy.start(server.url, cleanup, (dir, record) => {
        if (!tamper || dir !== 's2c') return [record];
        tamper = false;
        const changed = record.slice();
        changed[changed.length - 1]! ^= 0x01;
        return [changed];
      });
      // On 127.0.0.1: the name in the test certificate.
      const port = await freePort('127.0.0.1');
      await startNginx(
        cleanup,
        `server {
          listen 127.0.0.1:${port} ssl;
          ssl_certificate server.crt;
          ssl_certificate_key server.key;
          ${proxyTo(hop.url.replace(/^ws:/, 'http:'))}
        }`,
        port,
        { 'server.crt': certs.serverCert, 'server.key': certs.serverKey },
        '127.0.0.1',
      );
      url = `wss://127.0.0.1:${port}/`;
    });

    it('the pqmcp session still authenticates end to end: same transcript hash and channel binding at both ends', async () => {
      const sessions: PqmcpServerTransport[] = [];
      server.on('session', (t) => void sessions.push(t));
      const { client, transport } = await honest(url, '127.0.0.210', { webSocketOptions: { ca: certs.ca } });
      expect(transport.peer?.agentId).toBe(SERVER_ID);
      await waitFor(() => sessions.length === 1, 5_000, 'server session');
      const serverSide = sessions[0]!;
      expect(serverSide.peer.agentId).toBe('agent://pqmcp-test/client');
      expect(transport.sessionId).toBe(serverSide.sessionId);
      const label = 'EXPORTER-test-end-to-end';
      expect(Buffer.from(transport.exportKeyingMaterial(label, new Uint8Array(0), 32))).toEqual(Buffer.from(serverSide.exportKeyingMaterial(label, new Uint8Array(0), 32)));
      const r = await client.callTool({ name: 'echo', arguments: { text: 'over TLS, end to end' } });
      expect(r.content).toEqual([{ type: 'text', text: 'over TLS, end to end' }]);
      await client.close();
    });

    it('one byte changed behind nginx is detected: the client fails with bad_record_mac', async () => {
      const { client, transport } = await honest(url, '127.0.0.211', { webSocketOptions: { ca: certs.ca } });
      const errors: PqmcpError[] = [];
      const { onerror } = transport;
      transport.onerror = (e) => {
        errors.push(e as PqmcpError);
        onerror?.(e);
      };
      tamper = true;
      await expect(client.callTool({ name: 'echo', arguments: { text: 'tampered' } })).rejects.toBeDefined();
      await waitFor(() => errors.length > 0, 5_000, 'client error');
      expect(errors[0]).toBeInstanceOf(BadRecordMacError);
      await client.close();
    });
  });
});
