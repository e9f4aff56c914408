/**
 * PqmcpClientTransport for browsers and other runtimes with a standard `WebSocket`: the same
 * transport as on Node (same handshake, records, hooks and errors), opened with the
 * runtime's WebSocket and running on the portable `noble` backend.
 *
 *   import { PqmcpClientTransport, identityFromContents, trustStoreFromContents } from 'pqmcp/browser';
 *   const transport = new PqmcpClientTransport('wss://tools.example/mcp', { identity, trust, expectedServerId: 'agent://example/tools' });
 *   await client.connect(transport);
 *
 * Sharp edges:
 * - `backend` may be 'noble' (the default) or a backend object; 'native' needs node:crypto
 *   and is refused with InvalidArgumentError.
 * - No `headers` or `webSocketOptions`: a page cannot set them (see browser-dialer.ts).
 * - The client sends no keepalive pings (browsers cannot); the server's pings are answered
 *   by the browser itself.
 */
import { createNobleBackend } from '../crypto/noble.js';
import type { CryptoBackend } from '../crypto/types.js';
import { InvalidArgumentError } from '../errors.js';
import { standardDialer } from '../transport/browser-dialer.js';
import { PqmcpClientTransport as ClientTransport } from '../transport/client.js';
import type { ClientPlatform, PqmcpClientOptions } from '../transport/client.js';

export type BrowserClientOptions = Omit<PqmcpClientOptions, 'headers' | 'webSocketOptions' | 'backend'> & {
  /** 'noble' (default) or a backend object. */
  backend?: 'noble' | CryptoBackend;
};

let noble: CryptoBackend | undefined;

const BROWSER_PLATFORM: ClientPlatform = {
  dial: standardDialer(),
  async resolveBackend(choice) {
    if (typeof choice === 'object' && choice !== null) return choice;
    if (choice !== undefined && choice !== 'noble' && choice !== 'auto') throw new InvalidArgumentError(`backend ${String(choice)} is not available here; use 'noble'`);
    return (noble ??= createNobleBackend());
  },
};

export class PqmcpClientTransport extends ClientTransport {
  constructor(url: string | URL, options: BrowserClientOptions) {
    super(url, options, BROWSER_PLATFORM);
  }
}
