/**
 * docs/usage.md: authorization in Cedar and quotas in front of the notes server, with no
 * change to it. Every agent our issuer vouches for may read notes; only agents whose
 * credential grants notes:write may add one; each agent gets 60 calls a minute and at
 * most 2 sessions at once. Run usage-keys.ts first.
 *
 *   node --import tsx examples/usage-policy.ts [keys-dir]
 */
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { PqmcpClientTransport, loadIdentity, loadTrustStore, selectBackend, serveMcp } from 'pqmcp';
import { createQuotas, loadPolicy } from 'pqmcp/policy';
import { createNotesServer } from './usage-authorize.js';

const dir = process.argv[2] ?? 'keys';
const backend = selectBackend();
const trust = await loadTrustStore(join(dir, 'trust.json'));

// Validated against pqmcp's Cedar schema here; a policy that does not validate throws.
// loadPolicy({ file: 'notes.cedar' }) reads a file instead and reloads it when it changes.
const policy = await loadPolicy({
  text: `
    @id("readers")
    permit(principal in Issuer::"issuer://example.com/ca", action == Action::"tools/call", resource)
      when { ["whoami", "list_notes"].contains(resource.name) };

    @id("writers")
    permit(principal, action == Action::"tools/call", resource == Tool::"add_note")
      when { principal.scopes.contains("notes:write") };
  `,
});
const quotas = createQuotas({ intervalMs: 60_000, perAgent: { calls: 60, sessions: 2 } });

const server = await serveMcp(
  { identity: await loadIdentity(join(dir, 'tools.key.json'), { backend }), trust, backend, port: 0, policy, quotas },
  () => createNotesServer(), // unchanged: the policy runs in the transport, before the server
);

for (const name of ['planner', 'intern']) {
  const client = new Client({ name, version: '1.0.0' });
  const identity = await loadIdentity(join(dir, `${name}.key.json`), { backend });
  await client.connect(new PqmcpClientTransport(server.url, { identity, trust, backend, expectedServerId: 'agent://example.com/tools' }));
  console.log(`${name} sees: ${(await client.listTools()).tools.map((t) => t.name).join(', ')}`);
  try {
    await client.callTool({ name: 'add_note', arguments: { text: `from ${name}` } });
    console.log(`${name} add_note: saved`);
  } catch (error) {
    console.log(`${name} add_note: ${(error as Error).message}`); // the refusal never reached the server
  }
  await client.close();
}
await server.close();
