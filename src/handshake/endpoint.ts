/**
 * Endpoint binding (docs/protocol.md, section 5.7): the ClientHello extension 0x0001 names
 * the endpoint the client means, and the server refuses a ClientHello whose endpoint is not
 * one it serves. Against ALPACA-style redirection: an attacker who routes a client's
 * connection to another endpoint served under the same identity (another path, port or
 * host) is caught, because the name the client meant is in the transcript.
 *
 *   endpoint = "//" authority path     the URL the client dialled, without scheme, query and
 *                                      fragment, as the WHATWG URL parser gives it (host
 *                                      lowercased, default port dropped): //mcp.example:8443/mcp
 *            | service name            an id-like name agreed out of band: svc:billing-tools
 *   ext_data = endpoint (UTF-8, 1..1024 bytes, no whitespace or control characters)
 *
 * Sharp edges:
 * - The extension is in the plaintext ClientHello: a passive observer reads it, as it reads
 *   the HTTP upgrade request line (and, over TLS, SNI). It names an endpoint, never a secret.
 * - A server pattern "/path" matches any authority with exactly that path: the authority is
 *   only checked where the server is told which authorities it answers for (a listener
 *   cannot know the names clients dial it by, behind proxies and NAT).
 * - Comparison is byte for byte, after the client's URL normalisation; no case folding of
 *   paths, no percent-decoding.
 */
import { DecodeError, EndpointMismatchError, InvalidArgumentError } from '../errors.js';

/** ClientHello extension type carrying the endpoint. */
export const EXT_ENDPOINT = 0x0001;
export const MAX_ENDPOINT_LENGTH = 1024;

const FORM = /^(\/\/[^\s/]+\/\S*|[a-z][a-z0-9+.-]*:\S+)$/i;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function problem(endpoint: string): string | undefined {
  const n = encoder.encode(endpoint).length;
  if (n < 1 || n > MAX_ENDPOINT_LENGTH) return `must be 1..${MAX_ENDPOINT_LENGTH} bytes of UTF-8`;
  if (CONTROL.test(endpoint)) return 'contains a control character';
  if (!FORM.test(endpoint)) return 'must be "//authority/path" or a service name like "svc:name"';
  return undefined;
}

/** Check a locally configured endpoint (InvalidArgumentError naming `what`). */
export function checkEndpoint(endpoint: unknown, what: string): string {
  if (typeof endpoint !== 'string') throw new InvalidArgumentError(`${what} must be a string`);
  const p = problem(endpoint);
  if (p) throw new InvalidArgumentError(`${what} ${p}`);
  return endpoint;
}

/** Check the server's accepted endpoints: full endpoints, or "/path" patterns. */
export function checkAcceptedEndpoints(value: unknown, what: string): readonly string[] {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0) throw new InvalidArgumentError(`${what} must be a non-empty list of endpoints`);
  return Object.freeze(list.map((e: unknown, i) => (typeof e === 'string' && e.startsWith('/') && !e.startsWith('//') && !/\s/.test(e) ? e : checkEndpoint(e, `${what}[${i}]`))));
}

/** The endpoint a client means by `url`: "//" + host[:port] + path. */
export function endpointOfUrl(url: URL): string {
  return `//${url.host}${url.pathname}`;
}

export function encodeEndpoint(endpoint: string): Uint8Array {
  return encoder.encode(endpoint);
}

/** The endpoint in a received extension (DecodeError for a malformed one). */
export function decodeEndpoint(data: Uint8Array): string {
  let endpoint: string;
  try {
    endpoint = decoder.decode(data);
  } catch {
    throw new DecodeError('endpoint extension is not valid UTF-8');
  }
  const p = problem(endpoint);
  if (p) throw new DecodeError(`endpoint extension ${p}`);
  return endpoint;
}

/** True if `endpoint` is served: it equals an accepted endpoint, or its path equals a "/path" pattern. */
export function endpointMatches(endpoint: string, accepted: readonly string[]): boolean {
  for (const a of accepted) {
    if (a === endpoint) return true;
    if (a.startsWith('/') && !a.startsWith('//') && endpoint.startsWith('//')) {
      const slash = endpoint.indexOf('/', 2);
      if (slash > 2 && endpoint.slice(slash) === a) return true;
    }
  }
  return false;
}

/**
 * The server's check of a ClientHello's extensions against what it serves: the endpoint
 * extension must be present, well-formed and served. Throws EndpointMismatchError.
 */
export function requireServedEndpoint(extensions: readonly { type: number; data: Uint8Array }[], accepted: readonly string[]): string {
  const ext = extensions.find((e) => e.type === EXT_ENDPOINT);
  if (!ext) throw new EndpointMismatchError('the client did not name the endpoint it means (ClientHello extension 0x0001)');
  const endpoint = decodeEndpoint(ext.data);
  if (!endpointMatches(endpoint, accepted)) {
    throw new EndpointMismatchError(`the client means endpoint ${JSON.stringify(endpoint)}, which this listener does not serve (it serves ${accepted.map((a) => JSON.stringify(a)).join(', ')})`);
  }
  return endpoint;
}
