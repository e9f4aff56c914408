/**
 * Resumption (docs/protocol.md section 15): ticket keys and their file form, sealed
 * tickets, the server's anti-replay record, and the client's ticket store.
 */
export { TicketKeys, MAX_TICKET_KEYS, TICKET_KEYS_JSON_VERSION } from './ticket-keys.js';
export type { TicketKey, TicketKeysJson } from './ticket-keys.js';
export { TicketReplayGuard, DEFAULT_REPLAY_CAPACITY } from './replay.js';
export { MemoryTicketStore, ticketFromJson, ticketToJson } from './client-tickets.js';
export type { ClientTicket, ClientTicketJson, TicketStore } from './client-tickets.js';
