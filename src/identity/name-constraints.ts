/**
 * Name constraints (issue 11 item 3): which agent ids an issuer may vouch for (a trust store
 * entry's `constraints`), and which server ids a client accepts (`serverIdConstraints`).
 * The rule, precisely (docs/protocol.md section 6.4):
 *
 *   "agent://acme/tools"   the id itself and every id below it on a "/" boundary
 *                          ("agent://acme/tools/eu"), never "agent://acme/toolsmith"
 *   "agent://acme/"        every id below it ("agent://acme/x", "agent://acme/x/y"), not
 *                          "agent://acme/" itself
 *   "agent://acme/*"       the same as "agent://acme/" (stored in that form)
 *
 * An id is within a list when it is within any entry.
 *
 * Sharp edges:
 * - Comparison is byte for byte on the UTF-8 id: no case folding, no percent-decoding, no
 *   dot-segment removal. A case or encoding variant of a constrained prefix simply does not
 *   match (refused: the safe direction).
 * - The part of an id below the constraint must not contain an empty, "." or ".." segment,
 *   a "%" or a "\": a consumer that normalises URIs would read "agent://acme/../evil" or
 *   "agent://acme/%2e%2e/evil" as outside "agent://acme/". Such ids are outside.
 * - `*` is a wildcard only as the final "/*"; anywhere else a constraint is refused when it
 *   is configured (no "agent://*.acme/" or "agent://acme/*\/tools": nothing to match
 *   loosely). A constraint is an id (section 6.1's rule), so it has a scheme.
 * - An absent list means "unconstrained"; an empty list is refused when configured (it
 *   would read like "no constraint" while it vouches for nothing).
 */
import { InvalidArgumentError } from '../errors.js';
import { Rules, textProblem } from './rules.js';

/** Most entries in one constraint list (per trusted issuer, or per client). */
export const MAX_NAME_CONSTRAINTS = 64;

/**
 * Validate and normalise one constraint ("…/*" becomes "…/"). Throws InvalidArgumentError
 * with `label` (e.g. "issuers[0].constraints[1]"), never echoing the value.
 */
export function normaliseNameConstraint(value: unknown, label: string): string {
  const r = textProblem(value, Rules.id);
  if ('reason' in r) throw new InvalidArgumentError(`${label} ${r.reason}`);
  let c = value as string;
  if (c.endsWith('/*')) c = c.slice(0, -1);
  if (c.includes('*')) throw new InvalidArgumentError(`${label} may use "*" only as a final "/*" (a whole subtree)`);
  if (!c.includes(':') || c.endsWith(':')) throw new InvalidArgumentError(`${label} must be an id or an id prefix ending in "/"`);
  return c;
}

/** Validate a constraint list: 1..64 entries, each normalised, duplicates dropped. */
export function normaliseNameConstraints(value: unknown, label: string): string[] {
  if (!Array.isArray(value)) throw new InvalidArgumentError(`${label} must be an array of id prefixes`);
  if (value.length === 0) throw new InvalidArgumentError(`${label} must list at least one id prefix (leave it out for no constraint)`);
  if (value.length > MAX_NAME_CONSTRAINTS) throw new InvalidArgumentError(`${label} has more than ${MAX_NAME_CONSTRAINTS} entries`);
  const out: string[] = [];
  value.forEach((v, i) => {
    const c = normaliseNameConstraint(v, `${label}[${i}]`);
    if (!out.includes(c)) out.push(c);
  });
  return out;
}

/** The segments below the constraint carry no empty, "." or ".." segment, "%" or "\". */
function cleanBelow(rest: string): boolean {
  if (rest.includes('%') || rest.includes('\\')) return false;
  return rest.split('/').every((segment) => segment !== '' && segment !== '.' && segment !== '..');
}

/** Whether `id` is within the (normalised) constraint `c`. */
export function withinNameConstraint(id: string, c: string): boolean {
  if (c.endsWith('/')) return id.length > c.length && id.startsWith(c) && cleanBelow(id.slice(c.length));
  if (id === c) return true;
  return id.startsWith(`${c}/`) && cleanBelow(id.slice(c.length + 1));
}

/** Whether `id` is within any of `constraints` (normalised). */
export function withinNameConstraints(id: string, constraints: readonly string[]): boolean {
  return constraints.some((c) => withinNameConstraint(id, c));
}
