/**
 * docs/usage.md: make an issuer, a server agent and two client agents, and write the files
 * each side loads later, in the pqmcp CLI's formats: <name>.key.json (private key, mode
 * 0600), <name>.cred.json (its credential) and trust.json. The CLI makes the same files
 * from the shell (pqmcp agent create, pqmcp credential issue, pqmcp trust add-issuer).
 *
 *   node --import tsx examples/usage-keys.ts [dir]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  TrustStore,
  createIssuer,
  encodeCredentialFile,
  encodePrivateKeyFile,
  generateIdentitySeed,
  identityFromSeed,
  issueCredential,
  selectBackend,
  type CredentialUsage,
} from 'pqmcp';

const dir = process.argv[2] ?? 'keys';
const backend = selectBackend();
// The issuer's key signs credentials. Here it lives only in memory; keep a real one offline.
const issuer = createIssuer(backend, { id: 'issuer://example.com/ca' });

// usage: what each credential lets its agent be. The tools server's credential cannot be
// used to dial in as a client, and the clients' cannot impersonate the server.
const agents: Record<string, { agentId: string; usage: CredentialUsage; scopes: string[] }> = {
  tools: { agentId: 'agent://example.com/tools', usage: 'server', scopes: ['mcp:serve'] },
  planner: { agentId: 'agent://example.com/planner', usage: 'client', scopes: ['notes:read', 'notes:write'] },
  intern: { agentId: 'agent://example.com/intern', usage: 'client', scopes: ['notes:read'] },
};

mkdirSync(dir, { recursive: true, mode: 0o700 });
for (const [name, { agentId, usage, scopes }] of Object.entries(agents)) {
  const seed = generateIdentitySeed(backend); // 64 bytes: the agent's private key
  const { publicKey } = identityFromSeed(backend, seed);
  const credential = issueCredential(backend, issuer, { agentId, publicKey, usage, scopes, validForSeconds: 24 * 3600 });
  const keyFile = join(dir, `${name}.key.json`);
  // Mode 0600: loadIdentity refuses a private key file that others can read. 'wx': never overwrite.
  writeFileSync(keyFile, JSON.stringify(encodePrivateKeyFile({ kind: 'agent', id: agentId, seed })), { mode: 0o600, flag: 'wx' });
  writeFileSync(join(dir, `${name}.cred.json`), JSON.stringify(encodeCredentialFile(credential.encoded)), { flag: 'wx' });
  seed.fill(0);
  console.log(`${keyFile}: ${agentId} [${scopes.join(', ')}]`);
}

// Public: whoever should accept agents this issuer vouches for gets its id and public key.
const trust = new TrustStore({ issuers: [{ id: issuer.id, publicKey: issuer.publicKey }] });
writeFileSync(join(dir, 'trust.json'), JSON.stringify(trust, null, 2));
console.log(`${join(dir, 'trust.json')}: trusts ${issuer.id}`);
