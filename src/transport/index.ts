/**
 * MCP transports over WebSocket: a client Transport, a server listener handing out one
 * authenticated Transport per session, and the verified peer as the SDK's authInfo.
 */
export { PqmcpClientTransport, ticketStoreKey } from './client.js';
export type { PqmcpClientOptions, PqmcpWebSocketOptions } from './client.js';
export { PqmcpServer, listen, serveMcp } from './server.js';
export type { ClientInfo, McpServerLike, PqmcpServerEvents, PqmcpServerOptions, ServerTicketOptions, SessionFactory } from './server.js';
export { PqmcpServerTransport } from './server-transport.js';
export { authInfoFor, sessionIdOf } from './auth-info.js';
export type { PqmcpAuthExtra, PqmcpAuthInfo } from './auth-info.js';
export { CloseCode, closeCodeFor, closeReason } from './close-codes.js';
export type { CloseCodeValue } from './close-codes.js';
export { DEFAULTS as TRANSPORT_DEFAULTS, MAX_WRITE_BATCH, SUBPROTOCOL } from './options.js';
export type { BackendChoice, PqmcpTransportOptions } from './options.js';
export { MessagePipeline } from './message-hooks.js';
export { MAX_TRACKED } from './request-tracker.js';
export { JsonRpcErrorCode, errorResponse } from './hook-api.js';
export { CANCELLED_HOLD_MS } from './cancelled-hold.js';
export { RELATED_TASK_MAX_IN_FLIGHT } from './related-task-share.js';
export type { PipelineSinks } from './message-hooks.js';
export type { Direction, HookChannel, HookContext, HookResult, HookSession, JsonRpcMessage, MessageHook, TrackedRequest } from './hook-api.js';
export { Connection } from './connection.js';
export type { ConnectionOptions, MessageSocket } from './connection.js';
// Session limits and expiry (issue 10).
export { systemClock } from './clock.js';
export type { Clock } from './clock.js';
export { ReceiveBudget } from './receive-budget.js';
export type { BudgetMember } from './receive-budget.js';
export { RequestBudget, RequestShare } from './request-budget.js';
export type { ListenerRefusal, RequestCharge } from './request-budget.js';
export { busyRetryDelay } from './busy-retry.js';
export type { BusyRetryEvent, BusyRetryOptions } from './busy-retry.js';
// The edge's refusals, reported on 'clientError' (and as handshake.failure audit events):
// subclasses of the errors.ts classes whose codes they carry.
export { AcceptRateError, FirstFlightTimeoutError } from './edge.js';
export { UpgradeTimeoutError } from './proxy-front.js';
export type { McpAuthInfo, McpMessageExtra, McpOnMessage, McpSendOptions } from './mcp-types.js';
