/**
 * pqmcp for browsers (`import ... from 'pqmcp/browser'`): the MCP client transport on the
 * standard WebSocket API with the portable `noble` backend, identities and trust stores
 * from the same files the CLI writes, and optional key storage in IndexedDB.
 *
 * Nothing here imports a Node built-in; the package's `ws` dependency resolves to its
 * browser stub, which this entry never calls. See docs/usage.md, "In a browser".
 */
export { PqmcpClientTransport } from './client.js';
export type { BrowserClientOptions } from './client.js';
export { storeIdentity, loadStoredIdentity, deleteStoredIdentity } from './key-store.js';
export type { KeyStoreOptions } from './key-store.js';
export { identityFromContents, trustStoreFromContents } from '../identity/from-contents.js';
export type { FileContents, IdentityFromContentsOptions } from '../identity/from-contents.js';
export * from '../errors.js';
export { TrustStore } from '../identity/trust.js';
export type { VerifiedPeer } from '../identity/trust.js';
export type { AgentIdentity } from '../identity/identity.js';
export { createNobleBackend } from '../crypto/noble.js';
export type { CryptoBackend } from '../crypto/types.js';
export { errorResponse } from '../transport/hook-api.js';
export type { HookContext, HookResult, HookSession, JsonRpcMessage, MessageHook } from '../transport/hook-api.js';
export type { PqmcpAuthExtra, PqmcpAuthInfo } from '../transport/auth-info.js';
export { SUBPROTOCOL } from '../transport/options.js';
