/**
 * docs/usage.md: load an agent identity and a trust store written by usage-keys.ts. The
 * other usage examples import this.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TrustStore, createAgentIdentity, identityFromSeed, selectBackend } from '../src/index.js';
import type { AgentIdentity } from '../src/index.js';

/** The crypto backend: PQMCP_BACKEND (auto, noble or native); auto unless set. */
export const backend = selectBackend();

export function loadIdentity(dir: string, name: string): AgentIdentity {
  const file = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as { seed: string; credential: string };
  const keyPair = identityFromSeed(backend, Buffer.from(file.seed, 'hex'));
  // Refuses a credential that was issued for another key.
  return createAgentIdentity({ keyPair, credential: Buffer.from(file.credential, 'base64url') });
}

export function loadTrust(dir: string): TrustStore {
  return TrustStore.fromJSON(readFileSync(join(dir, 'trust.json'), 'utf8'));
}
