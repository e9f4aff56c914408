/**
 * Agent identity and attestation: key fingerprints, the PQCR credential (encode, decode,
 * issue), identities and issuers, and the trust store that verifies peers.
 *
 * The file formats (formats.ts) are here; the node:fs loaders (files.ts: loadIdentity,
 * loadTrustStore, ...) are not, so runtimes without a file system can import this; the
 * package root exports them for Node.
 *
 * Sharp edges: see each module. In short, `decodeCredential` checks structure only; only
 * `TrustStore.verifyCredential` says a credential can be believed.
 */
export { FINGERPRINT_LENGTH, KEY_ALGORITHM_MLDSA65_ED25519, fingerprintHex, keyFingerprint } from './fingerprint.js';
export {
  CREDENTIAL_SIGNATURE_CONTEXT,
  CREDENTIAL_TYPE_TAG,
  CREDENTIAL_VERSION,
  DEFAULT_SERIAL_LENGTH,
  DEFAULT_VALIDITY_SECONDS,
  MAX_ATTRIBUTES,
  MAX_CREDENTIAL_LENGTH,
  MAX_SCOPES,
  MAX_SERIAL_LENGTH,
  SIGNATURE_ALGORITHM_MLDSA65_ED25519,
  CredentialUsageCode,
  DEFAULT_CREDENTIAL_USAGE,
  usagePermits,
  decodeCredential,
  encodeCredentialTbs,
  issueCredential,
  selfSignedCredential,
} from './credential.js';
export type { Credential, CredentialFields, CredentialUsage, CredentialIssuer, CredentialSubject, IssueOptions, SelfSignedSubject } from './credential.js';
export { IDENTITY_SEED_LENGTH, createAgentIdentity, createIssuer, generateIdentitySeed, identityFromSeed } from './identity.js';
export type { AgentIdentity, Issuer } from './identity.js';
export { DEFAULT_CLOCK_SKEW_SECONDS, MAX_CLOCK_SKEW_SECONDS, TrustStore } from './trust.js';
export type { PinnedKey, RevokedSerial, TrustStoreJson, TrustStoreOptions, TrustedIssuer, VerifiedPeer, VerifyCredentialOptions } from './trust.js';
export { TRUST_STORE_JSON_VERSION } from './trust-config.js';
export { base64urlDecode, base64urlEncode } from './base64url.js';
export { checkCredentialWindow, identityFromContents, trustStoreFromContents } from './from-contents.js';
export type { FileContents, IdentityFromContentsOptions } from './from-contents.js';
export {
  COMPOSITE_ALG,
  FILE_FORMAT_VERSION,
  FileType,
  applyRevocations,
  compositeJwks,
  decodeCredentialFile,
  decodePrivateKeyFile,
  decodePublicKeyFile,
  decodeRevocationList,
  decodeTrustFile,
  describeFileKind,
  detectFileKind,
  emptyRevocationList,
  encodeCredentialFile,
  encodePrivateKeyFile,
  encodePublicKeyFile,
  parseFileJson,
} from './formats.js';
export type {
  CredentialFile,
  Ed25519Jwk,
  FileKind,
  KeyKind,
  MlDsaJwk,
  PrivateKeyFields,
  PrivateKeyFile,
  PublicKeyFields,
  PublicKeyFile,
  RevocationList,
  RevokedKeyEntry,
  RevokedSerialEntry,
} from './formats.js';
// --- roles and name constraints (issue 11 item 3) ---
export { MAX_NAME_CONSTRAINTS, normaliseNameConstraint, normaliseNameConstraints, withinNameConstraint, withinNameConstraints } from './name-constraints.js';
