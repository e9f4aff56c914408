/**
 * Canonical forms and hashes of MCP tool definitions and tool manifests (docs/protocol.md,
 * "Tool definitions and manifests"). Both sides of a comparison (a pin and a later
 * tools/list, or an issuer's manifest and a server) compute the same bytes.
 *
 *   canonicalJson(value)     JSON with object keys sorted by UTF-16 code units, no white
 *                            space; strings and numbers as JSON.stringify writes them (the
 *                            RFC 8785 JCS form for the JSON values MCP uses)
 *   toolDefinition(tool)     the fields a pin covers: name, title, description, inputSchema,
 *                            outputSchema, annotations (absent ones left out; _meta, icons and
 *                            anything else are not part of the definition)
 *   toolHash(tool)           lowercase hex SHA-256 of canonicalJson(toolDefinition(tool))
 *
 * Sharp edges:
 * - A value JSON cannot carry (undefined inside arrays, NaN, Infinity, a function) throws
 *   InvalidArgumentError: a definition that cannot be written canonically cannot be pinned.
 * - A definition whose fields hash equal is the same tool for pinning, whatever else the
 *   server sends beside them.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { InvalidArgumentError } from '../errors.js';

/** The fields of a tool that its pin covers, in the order docs/protocol.md lists them. */
export const TOOL_FIELDS = ['name', 'title', 'description', 'inputSchema', 'outputSchema', 'annotations'] as const;
export type ToolField = (typeof TOOL_FIELDS)[number];

/** A tool as tools/list returns it (only the fields pinning reads are typed). */
export interface ToolLike {
  name: string;
  [key: string]: unknown;
}

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new InvalidArgumentError('a tool definition holds a number JSON cannot carry');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  throw new InvalidArgumentError(`a tool definition holds a ${typeof value}, which JSON cannot carry`);
}

export function sha256Hex(text: string): string {
  return bytesToHex(sha256(utf8ToBytes(text)));
}

/** The part of a tool that is pinned. */
export function toolDefinition(tool: ToolLike): Partial<Record<ToolField, unknown>> {
  const out: Partial<Record<ToolField, unknown>> = {};
  for (const field of TOOL_FIELDS) if (tool[field] !== undefined) out[field] = tool[field];
  return out;
}

export function toolHash(tool: ToolLike): string {
  return sha256Hex(canonicalJson(toolDefinition(tool)));
}

/** Which pinned fields differ between two definitions (for "what changed" messages). */
export function changedFields(before: Partial<Record<ToolField, unknown>>, after: Partial<Record<ToolField, unknown>>): ToolField[] {
  return TOOL_FIELDS.filter((f) => canonicalJson(before[f] ?? null) !== canonicalJson(after[f] ?? null));
}
