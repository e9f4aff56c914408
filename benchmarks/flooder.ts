/**
 * The flood suite's attacker, in a process of its own (so the flood's own CPU never lands
 * on the process that measures the honest agent). Requests: start (FloodOptions, with the
 * ClientHellos as byte arrays; for the authenticated floods, the bench fixture whose client
 * credential the attacker presents), stop (-> FloodStats).
 */
import { serveRequests } from './lib/proc.js';
import { Flood, type FloodOptions, type FloodStats } from './lib/floods.js';
import { identityOf, trustOf, type PqmcpFixture } from './lib/fixtures.js';
import { selectBackend } from '../src/crypto/select.js';
import { localIdentity } from '../src/transport/options.js';

let flood: Flood | undefined;

serveRequests({
  start(options: Omit<FloodOptions, 'attacker'> & { fixture?: PqmcpFixture }) {
    const { fixture, ...rest } = options;
    const backend = selectBackend('auto');
    const attacker = fixture ? { backend, identity: localIdentity(identityOf(fixture, 'client', backend)), trust: trustOf(fixture) } : undefined;
    flood = new Flood({ ...rest, hellos: rest.hellos.map((h) => new Uint8Array(h)), ...(attacker ? { attacker } : {}) });
    return true;
  },
  async stop(): Promise<FloodStats> {
    const f = flood;
    flood = undefined;
    await f?.stop();
    return f?.stats ?? { opened: 0, closes: {} };
  },
});
