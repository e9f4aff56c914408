/**
 * Tool pinning and issuer-attested tool manifests (client side). See hook.ts for the rules,
 * canonical.ts and manifest.ts for the formats (docs/protocol.md, "Tool definitions and
 * manifests"), store.ts for where pins are kept.
 */
export { TOOL_FIELDS, canonicalJson, changedFields, toolDefinition, toolHash } from './canonical.js';
export type { ToolField, ToolLike } from './canonical.js';
export { MANIFEST_CLAIM, MANIFEST_TYPE, MANIFEST_VERSION, buildManifest, decodeManifest, manifestHash } from './manifest.js';
export type { ManifestEntry, ToolManifest } from './manifest.js';
export { FilePinStore, MemoryPinStore, PINS_TYPE, PINS_VERSION, serverKey } from './store.js';
export type { HeldReason, HeldTool, PinStore, PinnedServer, PinnedTool, SeenKey } from './store.js';
export { DEFAULT_MAX_ENTRY_BYTES, DEFAULT_MAX_TOOL_BYTES, MAX_KEPT_NAME_LENGTH, DEFAULT_MAX_TOOLS, PIN_REFUSED, toolPinning } from './hook.js';
export type { PinEvent, ToolPinningOptions, WithheldReason } from './hook.js';
