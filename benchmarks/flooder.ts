/**
 * The flood suite's attacker, in a process of its own (so the flood's own CPU never lands
 * on the process that measures the honest agent). Requests: start (FloodOptions, with the
 * ClientHellos as byte arrays), stop (-> FloodStats).
 */
import { serveRequests } from './lib/proc.js';
import { Flood, type FloodOptions, type FloodStats } from './lib/floods.js';

let flood: Flood | undefined;

serveRequests({
  start(options: FloodOptions) {
    flood = new Flood({ ...options, hellos: options.hellos.map((h) => new Uint8Array(h)) });
    return true;
  },
  async stop(): Promise<FloodStats> {
    const f = flood;
    flood = undefined;
    await f?.stop();
    return f?.stats ?? { opened: 0, closes: {} };
  },
});
