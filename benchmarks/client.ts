/**
 * A measuring process: `node --import tsx benchmarks/client.ts`, started by the runner once
 * per compared variant (lib/variants.ts) and per memory part. It starts its own server
 * process, connects, and then measures on request, so no two variants ever share a
 * process.
 *
 *   setup { suite, variant, context, options }  -> the variant's details (negotiated group, suite, backend)
 *   measure <suite-specific arguments>          -> one sample
 *   teardown                                    -> closes the connection and the server process
 *   memory { context, options }                 -> one memory part (suites/memory.ts), start to end
 */
import { serveRequests } from './lib/proc.js';
import type { SuiteContext } from './lib/context.js';
import type { SetupRequest, VariantSession } from './lib/variants.js';
import type { ChannelVariant } from './lib/channels.js';
import { openHandshakeVariant } from './suites/handshake.js';
import type { HandshakeVariant } from './suites/handshake.js';
import { openMcpVariant } from './suites/mcp.js';
import type { McpVariant } from './suites/mcp.js';
import { runMemory } from './suites/memory.js';
import type { MemoryVariant } from './suites/memory.js';
import { openThroughputVariant } from './suites/throughput.js';

export interface MemoryRequest {
  context: SuiteContext;
  options: { variant: MemoryVariant; part: 'sessions' | 'inflight' };
}

let session: VariantSession | undefined;

function open(req: SetupRequest): Promise<VariantSession> {
  switch (req.suite) {
    case 'handshake':
      return openHandshakeVariant(req.context, req.variant as HandshakeVariant);
    case 'throughput':
      return openThroughputVariant(req.context, req.variant as ChannelVariant);
    case 'mcp':
      return openMcpVariant(req.context, req.variant as McpVariant);
  }
}

serveRequests({
  async setup(req: SetupRequest) {
    if (session) throw new Error('this process already measures a variant');
    session = await open(req);
    return session.details;
  },
  measure(args: unknown) {
    if (!session) throw new Error('setup first');
    return session.measure(args);
  },
  async teardown() {
    await session?.close();
    session = undefined;
    return true;
  },
  memory(req: MemoryRequest) {
    return runMemory(req.context, req.options);
  },
});
