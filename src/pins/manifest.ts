/**
 * Issuer-attested tool manifests: the list of tools (by name and definition hash) an issuer
 * approved for a server, and the claim that binds a server's credential to one.
 *
 *   manifest file   { "type": "pqmcp-tool-manifest", "version": 1,
 *                     "tools": [ { "name", "hash", "definition"? }, ... ] }   (sorted by name)
 *   manifest hash   SHA-256 hex of canonicalJson({ type, version, tools: [{ name, hash }] })
 *                   (definitions are for reviewers; their hashes are what counts)
 *   claim           the credential attribute `pqmcp.tools_manifest` = the manifest hash
 *
 * The issuer signs the claim with the rest of the credential, so a server cannot change it;
 * the manifest itself reaches clients the way the trust file does (the issuer publishes it),
 * and a client matches the claim to a manifest it holds. See docs/protocol.md.
 *
 * Sharp edges:
 * - decodeManifest is strict: unknown fields, a duplicate or unsorted name, a hash that is
 *   not 64 lowercase hex digits, or a definition whose hash differs from its entry are all
 *   refused (InvalidArgumentError naming the problem).
 */
import { InvalidArgumentError } from '../errors.js';
import { canonicalJson, sha256Hex, toolDefinition, toolHash } from './canonical.js';
import type { ToolLike } from './canonical.js';

export const MANIFEST_TYPE = 'pqmcp-tool-manifest';
export const MANIFEST_VERSION = 1;
/** The credential attribute that carries a manifest hash. */
export const MANIFEST_CLAIM = 'pqmcp.tools_manifest';

export interface ManifestEntry {
  name: string;
  hash: string;
  definition?: Record<string, unknown>;
}

export interface ToolManifest {
  type: typeof MANIFEST_TYPE;
  version: typeof MANIFEST_VERSION;
  tools: ManifestEntry[];
}

const HASH = /^[0-9a-f]{64}$/;

/** A manifest of `tools` (as tools/list returns them), with their definitions. */
export function buildManifest(tools: readonly ToolLike[]): ToolManifest {
  const entries = tools.map((t) => ({ name: t.name, hash: toolHash(t), definition: toolDefinition(t) as Record<string, unknown> }));
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (let i = 1; i < entries.length; i++) if (entries[i]!.name === entries[i - 1]!.name) throw new InvalidArgumentError(`two tools are named ${entries[i]!.name}`);
  return { type: MANIFEST_TYPE, version: MANIFEST_VERSION, tools: entries };
}

export function manifestHash(manifest: ToolManifest): string {
  return sha256Hex(canonicalJson({ type: manifest.type, version: manifest.version, tools: manifest.tools.map((t) => ({ name: t.name, hash: t.hash })) }));
}

/** Parse and check a manifest file's JSON. */
export function decodeManifest(json: unknown, where = 'manifest'): ToolManifest {
  const bad = (why: string): never => {
    throw new InvalidArgumentError(`${where}: ${why}`);
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) bad('not a JSON object');
  const m = json as Record<string, unknown>;
  // The type first: another pqmcp file given as a manifest is named as such, not by its first field.
  if (m.type !== MANIFEST_TYPE) bad(`not a tool manifest (${typeof m.type === 'string' ? `its type is ${JSON.stringify(m.type)}` : 'no type'}; a manifest's is ${MANIFEST_TYPE}: pqmcp manifest capture)`);
  for (const k of Object.keys(m)) if (!['type', 'version', 'tools'].includes(k)) bad(`unknown field ${JSON.stringify(k)}`);
  if (m.version !== MANIFEST_VERSION) bad(`version must be ${MANIFEST_VERSION}`);
  if (!Array.isArray(m.tools)) bad('tools must be an array');
  const tools: ManifestEntry[] = [];
  for (const [i, raw] of (m.tools as unknown[]).entries()) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad(`tools[${i}] is not an object`);
    const e = raw as Record<string, unknown>;
    for (const k of Object.keys(e)) if (!['name', 'hash', 'definition'].includes(k)) bad(`tools[${i}]: unknown field ${JSON.stringify(k)}`);
    if (typeof e.name !== 'string' || e.name === '') bad(`tools[${i}].name must be a non-empty string`);
    if (typeof e.hash !== 'string' || !HASH.test(e.hash)) bad(`tools[${i}].hash must be 64 lowercase hex digits`);
    const prev = tools[tools.length - 1];
    if (prev && !(prev.name < (e.name as string))) bad(`tools must be sorted by name without duplicates (at ${JSON.stringify(e.name)})`);
    if (e.definition !== undefined) {
      if (typeof e.definition !== 'object' || e.definition === null || Array.isArray(e.definition)) bad(`tools[${i}].definition must be an object`);
      const def = e.definition as ToolLike;
      if (def.name !== e.name || toolHash(def) !== e.hash) bad(`tools[${i}] (${e.name}): its definition does not hash to its hash`);
    }
    tools.push({ name: e.name as string, hash: e.hash as string, ...(e.definition !== undefined ? { definition: e.definition as Record<string, unknown> } : {}) });
  }
  return { type: MANIFEST_TYPE, version: MANIFEST_VERSION, tools };
}
