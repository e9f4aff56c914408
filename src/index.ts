/**
 * pqmcp: a post-quantum secure transport for the Model Context Protocol.
 *
 * Layers, inner to outer (imports only flow inward):
 *   wire/       byte layouts of handshake messages (docs/protocol.md sections 2-4)
 *   crypto/     one small interface, two backends (noble, native), composite signatures
 *   identity/   credentials, fingerprints, trust stores
 *   record/     record framing, AEAD cipher states, message fragments
 *   resumption/ ticket keys, sealed tickets, anti-replay, the client's ticket store
 *   handshake/  the handshake state machines and key schedule (pure, no I/O)
 *   session/    handshake + record layer as one byte-stream engine (pure, no I/O)
 *   audit/      audit events, the request auditor hook, hash-chained audit files, metering
 *   transport/  MCP transports over WebSocket
 */
export * from './errors.js';
export { Session, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_KEY_UPDATE_INTERVAL } from './session/session.js';
export type { SessionOptions, SessionEvent, SessionOutput, SessionState } from './session/session.js';
export type { CryptoRequest, CryptoResult, HandshakeConfig, HandshakeResult, LocalIdentity } from './handshake/types.js';
export { ClientHandshake, ServerHandshake, DEFAULT_SUITES, DEFAULT_VERSIONS } from './handshake/handshake.js';
export { Suite, SUITE_NAMES, VERSION_1 } from './wire/messages.js';
export type { SuiteId } from './wire/messages.js';
export { createNobleBackend } from './crypto/noble.js';
export { createNativeBackend } from './crypto/native.js';
export { selectBackend, describeBackend } from './crypto/select.js';
export type { BackendChoice } from './crypto/select.js';
export * from './identity/index.js';
// Node only (node:fs): loading the files the CLI writes. A browser entry leaves this out.
export {
  MAX_FILE_SIZE,
  defaultCredentialPath,
  loadCredential,
  loadIdentity,
  loadIssuer,
  loadPrivateKey,
  loadPublicKey,
  loadRevocations,
  loadTrustStore,
  readPqmcpFile,
} from './identity/files.js';
export type { LoadIdentityOptions, LoadKeyOptions, LoadTrustOptions, LoadedIdentity, LoadedPrivateKey, LoadedPublicKey, PqmcpFile } from './identity/files.js';
export { compositeKeygen, compositeSign, compositeVerify, COMPOSITE_PUBLIC_KEY_LENGTH, COMPOSITE_SEED_LENGTH, COMPOSITE_SIGNATURE_LENGTH } from './crypto/composite.js';
export type { CompositeKeyPair } from './crypto/composite.js';
export type { CryptoBackend, BackendName, BackendReport, AeadAlgorithm } from './crypto/types.js';
export * from './resumption/index.js';
export { DEFAULT_TICKET_LIFETIME_SECONDS } from './handshake/resumption.js';
export type { ServerTicketConfig, TicketsWithheld } from './handshake/resumption.js';
export * from './transport/index.js';
export * from './audit/index.js';
export * from './pins/index.js';
