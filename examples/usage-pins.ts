/**
 * docs/usage.md: a client that pins the server's tool definitions in a file (0600) and
 * checks a manifest its issuer published. A redefined tool is withheld and reported.
 */
import { readFileSync } from 'node:fs';
import { FilePinStore, PqmcpClientTransport, decodeManifest, toolPinning } from 'pqmcp';
import type { AgentIdentity, TrustStore } from 'pqmcp';

export function pinnedTransport(url: string, identity: AgentIdentity, trust: TrustStore): PqmcpClientTransport {
  const pins = toolPinning({
    store: new FilePinStore('pins.json'), // shared with `pqmcp pins list|approve|forget --pins pins.json`
    newTools: 'pin', // or 'hold': a new tool waits for `pqmcp pins approve`
    manifests: [decodeManifest(JSON.parse(readFileSync('travel-tools.manifest.json', 'utf8')))],
    onEvent: (e) => console.error(`pin ${e.kind}: ${e.tool}${e.reason ? ` (${e.reason})` : ''}`),
  });
  return new PqmcpClientTransport(url, { identity, trust, expectedServerId: 'agent://acme/travel-tools', hooks: [pins] });
}
