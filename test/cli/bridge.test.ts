/**
 * The bridge loses nothing (`pqmcp connect`, real processes): what a client writes before the
 * connection is up is sent; when stdin ends, every answer still owed is awaited (bounded by
 * --drain-timeout) before the close, and the exit code says whether every request was
 * answered. "connected" is printed only once the server has accepted this agent (the
 * gateway admits after the handshake), and the banner names the backend per primitive.
 * Against a real gateway (`pqmcp serve` with a stdio child) and a real library server.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeBackend, selectBackend } from '../../src/crypto/select.js';
import { loadIdentity, loadTrustStore } from '../../src/identity/files.js';
import { listen } from '../../src/transport/server.js';
import type { PqmcpServer } from '../../src/transport/server.js';
import { CliProcess, LINE_SERVER, cli, killAll, startGateway, tempDir, writeAgent, writeIssuer, writeTrust } from './helpers.js';
import type { CliResult, Files } from './helpers.js';
import { HostileServer } from '../adversarial/socket-harness.js';
import { Alert } from '../../src/errors.js';
import { Cleanup, waitFor } from '../helpers/mcp.js';
import { makeAgent, makeIssuer } from '../helpers/identities.js';

const SERVER_ID = 'agent://bridge-test/gateway';
const tmp = tempDir('bridge');
let trust: string;
let server: Files;
let alice: Files;
let intruder: Files;
let gateway: CliProcess;
let url: string;

const INIT = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
const INITIALIZED = { jsonrpc: '2.0', method: 'notifications/initialized' };
const call = (id: number, name: string, args: Record<string, unknown> = {}): Record<string, unknown> => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
const lines = (...messages: unknown[]): string => messages.map((m) => `${JSON.stringify(m)}\n`).join('');
const parse = (stdout: string): Array<Record<string, unknown>> =>
  stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
const textOf = (m: Record<string, unknown> | undefined): string => ((m?.['result'] as { content?: Array<{ text?: string }> } | undefined)?.content ?? []).map((c) => c.text ?? '').join('');

function connectArgs(files: Files, target = url, ...extra: string[]): string[] {
  return ['connect', target, '--identity', files.key, '--trust', trust, '--expect', SERVER_ID, ...extra];
}

beforeAll(async () => {
  const issuer = writeIssuer(tmp.dir, 'issuer://bridge-test', 'issuer');
  server = writeAgent(tmp.dir, issuer, SERVER_ID, 'gateway');
  alice = writeAgent(tmp.dir, issuer, 'agent://bridge-test/alice', 'alice', { scopes: ['tools:call'] });
  intruder = writeAgent(tmp.dir, issuer, 'agent://other/intruder', 'intruder', { scopes: ['tools:call'] });
  trust = writeTrust(join(tmp.dir, 'trust.json'), issuer);
  ({ gateway, url } = await startGateway(['--identity', server.key, '--trust', trust, '--allow-id', 'agent://bridge-test/*'], [process.execPath, LINE_SERVER]));
}, 60_000);

afterAll(async () => {
  await gateway?.stop();
  killAll();
  tmp.remove();
});

describe('end of stdin: everything sent, every answer awaited', () => {
  it('echo <requests> | pqmcp connect: requests written before the handshake are all answered, exit 0', async () => {
    // stdin is written and closed at once, long before the handshake completes.
    const r = await cli(connectArgs(alice), { input: lines(INIT, INITIALIZED, call(1, 'echo', { text: 'one' }), call(2, 'echo', { text: 'two' })) });
    expect(r.code, r.stderr).toBe(0);
    const out = parse(r.stdout);
    expect(out.map((m) => m['id'])).toEqual([0, 1, 2]);
    expect((out[0]!['result'] as { serverInfo: { name: string } }).serverInfo.name).toBe('line-server');
    expect([textOf(out[1]), textOf(out[2])]).toEqual(['echo: one', 'echo: two']);
    expect(r.stderr).not.toMatch(/ERR_/);
  });

  it('an answer still in flight when stdin ends is delivered before the close, exit 0', async () => {
    const r = await cli(connectArgs(alice), { input: lines(INIT, INITIALIZED, call(1, 'slow', { text: 'late', ms: 1500 })) });
    expect(r.code, r.stderr).toBe(0);
    const answer = parse(r.stdout).find((m) => m['id'] === 1);
    expect(textOf(answer)).toBe('slow: late');
  });

  it('empty stdin: the handshake is still completed and the session closed cleanly, exit 0', async () => {
    const r = await cli(connectArgs(alice), { input: '' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
  });

  it('answers still owed after --drain-timeout get an error each, exit 1 (ERR_DRAIN_TIMEOUT)', async () => {
    const bridge = new CliProcess(connectArgs(alice, url, '--drain-timeout', '1'));
    bridge.write(INIT);
    await bridge.waitForMessage((m) => m['id'] === 0);
    bridge.write(INITIALIZED);
    bridge.write(call(7, 'slow', { text: 'never', ms: 60_000 }));
    bridge.child.stdin!.end();
    expect(await bridge.exited).toBe(1);
    const line = bridge.stderr.trim().split('\n').at(-1)!;
    expect(line).toBe('pqmcp: stdin ended; 1 request(s) still unanswered after 1 s (--drain-timeout) (ERR_DRAIN_TIMEOUT)');
    expect(bridge.messages().filter((m) => m['id'] === 7)).toEqual([{ jsonrpc: '2.0', id: 7, error: { code: -32000, message: line } }]);
  });

  it('a bad --drain-timeout is a usage error', async () => {
    const r = await cli(connectArgs(alice, url, '--drain-timeout', '0'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--drain-timeout must be a number of seconds.*\(ERR_USAGE\)/);
  });
});

describe('a server that closes with a request unanswered', () => {
  let library: PqmcpServer;
  beforeAll(async () => {
    // A library server that answers initialize and closes the session on "close-me".
    library = await listen({ identity: await loadIdentity(server.key), trust: await loadTrustStore(trust), host: '127.0.0.1', port: 0 });
    library.on('session', (transport) => {
      transport.onmessage = (m) => {
        const msg = m as { id?: number; method?: string };
        if (msg.method === 'initialize') void transport.send({ jsonrpc: '2.0', id: msg.id!, result: { protocolVersion: '2025-06-18', capabilities: {}, serverInfo: { name: 'closer', version: '1' } } });
        if (msg.method === 'close-me') void transport.close();
      };
      void transport.start();
    });
  });
  afterAll(async () => {
    await library.close();
  });

  it('is not a clean end: the request gets an error and the bridge exits 1', async () => {
    const r = await cli(connectArgs(alice, library.url), { input: lines(INIT, { jsonrpc: '2.0', id: 1, method: 'close-me' }) });
    expect(r.code).toBe(1);
    const line = r.stderr.trim().split('\n').at(-1)!;
    expect(line).toBe('pqmcp: the server closed the session with 1 request(s) unanswered (ERR_REMOTE_CLOSED)');
    const out = parse(r.stdout);
    expect(out.map((m) => m['id'])).toEqual([0, 1]);
    expect(out[1]).toEqual({ jsonrpc: '2.0', id: 1, error: { code: -32000, message: line } });
  });
});

describe('"connected" only once accepted; the backend per primitive', () => {
  it('an admitted agent: one "connected" line naming the server, suite and each primitive\'s backend', async () => {
    const r = await cli(connectArgs(alice, url, '--backend', 'native'), { input: lines(INIT) });
    expect(r.code, r.stderr).toBe(0);
    const expected = describeBackend(selectBackend('native'));
    const connected = r.stderr.split('\n').filter((l) => l.includes('connected to'));
    expect(connected).toHaveLength(1);
    expect(connected[0]).toMatch(new RegExp(`^pqmcp connect: connected to agent://bridge-test/gateway \\(key [0-9a-f]{16}, issuer issuer://bridge-test\\) at ws://127\\.0\\.0\\.1:\\d+/; PQMCP_\\S+, backend ${expected.replace(/[()]/g, '\\$&')}$`));
    // Node 24.7+ has ML-KEM and ML-DSA in node:crypto; Node 20 has not, and the banner says so.
    const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
    if (major < 24 || (major === 24 && minor < 7)) expect(connected[0]).toContain('ML-KEM: noble, ML-DSA: noble, AEAD: native');
    else expect(connected[0]).toContain('ML-KEM: native, ML-DSA: native');
  });

  it('the "connected" line names the URL without its user info or query (review 16, R16-2: secrets live there; the dial errors already left them out)', async () => {
    const secretUrl = `${url.replace('ws://', 'ws://alice:hunter2@')}?token=s3cret`;
    const r = await cli(connectArgs(alice, secretUrl), { input: lines(INIT) });
    expect(r.code, r.stderr).toBe(0);
    const connected = r.stderr.split('\n').filter((l) => l.includes('connected to'));
    expect(connected).toHaveLength(1);
    expect(connected[0]).toContain(` at ${url}; PQMCP_`);
    expect(r.stderr).not.toMatch(/hunter2|s3cret|token/);
  });

  it('an agent the gateway does not admit: no "connected", the refusal reaches the client, exit 1 (ERR_NOT_ADMITTED)', async () => {
    const r = await cli(connectArgs(intruder), { input: lines(INIT, INITIALIZED, call(1, 'echo', { text: 'x' })) });
    expect(r.code).toBe(1);
    expect(r.stderr).not.toContain('connected to');
    expect(r.stderr.trim().split('\n').at(-1)).toBe('pqmcp: the server did not admit this agent: agent://other/intruder is not an allowed agent id (--allow-id) (ERR_NOT_ADMITTED)');
    const out = parse(r.stdout);
    expect(out[0]).toEqual({
      jsonrpc: '2.0',
      id: 0,
      error: { code: -32001, message: 'pqmcp gateway: not admitted: agent://other/intruder is not an allowed agent id (--allow-id)', data: { pqmcp: 'not-admitted', reason: 'agent://other/intruder is not an allowed agent id (--allow-id)' } },
    });
    // The request queued behind it is not left hanging: answered once, by the gateway's
    // refusal if it read it before closing, else by the bridge with the reason.
    const second = out.filter((m) => m['id'] === 1);
    expect(second).toHaveLength(1);
    const error = second[0]!['error'] as { code: number; message: string };
    if (error.code === -32001) expect(error).toEqual(out[0]!['error']);
    else expect(error).toEqual({ code: -32000, message: r.stderr.trim().split('\n').at(-1) });
  });
});

/**
 * The bridge against a hostile server that holds its Finished and sends it together with
 * `messages` (application records under its keys), after the bridge sent `initialize`.
 */
async function afterFinished(messages: (driver: { attacker: { sendApplication(b: Uint8Array): Uint8Array[] } }) => Uint8Array[]): Promise<CliResult> {
  const cleanup = new Cleanup();
  try {
    const identity = await loadIdentity(server.key);
    const hostile = await HostileServer.start({ backend: selectBackend('native'), identity, trust: await loadTrustStore(trust), bugs: { hold: 'Finished' } }, {}, cleanup);
    const bridge = cli(connectArgs(alice, hostile.url), { input: lines(INIT) });
    await waitFor(() => (hostile.drivers[0]?.attacker.held.length ?? 0) > 0, 20_000, "the hostile server's first flight");
    const driver = hostile.drivers[0]!;
    // The bridge ends its session with close_notify and waits for the server's (closeTimeoutMs,
    // 2 s) before it exits: answer it, as a server does, instead of leaving it to the timer.
    let answered = false;
    driver.ws.on('message', () => {
      if (answered || !driver.attacker.alerts.includes(Alert.closeNotify)) return;
      answered = true;
      void driver.write(driver.attacker.sendAlert(Alert.closeNotify));
    });
    void driver.write([...driver.attacker.release(), ...messages(driver)]);
    return await bridge;
  } finally {
    await cleanup.run();
  }
}

describe('a server that speaks right after its Finished', () => {
  it('an answer in the flight that completes the handshake is taken as the admission, not an internal error (review 16, R16-3)', async () => {
    // A server may send application data once its Finished is out (protocol.md section 1,
    // as TLS 1.3's 0.5-RTT): here an answer to `initialize` rides in the same WebSocket
    // message as the Finished, so the client delivers it in the turn its handshake completes.
    const answer = new TextEncoder().encode(JSON.stringify({ jsonrpc: '2.0', id: 0, result: { protocolVersion: '2025-06-18', capabilities: {}, serverInfo: { name: 'early', version: '1' } } }));
    const r = await afterFinished((driver) => driver.attacker.sendApplication(answer));
    // Before: "pqmcp: transport event handler threw (ERR_INTERNAL)", exit 1 (the banner read
    // the handshake result a microtask before the bridge had it).
    expect(r.stderr).not.toContain('ERR_INTERNAL');
    expect(r.stderr).toMatch(/connected to agent:\/\/bridge-test\/gateway \(key [0-9a-f]{16}, issuer issuer:\/\/bridge-test\) at ws:\/\/127\.0\.0\.1:\d+\/; PQMCP_/);
    expect(r.code, r.stderr).toBe(0);
    expect(parse(r.stdout).map((m) => m['id'])).toEqual([0]);
  });
});

describe('--debug prints what a server named inert too', () => {
  it('a refused server credential whose issuer id carries a bidi override: the stack trace shows it as \\u202e (review 16, R16-4)', async () => {
    const cleanup = new Cleanup();
    try {
      // Anyone on the path can present this credential: it is refused (untrusted issuer), and
      // the refusal's message names the issuer id the credential claims.
      const crypto = selectBackend('native');
      const identity = makeAgent(crypto, makeIssuer(crypto, 'issuer://evil\u202egnp.exe'), 'agent://bridge-test/gateway').identity;
      const hostile = await HostileServer.start({ backend: crypto, identity, trust: await loadTrustStore(trust) }, {}, cleanup);
      const r = await cli([...connectArgs(alice, hostile.url), '--debug'], { input: lines(INIT) });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('ERR_UNTRUSTED_ISSUER');
      expect(r.stderr).toContain('\\u202e');
      // Before: the error line was escaped, the stack trace below it (the same message) was not.
      expect(r.stderr).not.toContain('\u202e');
      expect(r.stderr.split('\n').filter((l) => l.includes('    at ')).length).toBeGreaterThan(0);
    } finally {
      await cleanup.run();
    }
  });
});

describe('a server\'s gateway log line that is not text', () => {
  it('a pqmcp-gateway notifications/message whose data is no string is logged as JSON and forwarded, not an internal error (review 16, R16-5)', async () => {
    // A library server that answers initialize after a log notification whose data cannot be
    // turned into a string by String() (an own toString that is not a function).
    const odd = await listen({ identity: await loadIdentity(server.key), trust: await loadTrustStore(trust), host: '127.0.0.1', port: 0 });
    try {
      odd.on('session', (transport) => {
        transport.onmessage = (m) => {
          const msg = m as { id?: number; method?: string };
          if (msg.method !== 'initialize') return;
          void transport.send({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', logger: 'pqmcp-gateway', data: { toString: 1, said: 'hi\u001b[2J' } } });
          void transport.send({ jsonrpc: '2.0', id: msg.id!, result: { protocolVersion: '2025-06-18', capabilities: {}, serverInfo: { name: 'odd', version: '1' } } });
        };
        void transport.start();
      });
      const r = await cli(connectArgs(alice, odd.url), { input: lines(INIT) });
      // Before: "pqmcp: transport event handler threw (ERR_INTERNAL)", exit 1, and the notification never reached stdout.
      expect(r.stderr).not.toContain('ERR_INTERNAL');
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('pqmcp connect: gateway: {"toString":1,"said":"hi\\u001b[2J"}');
      expect(parse(r.stdout).map((m) => m['method'] ?? m['id'])).toEqual(['notifications/message', 0]);
    } finally {
      await odd.close();
    }
  });
});

describe('a server message nested too deeply to write out', () => {
  // JSON.parse takes any depth; JSON.stringify throws a RangeError a few thousand levels down
  // on Node 20 and 24. Node 26's does not (it writes any depth): there such messages are
  // forwarded as they are, and the bridge (which runs on this test's Node) must do that.
  const deep = (n: number): string => `${'['.repeat(n)}${']'.repeat(n)}`;
  const stringifyThrows = ((): boolean => {
    try {
      JSON.stringify(JSON.parse(deep(20_000)));
      return false;
    } catch {
      return true;
    }
  })();
  const encode = (text: string): Uint8Array => new TextEncoder().encode(text);
  const ANSWER = JSON.stringify({ jsonrpc: '2.0', id: 0, result: { protocolVersion: '2025-06-18', capabilities: {}, serverInfo: { name: 'deep', version: '1' } } });

  it('a notification (a gateway log line too) is dropped with a line on stderr, the session goes on (review 17, R17-4: the handler threw, ERR_INTERNAL, exit 1)', async () => {
    const r = await afterFinished((d) => [
      ...d.attacker.sendApplication(encode(`{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","logger":"pqmcp-gateway","data":${deep(20_000)}}}`)),
      ...d.attacker.sendApplication(encode(`{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","logger":"other","data":${deep(20_000)}}}`)),
      ...d.attacker.sendApplication(encode(ANSWER)),
    ]);
    expect(r.stderr).not.toContain('ERR_INTERNAL');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.split('\n').filter((l) => l === 'pqmcp connect: a message from the server was dropped: nested too deeply to write to stdout')).toHaveLength(stringifyThrows ? 2 : 0);
    expect(parse(r.stdout).map((m) => m['method'] ?? m['id'])).toEqual(stringifyThrows ? [0] : ['notifications/message', 'notifications/message', 0]);
  });

  it('an answer is dropped and the request answered with an error, so the local client does not wait for it', async () => {
    const r = await afterFinished((d) => d.attacker.sendApplication(encode(`{"jsonrpc":"2.0","id":0,"result":{"deep":${deep(20_000)}}}`)));
    expect(r.stderr).not.toContain('ERR_INTERNAL');
    if (stringifyThrows) {
      expect(r.stderr).toContain('pqmcp connect: a message from the server was dropped: nested too deeply to write to stdout; request 0 is answered with an error');
      expect(parse(r.stdout)).toEqual([{ jsonrpc: '2.0', id: 0, error: { code: -32000, message: "pqmcp connect: the server's answer was nested too deeply to forward" } }]);
    } else {
      expect(r.stderr).not.toContain('dropped');
      // Compared as text: a 20,000-deep toEqual would itself run out of stack.
      expect(r.stdout).toBe(`{"jsonrpc":"2.0","id":0,"result":{"deep":${deep(20_000)}}}\n`);
    }
  });
});
