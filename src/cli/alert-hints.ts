/**
 * What `pqmcp connect` tells its user when the server aborts the handshake with a plaintext
 * alert (PeerAbortedError): the alerts a server sends before it has any keys, while it
 * processes the ClientHello, and a hint at which side to fix.
 *
 * Sharp edges:
 * - A plaintext alert is unauthenticated by design (docs/protocol.md section 7): anyone on
 *   the path can forge one, so the library reports it only as "peer aborted" with its code
 *   and never acts on its meaning. The hint is text for a human, worded as what the server
 *   SAYS, and always marked unauthenticated; the error's class and code stay the library's.
 * - server_busy (130) is not here: the library already reports it as ServerBusyError.
 */
import { alertName } from '../errors.js';

export interface HintContext {
  /** The endpoint the client named in its ClientHello (--endpoint, else the URL's). */
  endpoint: string;
  /** --endpoint was given (else the endpoint came from the URL). */
  endpointGiven: boolean;
  /** --tickets was given (a resumption ticket may have been offered). */
  tickets: boolean;
}

/** The one-line explanation of a plaintext alert `code` from the server. */
export function plaintextAlertHint(code: number, ctx: HintContext): string {
  const said = (what: string): string => `the server ${what} (unauthenticated alert ${code}, ${alertName(code)}: a plaintext alert, which anyone on the path could have sent)`;
  switch (code) {
    case 100:
      return ctx.endpointGiven
        ? `${said(`refused the endpoint ${JSON.stringify(ctx.endpoint)}`)}: check --endpoint against the gateway's serve --endpoint`
        : `${said(`refused the endpoint ${JSON.stringify(ctx.endpoint)} (from the URL)`)}: check the URL's host and path, or name the served endpoint with --endpoint, against the gateway's serve --endpoint`;
    case 70:
      return `${said('shares no protocol version with this client')}: update the older side`;
    case 71:
      return `${said('shares no cipher suite with this client')}: check both sides' suites (and backends)`;
    case 110:
      return `${said('did not accept an extension this client sent')}: it may be older than this client`;
    case 120:
      return ctx.tickets
        ? `${said('refused the resumption ticket offered')}: delete the --tickets file and connect again`
        : said('refused a resumption ticket');
    case 50:
      return `${said('could not decode the ClientHello')}: it may speak another protocol revision`;
    case 40:
      return `${said('gave up on the handshake')}: often its handshake timeout on a slow or overloaded link; try again`;
    default:
      return said('aborted the handshake');
  }
}

/**
 * What to do about an authenticated alert by which the server refused this agent during the
 * handshake (PeerAlertError): these are proven to come from the server, so the hint says
 * what the server decided, and which side to change. Empty for other alerts.
 */
export function refusalHint(code: number): string {
  switch (code) {
    case 48:
      return ': the server does not trust the issuer of this agent\'s credential; its operator adds that issuer to its trust file (pqmcp trust add-issuer), or this agent gets a credential from an issuer the server trusts';
    case 45:
      return ': the server found this agent\'s credential expired (or not yet valid; check both clocks); ask its issuer for a new one (pqmcp credential issue)';
    case 44:
      return ': this agent\'s credential or key is revoked at the server; it needs a new key and credential from its issuer';
    case 42:
      return ': the server cannot accept this agent\'s credential (a self-signed one must be pinned there: pqmcp trust pin)';
    case 101:
      return ': this agent\'s credential may not act as a client (issue it one with --usage client or both)';
    case 102:
      return ': the server allows this agent\'s issuer to vouch only for other agent ids (its trust file\'s --constrain)';
    case 140:
      return ': this agent already holds as many sessions as the server allows one agent (--max-sessions-per-agent); close one and connect again';
    default:
      return '';
  }
}
