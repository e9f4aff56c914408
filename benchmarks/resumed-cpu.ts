/**
 * CPU per side of a resumed handshake (PSK + fresh X-Wing, no credentials, no signatures),
 * two in-memory Sessions in THIS process (printed, not asserted), and of the client's
 * ClientHello alone (the offer and its binder). Each handshake offers the ticket the
 * previous one received; the server issues tickets and checks them (replay guard, binder,
 * both credentials re-checked), as `serveMcp` with `tickets` does.
 *
 *   npx tsx benchmarks/resumed-cpu.ts [--n 600] [--rounds 10] [--base DIR]
 *
 * --base DIR runs the same against another checkout (`git archive main | tar -x -C DIR`,
 * node_modules linked), interleaved in rounds with the order rotated: an A/B of a change.
 * Medians and lower quartiles of CPU microseconds (process.cpuUsage around each side's calls).
 */
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { rotate } from './lib/stats.js';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : undefined);
const n = Number(opt('n')) || 600;
const rounds = Number(opt('rounds')) || 10;
const here = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const roots = [here, ...(opt('base') ? [opt('base')!] : [])];
const ENDPOINT = 'ws://127.0.0.1/';

const cpu = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

interface Rig {
  name: string;
  once(record: boolean): void;
  client: number[];
  server: number[];
  hello: number[];
}

async function rig(root: string, name: string): Promise<Rig> {
  const load = (path: string): Promise<any> => import(pathToFileURL(`${root}/${path}`).href);
  const [{ Session }, { selectBackend }, { TicketKeys }, { TicketReplayGuard }, fx] = await Promise.all([
    load('src/session/session.ts'),
    load('src/crypto/select.ts'),
    load('src/resumption/ticket-keys.ts'),
    load('src/resumption/replay.ts'),
    load('benchmarks/lib/fixtures.ts'),
  ]);
  const backend = selectBackend('native');
  const fixture = fx.makePqmcpFixture();
  const clientIdentity = fx.identityOf(fixture, 'client', backend);
  const serverIdentity = fx.identityOf(fixture, 'server', backend);
  const trust = fx.trustOf(fixture);
  const tickets = { keys: TicketKeys.generate(backend), replay: new TicketReplayGuard(), endpoint: ENDPOINT };
  let ticket: unknown;
  const r: Rig = {
    name,
    client: [],
    server: [],
    hello: [],
    once(record) {
      // The key share made ahead, as PqmcpClientTransport does (not on the clock).
      const ephemeralKeyPair = backend.xwing.keygen(backend.randomBytes(32));
      const offered = ticket !== undefined;
      const client = Session.client({ backend, identity: clientIdentity, trust, expectedPeerId: fx.SERVER_AGENT_ID, endpoint: ENDPOINT, ephemeralKeyPair, ...(offered ? { resumeTicket: ticket } : {}) });
      const server = Session.server({ backend, identity: serverIdentity, trust, tickets, acceptEndpoints: [ENDPOINT] });
      ticket = undefined;
      let t = cpu();
      let toServer: Uint8Array[] = client.start().send;
      const hello = cpu() - t;
      let clientUs = hello;
      let serverUs = 0;
      for (let guard = 0; guard < 5 && toServer.length > 0; guard++) {
        t = cpu();
        const fromServer = toServer.map((rec) => server.receive(rec));
        serverUs += cpu() - t;
        t = cpu();
        const fromClient = fromServer.flatMap((o: any) => o.send).map((rec: Uint8Array) => client.receive(rec));
        clientUs += cpu() - t;
        for (const o of fromClient) for (const e of o.events) if (e.type === 'ticket') ticket = e.ticket;
        toServer = fromClient.flatMap((o: any) => o.send);
      }
      if (client.state !== 'established' || server.state !== 'established') throw new Error(`${name}: handshake failed`);
      if (offered && !client.result?.resumed) throw new Error(`${name}: the ticket was not accepted`);
      if (ticket === undefined) throw new Error(`${name}: no ticket issued`);
      if (record) {
        r.client.push(clientUs);
        r.server.push(serverUs);
        r.hello.push(hello);
      }
    },
  };
  return r;
}

const rigs = [await rig(here, 'this tree'), ...(roots[1] ? [await rig(roots[1], `base ${roots[1]}`)] : [])];
for (const r of rigs) for (let i = 0; i < 500; i++) r.once(false); // warm: JIT settled
const load0 = loadavg()[0]!;
for (let round = 0; round < rounds; round++) for (const r of rotate(rigs, round)) for (let i = 0; i < Math.ceil(n / rounds); i++) r.once(true);
const quantile = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * q)]!;
const cell = (xs: number[]) => `${quantile(xs, 0.5)} / ${quantile(xs, 0.25)}`;
console.log(`Resumed handshakes, CPU us per side (median / lower quartile), ${rigs[0]!.client.length} each, Node ${process.version}, load average ${load0.toFixed(2)} -> ${loadavg()[0]!.toFixed(2)}`);
for (const r of rigs) console.log(`${r.name.padEnd(24)} client ${cell(r.client).padEnd(12)} server ${cell(r.server).padEnd(12)} ClientHello ${cell(r.hello)}`);
if (rigs[1]) {
  const ratio = (a: number[], b: number[]) => (quantile(a, 0.5) / quantile(b, 0.5)).toFixed(3);
  console.log(`this tree / base: client ${ratio(rigs[0]!.client, rigs[1].client)}x, server ${ratio(rigs[0]!.server, rigs[1].server)}x`);
}
