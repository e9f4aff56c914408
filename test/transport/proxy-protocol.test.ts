/**
 * PROXY protocol (v1 and v2) from trusted proxies: the parser (every field, malformed
 * input, split across reads, too long), and a `proxyProtocol` listener over real sockets on
 * 127.0.0.x behind a test relay that speaks the protocol (the real HAProxy and nginx are in
 * proxy-protocol-real.test.ts): the client address reaches admission, sessions and audit;
 * untrusted peers, bad, slow and missing headers are refused with typed errors.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { PqmcpError, ProxyProtocolError, ServerBusyError } from '../../src/errors.js';
import { MAX_V1_HEADER, MAX_V2_HEADER, parseProxyHeader, type ProxyHeader } from '../../src/transport/proxy-protocol.js';
import { SUBPROTOCOL, listen } from '../../src/transport/index.js';
import type { PqmcpServer, PqmcpServerOptions, PqmcpServerTransport } from '../../src/transport/index.js';
import type { AuditEvent } from '../../src/audit/index.js';
import { agent, trustFor } from '../helpers/identities.js';
import { Cleanup, SERVER_ID, connectClient, startFeatureServer, waitFor } from '../helpers/mcp.js';
import { ProxyRelay, v1Header, v2Header } from '../helpers/proxy-header.js';

const bytes = (s: string) => Buffer.from(s, 'latin1');

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProxyProtocolError) return err.reason;
    throw err;
  }
  return 'no error';
}

/** Parse `data` fed in pieces of `step` bytes, as a reader accumulating them would. */
function parseInSteps(data: Buffer, step: number): ProxyHeader | undefined {
  for (let n = step; ; n += step) {
    const h = parseProxyHeader(data.subarray(0, Math.min(n, data.length)));
    if (h !== undefined || n >= data.length) return h;
  }
}

describe('parseProxyHeader: version 1', () => {
  it('TCP4: every field, and the length of the line only', () => {
    const h = parseProxyHeader(bytes('PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET / HTTP/1.1\r\n'));
    expect(h).toEqual({ version: 1, local: false, source: { address: '192.0.2.1', port: 56324 }, destination: { address: '198.51.100.2', port: 443 }, length: 45 });
  });

  it('TCP6: full, compressed, upper case and IPv4-mapped forms, canonicalised', () => {
    const h = parseProxyHeader(bytes('PROXY TCP6 2001:0DB8:0000:0000:0000:0000:0000:0001 ::ffff:192.0.2.1 0 65535\r\n'));
    expect(h?.source).toEqual({ address: '2001:db8::1', port: 0 });
    expect(h?.destination).toEqual({ address: '::ffff:192.0.2.1', port: 65535 });
  });

  it('UNKNOWN, short and with the rest of the line ignored: no client address', () => {
    expect(parseProxyHeader(bytes('PROXY UNKNOWN\r\n'))).toEqual({ version: 1, local: false, source: undefined, destination: undefined, length: 15 });
    const long = `PROXY UNKNOWN ${'f'.repeat(MAX_V1_HEADER - 16)}\r\n`;
    expect(long.length).toBe(MAX_V1_HEADER);
    expect(parseProxyHeader(bytes(long))?.length).toBe(MAX_V1_HEADER);
  });

  it.each([
    ['lower case', 'proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n'],
    ['two spaces', 'PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n'],
    ['unknown protocol', 'PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n'],
    ['UDP4', 'PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n'],
    ['a leading zero in an address', 'PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n'],
    ['an octet over 255', 'PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n'],
    ['a leading zero in a port', 'PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n'],
    ['a port over 65535', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n'],
    ['a negative port', 'PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n'],
    ['IPv6 in TCP4', 'PROXY TCP4 ::1 ::1 1 2\r\n'],
    ['IPv4 in TCP6', 'PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n'],
    ['an IPv6 zone', 'PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n'],
    ['a host name', 'PROXY TCP4 localhost 5.6.7.8 1 2\r\n'],
    ['a missing port', 'PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n'],
    ['an extra field', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n'],
    ['a trailing space', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n'],
    ['LF alone', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n'],
    ['CR then something else', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX\n'],
    ['a tab', 'PROXY\tTCP4 1.2.3.4 5.6.7.8 1 2\r\n'],
    ['a byte above ASCII', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\xe9\r\n'],
    ['UNKNOWN glued to more', 'PROXY UNKNOWNX\r\n'],
    ['HTTP instead of a header', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['TLS instead of a header', '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03'],
  ])('refuses %s (malformed)', (_what, line) => {
    expect(reason(() => parseProxyHeader(bytes(line)))).toBe('malformed');
  });

  it('too long: no CRLF in the first 107 bytes', () => {
    expect(reason(() => parseProxyHeader(bytes(`PROXY UNKNOWN ${'f'.repeat(MAX_V1_HEADER - 15)}\r\n`)))).toBe('too-long');
    expect(reason(() => parseProxyHeader(bytes(`PROXY UNKNOWN ${'f'.repeat(200)}`)))).toBe('too-long');
  });

  it('a CR at the 107th byte is a line too long whatever follows, whole or in pieces (found by fuzzing)', () => {
    const line = bytes(`PROXY UNKNOWN ${'f'.repeat(MAX_V1_HEADER - 15)}\r.more`);
    expect(line[MAX_V1_HEADER - 1]).toBe(0x0d);
    expect(reason(() => parseProxyHeader(line))).toBe('too-long');
    expect(reason(() => parseProxyHeader(line.subarray(0, MAX_V1_HEADER)))).toBe('too-long');
    // One byte earlier the CR has room for its LF, so a bare CR is malformed.
    expect(reason(() => parseProxyHeader(bytes(`PROXY UNKNOWN ${'f'.repeat(MAX_V1_HEADER - 16)}\r.more`)))).toBe('malformed');
  });

  it('refuses as soon as the bytes cannot start a header: one byte of HTTP is enough', () => {
    expect(reason(() => parseProxyHeader(bytes('G')))).toBe('malformed');
    expect(reason(() => parseProxyHeader(bytes('PROXX')))).toBe('malformed');
    expect(parseProxyHeader(bytes('PROX'))).toBeUndefined();
    expect(parseProxyHeader(Buffer.alloc(0))).toBeUndefined();
  });
});

describe('parseProxyHeader: version 2', () => {
  it('PROXY over TCP/IPv4: addresses, ports, length', () => {
    const h = v2Header({ src: '192.0.2.1', dst: '198.51.100.2', sport: 56324, dport: 443 });
    expect(h.length).toBe(28);
    expect(parseProxyHeader(Buffer.concat([h, bytes('GET /')]))).toEqual({ version: 2, local: false, source: { address: '192.0.2.1', port: 56324 }, destination: { address: '198.51.100.2', port: 443 }, length: 28 });
  });

  it('PROXY over TCP/IPv6, IPv4-mapped shown as such', () => {
    const h = parseProxyHeader(v2Header({ src: '2001:db8::7', dst: '::ffff:c000:201', sport: 1, dport: 65535 }));
    expect(h).toEqual({ version: 2, local: false, source: { address: '2001:db8::7', port: 1 }, destination: { address: '::ffff:192.0.2.1', port: 65535 }, length: 52 });
  });

  it('TLVs (AWS, HAProxy unique id, a NOOP) are skipped within the declared length', () => {
    const h = v2Header({ src: '192.0.2.9', tlvs: [{ type: 0xea, value: Buffer.from('\x01vpce-0123456789abcdef') }, { type: 0x05, value: Buffer.alloc(128, 7) }, { type: 0x04, value: Buffer.alloc(0) }] });
    const parsed = parseProxyHeader(Buffer.concat([h, bytes('rest')]));
    expect(parsed?.source?.address).toBe('192.0.2.9');
    expect(parsed?.length).toBe(h.length);
  });

  it('LOCAL (a health check): no client address, whatever the block holds', () => {
    expect(parseProxyHeader(v2Header({ command: 0 }))).toEqual({ version: 2, local: true, source: undefined, destination: undefined, length: 16 });
    expect(parseProxyHeader(v2Header({ command: 0, src: '192.0.2.1' }))).toMatchObject({ local: true, source: undefined, length: 28 });
  });

  it('UNSPEC, UNIX and UDP: valid, but no client address (the proxy stands for it)', () => {
    expect(parseProxyHeader(v2Header({ familyProtocol: 0x00, block: Buffer.alloc(5) }))).toMatchObject({ local: false, source: undefined, length: 21 });
    expect(parseProxyHeader(v2Header({ familyProtocol: 0x31, block: Buffer.alloc(216) }))).toMatchObject({ source: undefined, length: 232 });
    expect(parseProxyHeader(v2Header({ familyProtocol: 0x12, src: '192.0.2.1' }))).toMatchObject({ source: undefined, length: 28 });
  });

  it.each([
    ['version 1', v2Header({ src: '192.0.2.1', versionCommand: 0x11 })],
    ['version 3', v2Header({ src: '192.0.2.1', versionCommand: 0x31 })],
    ['command 2', v2Header({ src: '192.0.2.1', versionCommand: 0x22 })],
    ['family 4', v2Header({ src: '192.0.2.1', familyProtocol: 0x41 })],
    ['protocol 3', v2Header({ src: '192.0.2.1', familyProtocol: 0x13 })],
    ['an IPv4 block of 11 bytes', v2Header({ familyProtocol: 0x11, block: Buffer.alloc(11) })],
    ['an IPv6 block of 35 bytes', v2Header({ familyProtocol: 0x21, block: Buffer.alloc(35) })],
    ['a UNIX block of 215 bytes', v2Header({ familyProtocol: 0x31, block: Buffer.alloc(215) })],
    ['a TLV running past the end', Buffer.concat([v2Header({ src: '192.0.2.1', length: 12 + 5 }).subarray(0, 28), Buffer.from([0x05, 0x00, 0x09, 1, 2])])],
    ['two stray bytes after the TLVs', Buffer.concat([v2Header({ src: '192.0.2.1', length: 12 + 2 }).subarray(0, 28), Buffer.from([0x04, 0x00])])],
    ['a wrong signature byte', Buffer.concat([Buffer.from('0d0a0d0a000d0a515549540b', 'hex'), Buffer.alloc(4)])],
  ])('refuses %s (malformed)', (_what, header) => {
    expect(reason(() => parseProxyHeader(header))).toBe('malformed');
  });

  it(`too long: refused from the 16-byte fixed part when the length says more than ${MAX_V2_HEADER}`, () => {
    const fixed = v2Header({ familyProtocol: 0x11, length: MAX_V2_HEADER - 15 }).subarray(0, 16);
    expect(reason(() => parseProxyHeader(fixed))).toBe('too-long');
    expect(parseProxyHeader(v2Header({ familyProtocol: 0x00, length: MAX_V2_HEADER - 16 }).subarray(0, 16))).toBeUndefined();
    expect(reason(() => parseProxyHeader(v2Header({ familyProtocol: 0x11, length: 0xffff }).subarray(0, 16)))).toBe('too-long');
  });

  it('a bad version byte is refused at byte 13, before the length or the body', () => {
    expect(reason(() => parseProxyHeader(v2Header({ src: '192.0.2.1', versionCommand: 0x11 }).subarray(0, 13)))).toBe('malformed');
    expect(parseProxyHeader(v2Header({ src: '192.0.2.1' }).subarray(0, 13))).toBeUndefined();
  });
});

describe('parseProxyHeader: split across reads', () => {
  const headers: [string, Buffer][] = [
    ['v1 TCP4', v1Header('192.0.2.1', '198.51.100.2', 1234, 443)],
    ['v1 TCP6', v1Header('2001:db8::1', '2001:db8::2')],
    ['v1 UNKNOWN', bytes('PROXY UNKNOWN ::1 ::2 1 2\r\n')],
    ['v2 IPv4 with TLVs', v2Header({ src: '192.0.2.1', tlvs: [{ type: 0x05, value: Buffer.alloc(40, 1) }] })],
    ['v2 IPv6', v2Header({ src: '2001:db8::1' })],
    ['v2 LOCAL', v2Header({ command: 0 })],
  ];

  it.each(headers)('%s: every proper prefix needs more; byte by byte and in any chunking the result equals the whole', (_what, header) => {
    const whole = parseProxyHeader(Buffer.concat([header, bytes('GET / HTTP/1.1\r\n')]));
    expect(whole?.length).toBe(header.length);
    for (let n = 0; n < header.length; n++) expect(parseProxyHeader(header.subarray(0, n))).toBeUndefined();
    for (const step of [1, 2, 3, 7, 16]) expect(parseInSteps(Buffer.concat([header, bytes('xyz')]), step)).toEqual(whole);
  });
});

// --- a proxyProtocol listener over real sockets --------------------------------------------

/** A raw TCP connection from `localAddress` to the listener; resolves once connected. */
async function raw(server: PqmcpServer, localAddress = '127.0.0.1'): Promise<Socket> {
  const s = connect({ host: '127.0.0.1', port: server.address().port, localAddress });
  s.on('error', () => {});
  await new Promise<void>((r) => s.once('connect', () => r()));
  return s;
}

const closed = (s: Socket) => new Promise<Buffer>((resolve) => {
  const got: Buffer[] = [];
  s.on('data', (d: Buffer) => got.push(d));
  s.once('close', () => resolve(Buffer.concat(got)));
});

interface Proxied {
  server: PqmcpServer;
  errors: { error: PqmcpError; remoteAddress: string | undefined }[];
  audit: AuditEvent[];
  sessions: PqmcpServerTransport[];
}

describe('a proxyProtocol listener (real sockets, a test relay as the trusted proxy)', { timeout: 30_000 }, () => {
  const cleanup = new Cleanup();
  afterAll(() => cleanup.run());

  async function start(options: Partial<PqmcpServerOptions> = {}): Promise<Proxied> {
    const audit: AuditEvent[] = [];
    const { server } = await startFeatureServer(cleanup, { backend: 'native', proxyProtocol: true, trustedProxies: ['127.0.0.1'], onAuditEvent: (e) => void audit.push(e), ...options });
    const errors: Proxied['errors'] = [];
    server.on('clientError', (error, info) => void errors.push({ error, remoteAddress: info.remoteAddress }));
    const sessions: PqmcpServerTransport[] = [];
    server.on('session', (t) => void sessions.push(t));
    return { server, errors, audit, sessions };
  }

  async function relay(server: PqmcpServer, host: string, options: Partial<Parameters<typeof ProxyRelay.start>[1]> = {}): Promise<ProxyRelay> {
    const r = await ProxyRelay.start(host, { target: { host: '127.0.0.1', port: server.address().port }, ...options });
    cleanup.add(() => r.close());
    return r;
  }

  it('v2 and v1: the session, the audit events and the call see the client address the header names', async () => {
    const p = await start();
    const v2 = await relay(p.server, '127.0.0.41');
    const { client } = await connectClient(cleanup, v2.url, { backend: 'native', webSocketOptions: { localAddress: '127.0.0.50' } });
    expect(await client.callTool({ name: 'echo', arguments: { text: 'via v2' } })).toMatchObject({ content: [{ type: 'text', text: 'via v2' }] });
    expect(p.sessions.at(-1)!.remoteAddress).toBe('127.0.0.50');
    expect(p.audit.find((e) => e.type === 'session.open')).toMatchObject({ remoteAddress: '127.0.0.50' });
    await client.close();

    const v1 = await relay(p.server, '127.0.0.42', { header: (c) => v1Header(c.remoteAddress!, c.localAddress!, c.remotePort!, c.localPort!) });
    const second = await connectClient(cleanup, v1.url, { backend: 'native', webSocketOptions: { localAddress: '127.0.0.51' } });
    expect(p.sessions.at(-1)!.remoteAddress).toBe('127.0.0.51');
    await second.client.close();
    expect(p.errors).toEqual([]);
    await waitFor(() => p.server.pendingHandshakes === 0, 5_000, 'no slot left');
  });

  it('no byte lost: a header trickled a byte per read, and a header sent in one write with the upgrade request', async () => {
    const p = await start();
    for (const [i, mode] of [['60', { trickle: true }], ['61', { coalesce: true }]] as const) {
      const r = await relay(p.server, `127.0.0.4${i.at(-1)}`, mode);
      const { client } = await connectClient(cleanup, r.url, { backend: 'native', webSocketOptions: { localAddress: `127.0.0.${i}` } });
      expect(await client.callTool({ name: 'echo', arguments: { text: i } })).toMatchObject({ content: [{ text: i }] });
      expect(p.sessions.at(-1)!.remoteAddress).toBe(`127.0.0.${i}`);
      await client.close();
    }
    expect(p.errors).toEqual([]);
  });

  it('LOCAL and UNKNOWN: the proxy stands for the client', async () => {
    const p = await start();
    const local = await relay(p.server, '127.0.0.43', { header: () => v2Header({ command: 0 }) });
    const a = await connectClient(cleanup, local.url, { backend: 'native', webSocketOptions: { localAddress: '127.0.0.52' } });
    expect(p.sessions.at(-1)!.remoteAddress).toBe('127.0.0.1');
    await a.client.close();
    const unknown = await relay(p.server, '127.0.0.44', { header: () => bytes('PROXY UNKNOWN\r\n') });
    const b = await connectClient(cleanup, unknown.url, { backend: 'native', webSocketOptions: { localAddress: '127.0.0.53' } });
    expect(p.sessions.at(-1)!.remoteAddress).toBe('127.0.0.1');
    await b.client.close();
  });

  it('the PROXY header wins over X-Forwarded-For, which is never read on such a listener', async () => {
    const p = await start();
    const r = await relay(p.server, '127.0.0.45');
    const { client } = await connectClient(cleanup, r.url, { backend: 'native', headers: { 'X-Forwarded-For': '198.51.100.7, 127.0.0.1' }, webSocketOptions: { localAddress: '127.0.0.54' } });
    expect(p.sessions.at(-1)!.remoteAddress).toBe('127.0.0.54');
    await client.close();
  });

  it('a direct connection from an untrusted peer is refused unread: nothing answered, a typed report with its address', async () => {
    const p = await start();
    const s = await raw(p.server, '127.0.0.55');
    const answer = closed(s);
    s.write(v2Header({ src: '198.51.100.9' }));
    s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect((await answer).length).toBe(0);
    await waitFor(() => p.errors.length === 1, 5_000, 'the report');
    expect(p.errors[0]!.error).toBeInstanceOf(ProxyProtocolError);
    expect(p.errors[0]).toMatchObject({ error: { code: 'ERR_PROXY_PROTOCOL', reason: 'untrusted-peer' }, remoteAddress: '127.0.0.55' });
    expect(p.server.refusedDirectConnections).toBe(1);
    expect(p.audit).toContainEqual(expect.objectContaining({ type: 'handshake.failure', code: 'ERR_PROXY_PROTOCOL', remoteAddress: '127.0.0.55' }));
    // A WebSocket client connecting directly fails cleanly too.
    const ws = new WebSocket(p.server.url, [SUBPROTOCOL], { localAddress: '127.0.0.56' });
    await new Promise<void>((resolve) => ws.on('error', () => resolve()));
    expect(p.server.refusedDirectConnections).toBe(2);
  });

  it('no header, a bad one, or one too long from the trusted proxy: closed at once, reported with the proxy address', async () => {
    const p = await start();
    const cases: [Buffer, string][] = [
      [bytes(`GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n`), 'malformed'],
      [bytes('PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n'), 'malformed'],
      [v2Header({ src: '192.0.2.1', versionCommand: 0x12 }), 'malformed'],
      [v2Header({ familyProtocol: 0x11, length: MAX_V2_HEADER }).subarray(0, 16), 'too-long'],
      [bytes(`PROXY UNKNOWN ${'x'.repeat(120)}`), 'too-long'],
    ];
    for (const [bytesSent, why] of cases) {
      const s = await raw(p.server);
      const answer = closed(s);
      s.write(bytesSent);
      expect((await answer).length).toBe(0);
      await waitFor(() => p.errors.length > 0, 5_000, why);
      expect(p.errors.shift()).toMatchObject({ error: { code: 'ERR_PROXY_PROTOCOL', reason: why }, remoteAddress: '127.0.0.1' });
    }
    await waitFor(() => p.server.pendingHandshakes === 0, 5_000, 'no slot left');
  });

  it('slow: a header not complete in time holds one slot of the proxy until its deadline, then is cut', async () => {
    const p = await start({ proxyHeaderTimeoutMs: 300 });
    const s = await raw(p.server);
    const answer = closed(s);
    s.write(v2Header({ src: '192.0.2.1' }).subarray(0, 20));
    await waitFor(() => p.server.pendingHandshakes === 1, 5_000, 'the slot');
    await answer;
    expect(p.errors).toEqual([expect.objectContaining({ error: expect.objectContaining({ reason: 'timeout' }), remoteAddress: '127.0.0.1' })]);
    await waitFor(() => p.server.pendingHandshakes === 0, 5_000, 'the slot released');
  });

  it('a header then no upgrade request: the slot moves to the client, cut at the first-flight deadline', async () => {
    const p = await start({ firstFlightTimeoutMs: 300 });
    const s = await raw(p.server);
    const answer = closed(s);
    s.write(v2Header({ src: '127.0.0.57' }));
    s.write('GET / HTTP/1.1\r\n'); // an unfinished request: Node's own timeouts do not apply here
    await waitFor(() => p.server.pendingHandshakes === 1, 5_000, 'the slot');
    await answer;
    expect(p.errors).toEqual([expect.objectContaining({ error: expect.objectContaining({ code: 'ERR_HANDSHAKE_TIMEOUT' }), remoteAddress: '127.0.0.57' })]);
    await waitFor(() => p.server.pendingHandshakes === 0, 5_000, 'the slot released');
  });

  it('per-source limits apply to the reported client: idle connections of one client evict only each other', async () => {
    const p = await start({ maxPendingPerSource: 4, firstFlightTimeoutMs: 5_000 });
    const idle: Socket[] = [];
    const answers: Promise<Buffer>[] = [];
    for (let i = 0; i < 12; i++) {
      const s = await raw(p.server);
      answers.push(closed(s));
      s.write(v2Header({ src: '127.0.0.58' }));
      idle.push(s);
    }
    await waitFor(() => p.errors.length === 8, 5_000, 'eight evictions');
    expect(p.errors.every((e) => e.error instanceof ServerBusyError && e.remoteAddress === '127.0.0.58')).toBe(true);
    expect(p.server.pendingHandshakes).toBe(4);
    // The evicted ones (the oldest) were told in HTTP: 503, which the pqmcp client retries.
    for (const answer of answers.slice(0, 8)) expect((await answer).toString('latin1')).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n[^]*Retry-After: 1\r\n/);
    // Another client through the same proxy is not touched by them.
    const r = await relay(p.server, '127.0.0.46');
    const { client } = await connectClient(cleanup, r.url, { backend: 'native', busyRetry: false, webSocketOptions: { localAddress: '127.0.0.59' } });
    expect(p.sessions.at(-1)!.remoteAddress).toBe('127.0.0.59');
    expect(p.errors.filter((e) => e.remoteAddress !== '127.0.0.58')).toEqual([]);
    await client.close();
    for (const s of idle) s.destroy();
    await waitFor(() => p.server.pendingHandshakes === 0, 5_000, 'no slot left');
  });

  it('a connection closed before any header (a TCP health check) is dropped quietly and its slot freed', async () => {
    const p = await start();
    const s = await raw(p.server);
    s.write(bytes('PROX'));
    await waitFor(() => p.server.pendingHandshakes === 1, 5_000, 'the slot');
    s.end();
    await waitFor(() => p.server.pendingHandshakes === 0, 5_000, 'the slot released');
    const bare = await raw(p.server);
    bare.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect(p.server.pendingHandshakes).toBe(0);
    expect(p.errors).toEqual([]);
  });

  it('close() ends connections still waiting for their header', async () => {
    const p = await start();
    const s = await raw(p.server);
    const answer = closed(s);
    s.write(bytes('PROXY TCP4'));
    await waitFor(() => p.server.pendingHandshakes === 1, 5_000, 'the slot');
    await p.server.close();
    await answer;
    expect(p.server.pendingHandshakes).toBe(0);
  });

  it('options: proxyProtocol needs trustedProxies and its own port, is a boolean; the header timeout needs it', async () => {
    const base = { identity: agent(SERVER_ID), trust: trustFor(), backend: 'native' as const };
    await expect(listen({ ...base, proxyProtocol: true })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringContaining('trustedProxies') });
    await expect(listen({ ...base, proxyProtocol: 'v2' as unknown as boolean, trustedProxies: ['127.0.0.1'] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(listen({ ...base, proxyHeaderTimeoutMs: 1000 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringContaining('proxyProtocol') });
    await expect(listen({ ...base, proxyProtocol: true, trustedProxies: ['127.0.0.1'], proxyHeaderTimeoutMs: 0 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    const { createServer } = await import('node:http');
    await expect(listen({ ...base, proxyProtocol: true, trustedProxies: ['127.0.0.1'], server: createServer() })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringContaining('own port') });
  });
});
