/**
 * The client transport refuses to run without knowing which server it means: a trust store
 * only says an issuer vouched for an agent, not that the agent is the intended server.
 */
import { describe, expect, it } from 'vitest';
import { PqmcpClientTransport } from '../../src/transport/client.js';
import { agent, trustFor } from '../helpers/identities.js';

describe('PqmcpClientTransport options', () => {
  const base = () => ({ identity: agent('agent://pqmcp-test/client'), trust: trustFor(), backend: 'native' as const });

  it('requires expectedServerId unless allowAnyServer is set explicitly', () => {
    expect(() => new PqmcpClientTransport('ws://127.0.0.1:1/', base())).toThrowError(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringContaining('expectedServerId') }));
    expect(() => new PqmcpClientTransport('ws://127.0.0.1:1/', { ...base(), allowAnyServer: true })).not.toThrow();
    expect(() => new PqmcpClientTransport('ws://127.0.0.1:1/', { ...base(), expectedServerId: 'agent://x/y' })).not.toThrow();
  });

  it('refuses URLs that are not ws:// or wss://', () => {
    for (const url of ['http://127.0.0.1/', 'not a url', 'file:///etc/passwd']) {
      expect(() => new PqmcpClientTransport(url, { ...base(), expectedServerId: 'agent://x/y' })).toThrowError(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    }
  });
});
