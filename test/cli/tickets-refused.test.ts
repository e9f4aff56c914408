/**
 * Refused resumption tickets on a real gateway's /metrics: `pqmcp serve --ticket-keys
 * --metrics` counts each ticket it refuses (the client then makes a full handshake) in
 * pqmcp_tickets_refused_total, labelled with the error code only: a ticket sealed under
 * another gateway's key file (ERR_TICKET_UNKNOWN_KEY), a ticket offered a second time
 * (ERR_TICKET_REPLAYED), and a ticket issued before the gateway's credential was renewed
 * (`pqmcp credential issue --agent`, SIGHUP: ERR_TICKET_MISMATCH). SDK clients over
 * PqmcpClientTransport offer the tickets; the counts come from scraping /metrics.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { MemoryTicketStore } from '../../src/resumption/index.js';
import type { ClientTicket } from '../../src/resumption/index.js';
import { PqmcpClientTransport, ticketStoreKey } from '../../src/transport/index.js';
import { fixtureCrypto, makeAgent, trustFor } from '../helpers/identities.js';
import type { Issuer } from '../helpers/identities.js';
import { CliProcess, LINE_SERVER, cli, cliInProcess, killAll, parsePrometheus, startGateway, tempDir, writeAgent, writeIssuer, writeTrust } from './helpers.js';
import type { Files } from './helpers.js';

const SERVER_ID = 'agent://refused-test/gateway';
const tmp = tempDir('tickets-refused');
let issuer: Issuer & { keyFile: string };
let server: Files;
let trust: string;
let gateway: CliProcess;
let url: string;
let metricsUrl: string;
let other: CliProcess;
let otherUrl: string;

beforeAll(async () => {
  issuer = writeIssuer(tmp.dir, 'issuer://refused-test', 'issuer');
  server = writeAgent(tmp.dir, issuer, SERVER_ID, 'gateway', { usage: 'server' });
  trust = writeTrust(join(tmp.dir, 'trust.json'), issuer);
  const keys = join(tmp.dir, 'keys.json');
  const otherKeys = join(tmp.dir, 'other-keys.json');
  expect((await cliInProcess(['ticket-keys', 'create', keys])).code).toBe(0);
  expect((await cliInProcess(['ticket-keys', 'create', otherKeys])).code).toBe(0);
  ({ gateway, url } = await startGateway(['--identity', server.key, '--trust', trust, '--ticket-keys', keys, '--json', '--metrics', '127.0.0.1:0'], [process.execPath, LINE_SERVER]));
  metricsUrl = JSON.parse((await gateway.waitForStderr(/\{[^\n]*"event":"metrics"[^\n]*\}/))[0]).url as string;
  // The same identity with another ticket key file: its tickets do not open on the first.
  ({ gateway: other, url: otherUrl } = await startGateway(['--identity', server.key, '--trust', trust, '--ticket-keys', otherKeys], [process.execPath, LINE_SERVER]));
});

afterAll(() => {
  killAll();
  tmp.remove();
});

let client: ReturnType<typeof makeAgent>['identity'] | undefined;

/**
 * One session to `to`, offering `ticket` (if any) from a store of its own; returns whether it
 * resumed and the fresh ticket the gateway sent.
 */
async function session(to: string, ticket?: ClientTicket): Promise<{ resumed: boolean; fresh: ClientTicket }> {
  const tickets = new MemoryTicketStore();
  const key = ticketStoreKey(new URL(to), SERVER_ID);
  if (ticket) tickets.put(key, ticket);
  client ??= makeAgent(fixtureCrypto(), issuer, 'agent://refused-test/client', { scopes: ['tools:call'] }).identity;
  const transport = new PqmcpClientTransport(to, { identity: client, trust: trustFor(issuer), expectedServerId: SERVER_ID, tickets });
  const mcp = new Client({ name: 'tickets-refused-test', version: '1.0.0' });
  await mcp.connect(transport);
  const answer = ((await mcp.callTool({ name: 'echo', arguments: { text: 'hi' } })) as CallToolResult).content;
  expect(answer).toEqual([{ type: 'text', text: 'echo: hi' }]);
  // A ticket is sent right after the handshake: the answer came after it.
  const fresh = tickets.take(key, Date.now());
  expect(fresh).toBeDefined();
  const resumed = transport.resumed;
  await mcp.close();
  return { resumed, fresh: fresh! };
}

const scrape = async (): Promise<Map<string, number>> => parsePrometheus(await (await fetch(`${metricsUrl}/metrics`)).text());

/** pqmcp_tickets_refused_total's series (name{labels} -> count), once there are `total` refusals (the server counts after the client is through). */
async function refused(total: number): Promise<Record<string, number>> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const series = Object.fromEntries([...(await scrape())].filter(([k]) => k.startsWith('pqmcp_tickets_refused_total')));
    if (Object.values(series).reduce((a, b) => a + b, 0) >= total || Date.now() > deadline) return series;
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('pqmcp serve --ticket-keys --metrics: refused tickets', () => {
  it("counts a ticket of another key file, a replayed ticket and one from before the gateway's credential was renewed, each under its error code", async () => {
    // A ticket sealed by the other gateway (another key file): ERR_TICKET_UNKNOWN_KEY.
    const foreign = await session(otherUrl);
    const first = await session(url, foreign.fresh);
    expect(first.resumed).toBe(false);
    expect(await refused(1)).toEqual({ 'pqmcp_tickets_refused_total{reason="ERR_TICKET_UNKNOWN_KEY"}': 1 });

    // The gateway's own ticket resumes once; a copy of it (as from a copied ticket file: a
    // client never offers a ticket twice, it wipes the PSK) is a replay: ERR_TICKET_REPLAYED.
    const copy = structuredClone(first.fresh);
    const resumed = await session(url, first.fresh);
    expect(resumed.resumed).toBe(true);
    const replayed = await session(url, copy);
    expect(replayed.resumed).toBe(false);
    expect(await refused(2)).toEqual({
      'pqmcp_tickets_refused_total{reason="ERR_TICKET_UNKNOWN_KEY"}': 1,
      'pqmcp_tickets_refused_total{reason="ERR_TICKET_REPLAYED"}': 1,
    });

    // The issuer renews the gateway's credential, SIGHUP: a ticket naming the old one is
    // ERR_TICKET_MISMATCH ("server credential").
    const issued = await cli(['credential', 'issue', '--issuer', issuer.keyFile, '--agent', server.cred, '--usage', 'server', '--valid-for', '30d', '--force']);
    expect(issued.code, issued.stderr).toBe(0);
    gateway.child.kill('SIGHUP');
    await gateway.waitForStderr(/"event":"credential-renewed"/);
    const afterRenewal = await session(url, replayed.fresh);
    expect(afterRenewal.resumed).toBe(false);
    const counted = await refused(3);
    expect(counted).toEqual({
      'pqmcp_tickets_refused_total{reason="ERR_TICKET_UNKNOWN_KEY"}': 1,
      'pqmcp_tickets_refused_total{reason="ERR_TICKET_REPLAYED"}': 1,
      'pqmcp_tickets_refused_total{reason="ERR_TICKET_MISMATCH"}': 1,
    });
    // Four sessions on this gateway: each refusal followed by a full handshake that succeeded, and the one resumption.
    const metrics = await scrape();
    expect(metrics.get('pqmcp_handshakes_total{outcome="ok",reason="ok"}')).toBe(4);
    expect(metrics.get('pqmcp_handshakes_resumed_total{role="server"}')).toBe(1);
    // The gateway's log has no line per refusal (the metric is where they are counted).
    expect(gateway.stderr).not.toMatch(/ERR_TICKET_/);
  });
});
