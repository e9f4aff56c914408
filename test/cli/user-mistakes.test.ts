/**
 * What a first-time user of the CLI gets wrong, and what pqmcp must say back (found by
 * following docs/cli.md and README.md verbatim, session 8): each case is one mistake, run
 * through the real command (in this process, through run.ts, where nothing listens; as a
 * real process where it does), and the answer must be the right code and exit status with a
 * message that names the mistake and what to do.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/index.js';
import { parseHostPort } from '../../src/cli/args.js';
import { run as runInProcess } from '../../src/cli/run.js';
import { FileFormatError } from '../../src/errors.js';
import { loadIdentity } from '../../src/identity/files.js';
import { CliProcess, EVERYTHING, LINE_SERVER, ROOT, cli, killAll, startGateway, tempDir, writeAgent, writeIssuer, writeTrust } from './helpers.js';
import type { CliResult } from './helpers.js';

const { dir, remove } = tempDir('mistakes');
const f = (name: string): string => join(dir, name);
const acme = writeIssuer(dir, 'issuer://acme', 'acme');
const tools = writeAgent(dir, acme, 'agent://acme/tools', 'tools', { usage: 'server' });
const ada = writeAgent(dir, acme, 'agent://acme/ada', 'ada', { usage: 'client', scopes: ['tools:call'] });
const trust = writeTrust(f('trust.json'), acme);

afterAll(() => {
  killAll();
  remove();
});

async function pqmcp(args: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await runInProcess(args, { out: (t) => void (stdout += `${t}\n`), err: (t) => void (stderr += `${t}\n`) });
  return { code, stdout, stderr };
}

function freePort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const p = (probe.address() as { port: number }).port;
      probe.close(() => resolve(p));
    });
  });
}

const serveArgs = (...more: string[]): string[] => ['serve', ...more, '--', process.execPath, EVERYTHING, 'stdio'];

describe('--listen', () => {
  it('a bare port is that port on 127.0.0.1, not host "744" and port 3', () => {
    expect(parseHostPort('7443', '--listen')).toEqual({ host: '127.0.0.1', port: 7443 });
    expect(parseHostPort(':7443', '--listen')).toEqual({ host: '127.0.0.1', port: 7443 });
    expect(parseHostPort('0.0.0.0:7443', '--listen')).toEqual({ host: '0.0.0.0', port: 7443 });
    expect(parseHostPort('[::1]:7443', '--listen')).toEqual({ host: '::1', port: 7443 });
    expect(() => parseHostPort('[::1]7443', '--listen')).toThrow(/must be host:port/);
    expect(() => parseHostPort('localhost', '--listen')).toThrow(/must be host:port/);
  });

  it('serve --listen <port> listens there, and a fresh --audit directory starts a new chain (not "after seq -1")', async () => {
    const auditDir = f('audit-fresh');
    // A port found free can be taken by a parallel test before the gateway binds it: try again then.
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      const bare = new CliProcess(serveArgs('--identity', tools.key, '--trust', trust, '--audit', auditDir, '--listen', String(port)));
      const started = await bare.waitForStderr(new RegExp(`listening on ws://127\\.0\\.0\\.1:${port}/ `), 45_000).then(
        () => true,
        (err: unknown) => {
          if (attempt < 3 && bare.stderr.includes('address already in use')) return false;
          throw err;
        },
      );
      if (!started) continue;
      expect(await bare.stop('SIGTERM', 30_000), bare.stderr).toBe(0);
      expect(bare.stderr).toContain(`audit: writing to ${auditDir}, a new chain`);
      expect(bare.stderr).not.toContain('seq -1');
      break;
    }
  });
});

describe('two gateways on one --audit directory (review 15, R15-6)', () => {
  it('the second says another writer holds it, and exits 1 before it listens', async () => {
    const auditDir = f('audit-shared');
    const first = await AuditLog.open(auditDir);
    try {
      const r = await cli(serveArgs('--identity', tools.key, '--trust', trust, '--audit', auditDir, '--listen', '127.0.0.1:0'));
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^pqmcp: cannot write to the audit directory: ${auditDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: another writer holds this audit directory \\(lock .*audit\\.lock, pid ${process.pid} on .*\\); give each process its own directory, or remove the lock if no pqmcp writes there \\(ERR_AUDIT_LOCKED\\)\n$`));
    } finally {
      await first.close();
    }
  });
});

describe('a port in use', () => {
  it('--metrics on a taken port says so and what to do, naming the flag', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as { port: number }).port;
    try {
      const r = await cli(serveArgs('--identity', tools.key, '--trust', trust, '--listen', '127.0.0.1:0', '--metrics', `127.0.0.1:${port}`));
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`pqmcp: cannot listen on 127.0.0.1:${port} for --metrics: address already in use (choose another --metrics port) (ERR_LISTEN)\n`);
    } finally {
      await new Promise<void>((r) => taken.close(() => r()));
    }
  });
});

describe('a mistyped flag', () => {
  it('is named, with the nearest flag the command knows when there is one', async () => {
    const cases: Array<[string[], string]> = [
      [['connect', 'ws://127.0.0.1:9/', '--identiy', ada.key], 'connect: unknown option --identiy (did you mean --identity?) (see pqmcp connect --help)'],
      [['serve', '--lsten', '127.0.0.1:0', '--', 'x'], 'serve: unknown option --lsten (did you mean --listen?) (see pqmcp serve --help)'],
      [['serve', '--max-session', '3', '--', 'x'], 'serve: unknown option --max-session (did you mean --max-sessions?) (see pqmcp serve --help)'],
      [['serve', '--max', '3', '--', 'x'], 'serve: unknown option --max (see pqmcp serve --help)'],
      [['trust', 'add-issuer', trust, acme.pubFile, '--constraint', 'agent://acme/'], 'unknown option --constraint (did you mean --constrain?)'],
    ];
    for (const [args, text] of cases) {
      const r = await pqmcp(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${text}`);
      expect(r.stderr.trim()).toMatch(/\(ERR_USAGE\)$/);
    }
  });
});

describe('a URL that does not parse', () => {
  it('is named without its user info or query (a desktop host logs stderr; review 17, R17-8)', async () => {
    const cases: Array<[string, string]> = [
      ['ws://alice:hunter2@127.0.0.1:99999/mcp?token=s3cret', 'ws://***@127.0.0.1:99999/mcp'],
      ['ws://127.0.0.1:99999/mcp#frag', 'ws://127.0.0.1:99999/mcp'],
      ['not a url', 'not a url'],
    ];
    for (const [url, shown] of cases) {
      const r = await pqmcp(['connect', url, '--identity', ada.key, '--trust', trust, '--any-server']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`connect: ${JSON.stringify(shown)} is not a URL (user info and query not shown); expected ws://host:port/ or wss://...`);
      expect(r.stderr).not.toMatch(/hunter2|s3cret/);
    }
  });
});

describe('an id that is not a URI', () => {
  it("is refused with an example of the right kind: an issuer's for issuer create, an agent's for agent create", async () => {
    const issuer = await pqmcp(['issuer', 'create', '--id', 'acme', '--out', f('x.key.json')]);
    expect(issuer.code).toBe(2);
    expect(issuer.stderr).toContain('--id must be a URI with a scheme and no whitespace (e.g. issuer://acme) (ERR_USAGE)');
    const agentId = await pqmcp(['agent', 'create', '--id', 'planner', '--out', f('y.key.json')]);
    expect(agentId.code).toBe(2);
    expect(agentId.stderr).toContain('--id must be a URI with a scheme and no whitespace (e.g. agent://acme/planner) (ERR_USAGE)');
  });
});

describe('edge flags name the flag and its unit', () => {
  it('--first-flight-timeout 2s: the timeouts are milliseconds, and the value given is quoted', async () => {
    const r = await pqmcp(serveArgs('--identity', tools.key, '--trust', trust, '--first-flight-timeout', '2s'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--first-flight-timeout must be an integer >= 1 (milliseconds, e.g. 2000); got "2s" (ERR_USAGE)');
    const h = await pqmcp(serveArgs('--identity', tools.key, '--trust', trust, '--handshake-timeout', '10s'));
    expect(h.stderr).toContain('--handshake-timeout must be an integer >= 1 (milliseconds, e.g. 10000); got "10s" (ERR_USAGE)');
  });

  it('a bad --trusted-proxy is named as the flag, not as the library option', async () => {
    const r = await pqmcp(serveArgs('--identity', tools.key, '--trust', trust, '--trusted-proxy', '10.0.0.0/33'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('pqmcp: --trusted-proxy: bad prefix length in "10.0.0.0/33" (ERR_USAGE)');
  });
});

describe('SIGTERM with a session open', () => {
  it("the client is told the gateway is shutting down (was: only 'the server closed the session')", async () => {
    const { gateway, url } = await startGateway(['--identity', tools.key, '--trust', trust], [process.execPath, LINE_SERVER]);
    const bridge = new CliProcess(['connect', url, '--identity', ada.key, '--trust', trust, '--expect', 'agent://acme/tools']);
    bridge.write({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    await bridge.waitForMessage((m) => m['id'] === 0);
    expect(await gateway.stop('SIGTERM', 30_000), gateway.stderr).toBe(0);
    await bridge.exited;
    expect(bridge.stderr).toContain('pqmcp connect: gateway: shutting down; this session is closed');
    expect(bridge.messages()).toContainEqual({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'warning', logger: 'pqmcp-gateway', data: 'pqmcp gateway: shutting down; this session is closed' } });
  });
});

describe('the gateway dies with a session open', () => {
  it('the bridge says the server went away, to the client and on stderr (was only ERR_TRUNCATED jargon)', async () => {
    const { gateway, url } = await startGateway(['--identity', tools.key, '--trust', trust], [process.execPath, LINE_SERVER]);
    const bridge = new CliProcess(['connect', url, '--identity', ada.key, '--trust', trust, '--expect', 'agent://acme/tools']);
    bridge.write({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    await bridge.waitForMessage((m) => m['id'] === 0);
    bridge.write({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'slow', arguments: { text: 'x', ms: 30_000 } } });
    await gateway.waitForStderr(/session \S+ started/);
    gateway.child.kill('SIGKILL');
    expect(await bridge.exited).toBe(1);
    const text = 'connection ended without an authenticated close: the server went away (it stopped without closing the session, or the network cut the connection); requests in flight are lost: start the bridge again (ERR_TRUNCATED)';
    expect(bridge.stderr.trim().split('\n').at(-1)).toBe(`pqmcp: ${text}`);
    expect(await bridge.waitForMessage((m) => m['id'] === 1)).toMatchObject({ error: { code: -32000, message: `pqmcp: ${text}` } });
  });
});

describe('SIGHUP with a broken trust file', () => {
  it('says the previous trust stays in force, and it does', async () => {
    const live = f('live-trust.json');
    writeTrust(live, acme);
    const { gateway, url } = await startGateway(['--identity', tools.key, '--trust', live], [process.execPath, LINE_SERVER]);
    writeFileSync(live, '{broken');
    gateway.child.kill('SIGHUP');
    await gateway.waitForStderr(new RegExp(`SIGHUP: trust not reloaded, the previous trust stays in force: ${live.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid JSON \\(ERR_FILE_FORMAT\\)`));
    const bridge = new CliProcess(['connect', url, '--identity', ada.key, '--trust', trust, '--expect', 'agent://acme/tools']);
    bridge.write({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    expect(await bridge.waitForMessage((m) => m['id'] === 0)).toHaveProperty('result');
    bridge.child.stdin!.end();
    expect(await bridge.exited).toBe(0);
    expect(await gateway.stop('SIGTERM', 30_000), gateway.stderr).toBe(0);
  });
});

describe('a signal as soon as the gateway says it is listening', () => {
  // The 'listening' line was written before the SIGHUP/SIGTERM/SIGINT handlers were
  // installed: a signal sent by whoever read the line (a test, a supervisor) could arrive
  // first and kill the gateway by the default action. On a loaded machine 'SIGHUP with a
  // broken trust file' waited 20 s for a reload line from a gateway SIGHUP had killed.
  const AT_LISTENING = join(ROOT, 'test/cli/fixtures/signal-at-listening.mjs');
  const early = (signal: string): Promise<{ gateway: CliProcess; url: string }> =>
    startGateway(['--identity', tools.key, '--trust', trust], [process.execPath, LINE_SERVER], { NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --import ${pathToFileURL(AT_LISTENING).href}`, PQMCP_TEST_SIGNAL_AT_LISTENING: signal });

  it('SIGHUP sent from inside the write of the listening line reloads the trust; the gateway lives on', async () => {
    const { gateway } = await early('SIGHUP');
    await gateway.waitForStderr(/SIGHUP: reloaded the trust file and 0 revocation list\(s\); closing 0 session\(s\)/);
    expect(gateway.child.signalCode).toBeNull();
    expect(await gateway.stop('SIGTERM', 30_000), gateway.stderr).toBe(0);
  });

  it('SIGTERM sent the same way drains and exits 0', async () => {
    const { gateway } = await early('SIGTERM');
    expect(await gateway.exited, gateway.stderr).toBe(0);
    expect(gateway.stderr).toContain('SIGTERM: draining');
  });
});

describe('the wrong file in the wrong place', () => {
  it('serve --identity NAME.pub.json or NAME.cred.json: says it is not a private key (not "no credential")', async () => {
    for (const [file, kind] of [
      [tools.pub, 'a public key'],
      [tools.cred, 'a credential'],
    ] as const) {
      const r = await pqmcp(serveArgs('--identity', file, '--trust', trust));
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${file}: not a private key file (it is ${kind}); give the private key file (NAME.key.json) (ERR_FILE_FORMAT)`);
      expect(r.stderr).not.toContain('no credential');
    }
  });

  it('the library loader too: a public key given as the key is a FileFormatError, checked before the credential', async () => {
    const error = await loadIdentity(tools.pub).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FileFormatError);
    expect((error as Error).message).toContain('not a private key file (it is a public key)');
  });

  it("serve --identity <issuer key>: names the issuer's key (not only that NAME.cred.json is missing)", async () => {
    const r = await pqmcp(serveArgs('--identity', acme.keyFile, '--trust', trust));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${acme.keyFile}: this is the private key of issuer issuer://acme, which signs credentials; an identity is an agent's key (pqmcp agent create)`);
    expect(r.stderr).toContain('(ERR_FILE_FORMAT)');
  });

  it("--trust <issuer .pub.json>: says how to make a trust file of it", async () => {
    for (const args of [serveArgs('--identity', tools.key, '--trust', acme.pubFile), ['connect', 'ws://127.0.0.1:9/', '--identity', ada.key, '--trust', acme.pubFile, '--expect', 'agent://acme/tools']]) {
      const r = await pqmcp(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${acme.pubFile}: not a trust file (it is a public key); a trust file lists the issuers you trust: pqmcp trust add-issuer trust.json ${acme.pubFile} (ERR_FILE_FORMAT)`);
    }
  });

  it('connect --manifest <not a manifest>: says it is not one (was: "unknown field \\"kind\\"")', async () => {
    const r = await pqmcp(['connect', 'ws://127.0.0.1:9/', '--identity', ada.key, '--trust', trust, '--expect', 'agent://acme/tools', '--pins', f('pins.json'), '--manifest', tools.pub]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${tools.pub}: not a tool manifest (its type is "pqmcp-public-key"; a manifest's is pqmcp-tool-manifest: pqmcp manifest capture)`);
  });

  it('trust add-issuer / pin with the two files swapped: says the trust file comes first, and changes neither file', async () => {
    const { readFileSync } = await import('node:fs');
    const before = [readFileSync(trust), readFileSync(acme.pubFile), readFileSync(ada.key)];
    const add = await pqmcp(['trust', 'add-issuer', acme.pubFile, trust]);
    expect(add.code).toBe(2);
    expect(add.stderr).toContain(`${trust}: expected a public key, private key or credential file (it is a trust file): the trust file comes first: pqmcp trust add-issuer <trust file> <issuer .pub.json> (ERR_FILE_FORMAT)`);
    const pin = await pqmcp(['trust', 'pin', ada.key, trust]);
    expect(pin.code).toBe(2);
    expect(pin.stderr).toContain('the trust file comes first: pqmcp trust pin <trust file>');
    expect([readFileSync(trust), readFileSync(acme.pubFile), readFileSync(ada.key)].every((b, i) => b.equals(before[i]!))).toBe(true);
  });

  it('serve --ticket-keys <missing file>: says how to create one', async () => {
    const r = await pqmcp(serveArgs('--identity', tools.key, '--trust', trust, '--ticket-keys', f('tk.json')));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${f('tk.json')}: no such file (create one: pqmcp ticket-keys create ${f('tk.json')}) (ERR_FILE_NOT_FOUND)`);
  });
});

describe('connect --tickets <a file that is not a ticket store>', () => {
  it('is refused and left untouched (was: replaced by an empty store, a trust file or private key lost)', async () => {
    const { readFileSync, statSync } = await import('node:fs');
    writeFileSync(f('notes.txt'), 'my notes\n', { mode: 0o644 });
    writeFileSync(f('package.json'), '{"name":"x","version":"1.0.0"}\n', { mode: 0o600 });
    for (const [file, what] of [
      [trust, 'a trust file'],
      [ada.key, 'a private key'],
      [ada.cred, 'a credential'],
      [f('notes.txt'), 'not JSON'],
      [f('package.json'), 'another JSON document'],
    ] as const) {
      const before = readFileSync(file);
      const mode = statSync(file).mode;
      const r = await pqmcp(['connect', 'ws://127.0.0.1:9/', '--identity', ada.key, '--trust', trust, '--expect', 'agent://acme/tools', '--tickets', file]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`${file}: not a tickets file (it is ${what}); --tickets needs a file of its own (created if missing): this one is left as it is (ERR_FILE_FORMAT)`);
      expect(readFileSync(file).equals(before)).toBe(true);
      expect(statSync(file).mode).toBe(mode);
    }
  });
});

describe('credential issue', () => {
  it('a window that has already ended is issued as asked, with a warning on stderr (stdout stays JSON)', async () => {
    const r = await pqmcp(['credential', 'issue', '--issuer', acme.keyFile, '--agent', ada.pub, '--not-before', '2020-01-01', '--valid-for', '1d', '--out', f('old.cred.json'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ file: f('old.cred.json') });
    expect(r.stderr).toBe(`pqmcp credential issue: warning: ${f('old.cred.json')} expired at 2020-01-02T00:00:00.000Z, before it was issued: every peer will refuse it (ERR_CREDENTIAL_EXPIRED)\n`);
    const fresh = await pqmcp(['credential', 'issue', '--issuer', acme.keyFile, '--agent', ada.pub, '--valid-for', '1d', '--out', f('fresh.cred.json')]);
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(fresh.stderr).toBe('');
  });
});

describe('--help of every subcommand is help, whatever the verb requires', () => {
  it.each([['manifest', 'capture'], ['pins', 'list'], ['pins', 'approve'], ['pins', 'forget'], ['policy', 'schema'], ['ticket-keys', 'show']])('pqmcp %s %s --help', async (group, verb) => {
    for (const h of ['--help', '-h']) {
      const r = await pqmcp([group, verb, h]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(new RegExp(`^usage: pqmcp ${group}`));
    }
  });
});

describe('audit verify|report on a wrong path', () => {
  it('a missing path is bad input (exit 2), not a tamper verdict (exit 1)', async () => {
    for (const verb of ['verify', 'report']) {
      const r = await pqmcp(['audit', verb, f('no-such-dir')]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${f('no-such-dir')}: no such file or directory (ERR_FILE_NOT_FOUND)`);
    }
  });

  it('a directory with no audit file is an error, never "ok: 0 events"', async () => {
    mkdirSync(f('not-audit'));
    writeFileSync(f('not-audit/notes.txt'), 'hello\n');
    for (const verb of ['verify', 'report']) {
      const r = await pqmcp(['audit', verb, f('not-audit')]);
      expect(r.code).toBe(2);
      expect(r.stdout).not.toContain('ok:');
      expect(r.stderr).toContain(`${f('not-audit')}: no audit files here (audit-<time>-<seq>.jsonl, written by pqmcp serve --audit <dir>) (ERR_FILE_NOT_FOUND)`);
    }
  });
});

describe('policy explain', () => {
  const policy = f('p.cedar');
  writeFileSync(policy, '@id("echo")\npermit(principal, action == Action::"tools/call", resource) when { resource.name == "echo" };\n');

  it('a method decided on a target needs the target (not a decision on the empty name)', async () => {
    const r = await pqmcp(['policy', 'explain', policy, '--agent', ada.cred, '--method', 'tools/call']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('policy explain: --method tools/call needs --tool <name> (ERR_USAGE)');
    const c = await pqmcp(['policy', 'explain', policy, '--agent', ada.cred, '--method', 'completion/complete']);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain('needs --prompt <name> or --resource <uri>');
    const ok = await pqmcp(['policy', 'explain', policy, '--agent', ada.cred, '--method', 'tools/call', '--tool', 'echo']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('permitted by echo');
  }, 30_000);

  it('methods the gateway never decides are explained as passed, as the gateway does (not "deny")', async () => {
    const list = await pqmcp(['policy', 'explain', policy, '--agent', ada.cred, '--method', 'tools/list']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain('decision: allow');
    expect(list.stdout).toContain('removes from its result each item this agent may not use (explain one: --method tools/call --tool <name>)');
    const ping = await pqmcp(['policy', 'explain', policy, '--agent', ada.cred, '--method', 'ping', '--json']);
    expect(ping.code, ping.stderr).toBe(0);
    expect(JSON.parse(ping.stdout)).toMatchObject({ decision: 'allow', action: 'ping', policies: [] });
  }, 30_000);
});
