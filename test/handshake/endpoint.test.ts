/**
 * Endpoint binding (docs/protocol.md, section 5.7) at the handshake level: the forms, the
 * server's matching rule, and the ClientHello extension the client sends.
 */
import { describe, expect, it } from 'vitest';
import { createNativeBackend } from '../../src/crypto/native.js';
import { EXT_ENDPOINT, checkAcceptedEndpoints, checkEndpoint, decodeEndpoint, endpointMatches, endpointOfUrl } from '../../src/handshake/endpoint.js';
import { ClientHandshake, ServerHandshake } from '../../src/handshake/handshake.js';
import { decodeClientHello, unframeHandshake } from '../../src/wire/messages.js';
import { makeAgent, makeIssuer, trustFor } from '../helpers/identities.js';

const native = createNativeBackend();
const issuer = makeIssuer(native, 'issuer://endpoint-test');
const client = makeAgent(native, issuer, 'agent://e/client');
const server = makeAgent(native, issuer, 'agent://e/server');
const trust = trustFor(issuer);

describe('endpoint forms and matching', () => {
  it('the client endpoint of a URL is "//" + host[:port] + path, normalised by the URL parser', () => {
    expect(endpointOfUrl(new URL('ws://Tools.Example:8443/mcp?x=1#f'))).toBe('//tools.example:8443/mcp');
    expect(endpointOfUrl(new URL('wss://tools.example:443/'))).toBe('//tools.example/');
    expect(endpointOfUrl(new URL('ws://127.0.0.1:9000'))).toBe('//127.0.0.1:9000/');
  });

  it('exact endpoints and service names match byte for byte; "/path" matches any authority with exactly that path', () => {
    const accepted = checkAcceptedEndpoints(['//a.example/mcp', 'svc:tools', '/b'], 'endpoints');
    expect(endpointMatches('//a.example/mcp', accepted)).toBe(true);
    expect(endpointMatches('svc:tools', accepted)).toBe(true);
    expect(endpointMatches('//anything:1/b', accepted)).toBe(true);
    for (const e of ['//a.example/mcp/', '//A.example/mcp', '//a.example:1/mcp', 'svc:tool', '//x/b/', '//x/bb']) expect(endpointMatches(e, accepted), e).toBe(false);
  });

  it('refuses malformed endpoints locally (InvalidArgumentError) and from the peer (DecodeError)', () => {
    for (const bad of ['', 'no-form', '//host', '//host/a b', '//host/\u0000', 'x'.repeat(1025), 42]) {
      expect(() => checkEndpoint(bad, 'endpoint'), String(bad)).toThrowError(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    }
    expect(() => checkAcceptedEndpoints([], 'endpoints')).toThrowError(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    for (const bad of [new Uint8Array(0), Uint8Array.of(0xc3), new TextEncoder().encode('//h/\u0085')]) {
      expect(() => decodeEndpoint(bad)).toThrowError(expect.objectContaining({ code: 'ERR_DECODE' }));
    }
  });
});

describe('the handshake', () => {
  it('the client sends its endpoint as extension 0x0001; a server serving it continues; another is endpoint_mismatch before any crypto', () => {
    const c = new ClientHandshake({ backend: native, identity: client.local, trust, endpoint: '//tools.example/mcp' });
    const [hello] = c.start();
    const framed = (hello as { message: Uint8Array }).message;
    expect(decodeClientHello(unframeHandshake(framed).body).extensions).toEqual([{ type: EXT_ENDPOINT, data: new TextEncoder().encode('//tools.example/mcp') }]);
    const ok = new ServerHandshake({ backend: native, identity: server.local, trust, acceptEndpoints: ['/mcp'] });
    expect(ok.receive(framed, 'plaintext').length).toBeGreaterThan(0);
    const refusing = new ServerHandshake({ backend: native, identity: server.local, trust, acceptEndpoints: ['/other'] });
    expect(() => refusing.receive(framed, 'plaintext')).toThrowError(expect.objectContaining({ code: 'ERR_ENDPOINT_MISMATCH', alert: 100 }));
    const none = new ClientHandshake({ backend: native, identity: client.local, trust });
    const bare = (none.start()[0] as { message: Uint8Array }).message;
    expect(() => new ServerHandshake({ backend: native, identity: server.local, trust, acceptEndpoints: ['/mcp'] }).receive(bare, 'plaintext')).toThrowError(expect.objectContaining({ code: 'ERR_ENDPOINT_MISMATCH' }));
    // Without acceptEndpoints (a bare Session), nothing is checked.
    expect(new ServerHandshake({ backend: native, identity: server.local, trust }).receive(bare, 'plaintext').length).toBeGreaterThan(0);
  });
});
