/**
 * Checks of a server's resumption settings (InvalidArgumentError naming the field).
 */
import { InvalidArgumentError } from '../errors.js';
import { MAX_TICKET_LENGTH, MAX_TICKET_LIFETIME_SECONDS } from '../wire/resumption.js';
import { TicketReplayGuard } from '../resumption/replay.js';
import { TicketKeys } from '../resumption/ticket-keys.js';
import { MAX_ENDPOINT_LENGTH } from '../resumption/ticket.js';
import type { ServerTicketConfig } from './resumption.js';

export function checkTicketConfig(config: ServerTicketConfig): ServerTicketConfig {
  if (typeof config !== 'object' || config === null) throw new InvalidArgumentError('tickets must be an object');
  if (!(config.keys instanceof TicketKeys)) throw new InvalidArgumentError('tickets.keys must be TicketKeys');
  if (!(config.replay instanceof TicketReplayGuard)) throw new InvalidArgumentError('tickets.replay must be a TicketReplayGuard');
  if (typeof config.endpoint !== 'string' || new TextEncoder().encode(config.endpoint).length > MAX_ENDPOINT_LENGTH) {
    throw new InvalidArgumentError(`tickets.endpoint must be a string of at most ${MAX_ENDPOINT_LENGTH} bytes`);
  }
  const lifetime = config.lifetimeSeconds;
  if (lifetime !== undefined && !(Number.isSafeInteger(lifetime) && lifetime >= 1 && lifetime <= MAX_TICKET_LIFETIME_SECONDS)) {
    throw new InvalidArgumentError(`tickets.lifetimeSeconds must be a whole number in [1, ${MAX_TICKET_LIFETIME_SECONDS}]`);
  }
  const count = config.ticketsPerSession;
  if (count !== undefined && !(Number.isSafeInteger(count) && count >= 0 && count <= 8)) throw new InvalidArgumentError('tickets.ticketsPerSession must be a whole number in [0, 8]');
  const longest = config.maxTicketLength;
  if (longest !== undefined && !(Number.isSafeInteger(longest) && longest >= 1024 && longest <= MAX_TICKET_LENGTH)) throw new InvalidArgumentError(`tickets.maxTicketLength must be a whole number in [1024, ${MAX_TICKET_LENGTH}]`);
  return config;
}
