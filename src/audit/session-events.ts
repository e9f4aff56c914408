/**
 * Builders for the session-scoped audit events, shared by the listener and the client
 * transport so both report the same fields the same way.
 */
import { toHex } from '../bytes.js';
import type { PqmcpError } from '../errors.js';
import type { HandshakeResult } from '../handshake/types.js';
import { SUITE_NAMES } from '../wire/messages.js';
import { clip } from './events.js';
import type { AuditPeer, HandshakeFailureEvent, SessionCloseEvent, SessionEnd, SessionOpenEvent } from './events.js';

/** WebSocket payload bytes each way over one connection (counted by the socket adapter). */
interface Traffic {
  bytesIn: number;
  bytesOut: number;
}

type Role = 'client' | 'server';

function peerOf(result: HandshakeResult): AuditPeer {
  const { agentId, issuer, fingerprint, serial } = result.peer;
  return { agentId, issuer, fingerprint, serial };
}

/** `ticketRefused`: the code of the resumption ticket the server refused on this connection. */
export function handshakeFailureEvent(role: Role, error: PqmcpError, remoteAddress: string | undefined, startedAt?: number, ticketRefused?: string): HandshakeFailureEvent {
  const time = Date.now();
  const event: HandshakeFailureEvent = { type: 'handshake.failure', time, role, remoteAddress, code: error.code, message: clip(error.message) };
  if (startedAt !== undefined) event.durationMs = time - startedAt;
  if (ticketRefused !== undefined) event.ticketRefused = ticketRefused;
  return event;
}

export function sessionOpenEvent(
  role: Role,
  result: HandshakeResult,
  info: { backend: string; endpoint: string | undefined; remoteAddress: string | undefined; startedAt: number; ticketRefused?: string | undefined },
): SessionOpenEvent {
  const time = Date.now();
  const event: SessionOpenEvent = {
    type: 'session.open',
    time,
    role,
    sessionId: toHex(result.transcriptHash),
    ...peerOf(result),
    suite: SUITE_NAMES[result.suite] ?? `0x${result.suite.toString(16).padStart(4, '0')}`,
    backend: info.backend,
    endpoint: info.endpoint,
    remoteAddress: info.remoteAddress,
    handshakeMs: time - info.startedAt,
    resumed: result.resumed,
  };
  if (result.ticketsWithheld !== undefined) event.ticketsWithheld = result.ticketsWithheld;
  if (info.ticketRefused !== undefined) event.ticketRefused = info.ticketRefused;
  return event;
}

export function sessionCloseEvent(role: Role, result: HandshakeResult, openedAt: number, traffic: Traffic, keyUpdates: number, end: SessionEnd, error?: PqmcpError): SessionCloseEvent {
  const time = Date.now();
  const event: SessionCloseEvent = {
    type: 'session.close',
    time,
    role,
    sessionId: toHex(result.transcriptHash),
    ...peerOf(result),
    durationMs: time - openedAt,
    bytesIn: traffic.bytesIn,
    bytesOut: traffic.bytesOut,
    keyUpdates,
    end,
  };
  if (end === 'error' && error) {
    event.code = error.code;
    event.message = clip(error.message);
  }
  return event;
}

/** How a session ended, from whether this side asked to close and the connection's error. */
export function sessionEnd(closedLocally: boolean, error: PqmcpError | undefined): SessionEnd {
  if (error !== undefined) return 'error';
  return closedLocally ? 'local' : 'peer';
}
