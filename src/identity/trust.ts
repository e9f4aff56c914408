/**
 * The trust store: which issuers vouch for agents, which keys are pinned, what is revoked;
 * and credential verification against it.
 *
 * Verification order (each step throws a typed error; the first failure wins):
 *   1. decode: size and canonical form, no signature work            DecodeError
 *   2. issuer: by issuer_fingerprint AND issuer_id                   UntrustedIssuerError
 *      self-signed (issuer = own key and id) only if pinned          CredentialInvalidError
 *   2a. the issuer entry's name constraints admit agent_id           NameConstraintError
 *   2b. usage permits the role the peer plays (`peerRole`)           CredentialUsageError
 *   3. composite signature over the TBS bytes                        BadSignatureError
 *   4. validity window, +- clockSkewSeconds                          CredentialNotYetValidError / CredentialExpiredError
 *   5. revoked serial (per issuer id) or revoked key                 CredentialRevokedError
 *   6. a pin for this agent id names a different key                 CredentialInvalidError
 *   7. expectedPeerId differs                                        UnexpectedPeerError
 *      agent_id outside peerIdConstraints                            NameConstraintError
 *
 * Sharp edges:
 * - Steps 1-2b run before any signature work, so malformed or unknown-issuer credentials cost
 *   a peer nothing but a hash. Their errors depend only on public data.
 * - A trusted fingerprint with a different issuer_id is UntrustedIssuerError: the pair
 *   (id, key) is what is trusted, never the key alone.
 * - A Credential object passed in is re-decoded from its `encoded` bytes; its other fields
 *   are ignored, so a hand-built object cannot smuggle in unsigned values.
 * - The window is inclusive at both ends: valid iff
 *   not_before - skew <= now <= not_after + skew (now in milliseconds, compared exactly).
 *   The default skew is 60 s; at most 3600 s is accepted.
 * - revokedKeys covers both the agent's key and the issuer's key: a revoked issuer key
 *   vouches for nothing.
 * - A pin binds a key to one agent id, both ways: that agent must present that key, and a
 *   self-signed credential with that key must claim that agent id.
 * - The store is mutable (add*, revoke*, remove*, replaceWith); each verification sees its
 *   state at that moment. Every change that adds or removes trust bumps `generation`, and
 *   `onChange` listeners hear of it, once per microtask however many changes were made in
 *   it, so live sessions can be re-checked (`recheckCredential`: every step but the
 *   signature). A listener that throws is ignored.
 * - Name constraints (name-constraints.ts) belong to an issuer entry (an id and one key).
 *   Adding an issuer that is already trusted with other constraints replaces them; a change
 *   bumps `generation` like any other change of trust.
 * - Step 3 is skipped when the verified-credential cache (verified-cache.ts) says these exact
 *   bytes passed it under the current generation; every other step always runs.
 *   `verifiedCacheSize(0)` turns the cache off.
 */
import { equalBytes, fromHex, toHex } from '../bytes.js';
import { compositeVerify } from '../crypto/composite.js';
import type { CryptoBackend } from '../crypto/types.js';
import {
  BadSignatureError,
  CredentialExpiredError,
  CredentialInvalidError,
  CredentialNotYetValidError,
  CredentialRevokedError,
  CredentialUsageError,
  InvalidArgumentError,
  NameConstraintError,
  UnexpectedPeerError,
  UntrustedIssuerError,
} from '../errors.js';
import { base64urlEncode } from './base64url.js';
import { CREDENTIAL_SIGNATURE_CONTEXT, decodeCredential, usagePermits } from './credential.js';
import type { Credential, CredentialUsage } from './credential.js';
import { keyFingerprint } from './fingerprint.js';
import { VerifiedCredentialCache } from './verified-cache.js';
import { normaliseNameConstraints, withinNameConstraints } from './name-constraints.js';
import {
  TRUST_STORE_JSON_VERSION,
  checkFingerprintHex,
  checkIssuer,
  checkPin,
  checkRevokedSerial,
  checkSerialHex,
  checkTrustStoreOptions,
} from './trust-config.js';
import type { PinnedKey, RevokedSerial, TrustStoreJson, TrustStoreOptions, TrustedIssuer } from './trust-config.js';

export type { PinnedKey, RevokedSerial, TrustStoreJson, TrustStoreOptions, TrustedIssuer } from './trust-config.js';

export const DEFAULT_CLOCK_SKEW_SECONDS = 60;
export const MAX_CLOCK_SKEW_SECONDS = 3600;

export interface VerifyCredentialOptions {
  /** Clock in milliseconds since the epoch. Default Date.now. */
  now?: () => number;
  /** Allowed clock difference in seconds, 0..3600. Default 60. */
  clockSkewSeconds?: number;
  /** Refuse the credential unless its agent id is exactly this. */
  expectedPeerId?: string;
  // --- roles (issue 11 item 3) ---
  /**
   * The role the credential's holder plays in this handshake: its `usage` must permit it
   * (CredentialUsageError, alert 101). The handshake always sets it; unset, usage is not checked.
   */
  peerRole?: 'client' | 'server';
  /**
   * Refuse the credential unless its agent id is within one of these constraints
   * (name-constraints.ts syntax; NameConstraintError, alert 102). A client's
   * `serverIdConstraints`.
   */
  peerIdConstraints?: readonly string[];
}

/** A credential that passed every check, in the shape higher layers use. */
export interface VerifiedPeer {
  agentId: string;
  displayName: string;
  /** Lowercase hex fingerprint of the peer's public key: its stable token. */
  fingerprint: string;
  publicKey: Uint8Array;
  /** The role(s) the credential permits (always checked against the role played in a handshake). */
  usage: CredentialUsage;
  scopes: string[];
  attributes: Record<string, string>;
  /** Unix seconds. */
  notBefore: number;
  /** Unix seconds. */
  notAfter: number;
  /** Lowercase hex. */
  serial: string;
  /** issuer_id (the agent id itself when self-signed). */
  issuer: string;
  selfSigned: boolean;
  credential: Credential;
}

interface IssuerEntry {
  id: string;
  publicKey: Uint8Array;
  /** Normalised name constraints; undefined = unconstrained. */
  constraints?: readonly string[];
  /** Computed on first use, with whichever backend verifies first (SHA-256 is the same everywhere). */
  fingerprint?: Uint8Array;
}

interface PinEntry {
  fingerprint: Uint8Array;
  agentId: string;
}

interface SerialEntry {
  issuer: string;
  serial: Uint8Array;
}

function skewSeconds(value: unknown): number {
  if (value === undefined) return DEFAULT_CLOCK_SKEW_SECONDS;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_CLOCK_SKEW_SECONDS) {
    throw new InvalidArgumentError(`clockSkewSeconds must be a number of seconds in [0, ${MAX_CLOCK_SKEW_SECONDS}]`);
  }
  return value;
}

function nowMilliseconds(now: (() => number) | undefined): number {
  if (now !== undefined && typeof now !== 'function') throw new InvalidArgumentError('now must be a function returning milliseconds');
  const ms = (now ?? Date.now)();
  if (typeof ms !== 'number' || !Number.isFinite(ms)) throw new InvalidArgumentError('now() must return a finite number of milliseconds');
  return ms;
}

function sameConstraints(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.length === b.length && a.every((c, i) => c === b[i]);
}

export class TrustStore {
  private readonly issuers: IssuerEntry[] = [];
  private readonly pins: PinEntry[] = [];
  private readonly revokedSerials: SerialEntry[] = [];
  private readonly revokedKeys: Uint8Array[] = [];
  private _generation = 0;
  private readonly verified = new VerifiedCredentialCache();
  private readonly listeners = new Set<() => void>();
  private notifyScheduled = false;

  constructor(options: TrustStoreOptions = {}) {
    this.load(checkTrustStoreOptions(options, 'trust store: ', false));
  }

  private load(options: Required<TrustStoreOptions>): void {
    for (const issuer of options.issuers) this.addIssuer(issuer);
    for (const pin of options.pinned) this.addPin(pin);
    for (const entry of options.revokedSerials) this.revokeSerial(entry);
    for (const fingerprint of options.revokedKeys) this.revokeKey(fingerprint);
  }

  /**
   * Trust `issuer.publicKey` to vouch for agents when a credential names `issuer.id`.
   * Adding the same pair twice is a no-op; the same key under a second id is refused.
   * One id may have several keys (rotation).
   */
  addIssuer(issuer: TrustedIssuer): this {
    const { id, publicKey, constraints } = checkIssuer(issuer, 'trust store: ', 'issuer', false);
    const sameKey = this.issuers.find((e) => equalBytes(e.publicKey, publicKey));
    if (sameKey) {
      if (sameKey.id !== id) throw new InvalidArgumentError(`issuer key is already trusted under another id (${JSON.stringify(sameKey.id)})`);
      if (sameConstraints(sameKey.constraints, constraints)) return this;
      // The same issuer with other name constraints: they replace the old ones.
      if (constraints === undefined) delete sameKey.constraints;
      else sameKey.constraints = constraints;
      this.changed();
      return this;
    }
    this.issuers.push({ id, publicKey, ...(constraints !== undefined ? { constraints } : {}) });
    this.changed();
    return this;
  }

  /** Pin a key fingerprint (hex) to an agent id. */
  addPin(pin: PinnedKey): this {
    const { fingerprint, agentId } = checkPin(pin, 'trust store: ', 'pin', false);
    const bytes = fromHex(fingerprint);
    if (!this.pins.some((p) => p.agentId === agentId && equalBytes(p.fingerprint, bytes))) {
      this.pins.push({ fingerprint: bytes, agentId });
      this.changed();
    }
    return this;
  }

  /** Revoke the credential with this serial (hex or bytes) from this issuer id. */
  revokeSerial(entry: { issuer: string; serial: string | Uint8Array }): this {
    const given = entry?.serial;
    const serial = given instanceof Uint8Array ? toHex(given) : given;
    const checked = checkRevokedSerial({ issuer: entry?.issuer, serial }, 'trust store: ', 'revokedSerial', false);
    const bytes = fromHex(checked.serial);
    if (!this.revokedSerials.some((s) => s.issuer === checked.issuer && equalBytes(s.serial, bytes))) {
      this.revokedSerials.push({ issuer: checked.issuer, serial: bytes });
      this.changed();
    }
    return this;
  }

  /** Revoke a key (hex fingerprint): as an agent key and as an issuer key. */
  revokeKey(fingerprint: string): this {
    const bytes = fromHex(checkFingerprintHex(fingerprint, 'trust store: ', 'revokedKey'));
    if (!this.revokedKeys.some((k) => equalBytes(k, bytes))) {
      this.revokedKeys.push(bytes);
      this.changed();
    }
    return this;
  }

  /**
   * Stop trusting an issuer id: all its keys, or only `publicKey` when given. Returns how
   * many keys were removed. Sessions vouched for by them end (see onChange).
   */
  removeIssuer(id: string, publicKey?: Uint8Array): number {
    if (typeof id !== 'string') throw new InvalidArgumentError('removeIssuer: id must be a string');
    if (publicKey !== undefined && !(publicKey instanceof Uint8Array)) throw new InvalidArgumentError('removeIssuer: publicKey must be bytes');
    const before = this.issuers.length;
    const kept = this.issuers.filter((e) => e.id !== id || (publicKey !== undefined && !equalBytes(e.publicKey, publicKey)));
    this.issuers.splice(0, this.issuers.length, ...kept);
    const removed = before - kept.length;
    if (removed > 0) this.changed();
    return removed;
  }

  /** Remove the pin of this key fingerprint (hex) for this agent id. Returns whether one was removed. */
  removePin(pin: PinnedKey): boolean {
    const { fingerprint, agentId } = checkPin(pin, 'trust store: ', 'pin', false);
    const bytes = fromHex(fingerprint);
    const i = this.pins.findIndex((p) => p.agentId === agentId && equalBytes(p.fingerprint, bytes));
    if (i === -1) return false;
    this.pins.splice(i, 1);
    this.changed();
    return true;
  }

  /**
   * Take the contents of `other` (e.g. a trust file reloaded from disk), in place: every
   * verifier and session that holds this store sees the new state, and listeners hear of it
   * once.
   */
  replaceWith(other: TrustStore): this {
    if (!(other instanceof TrustStore)) throw new InvalidArgumentError('replaceWith: expected a TrustStore');
    if (other === this) return this;
    this.issuers.splice(0, this.issuers.length, ...other.issuers.map((e) => ({ ...e })));
    this.pins.splice(0, this.pins.length, ...other.pins);
    this.revokedSerials.splice(0, this.revokedSerials.length, ...other.revokedSerials);
    this.revokedKeys.splice(0, this.revokedKeys.length, ...other.revokedKeys);
    this.changed();
    return this;
  }

  /**
   * Call `listener` after the store changes (once per microtask, however many changes).
   * Returns the function that unsubscribes it.
   */
  onChange(listener: () => void): () => void {
    if (typeof listener !== 'function') throw new InvalidArgumentError('onChange: listener must be a function');
    const own = (): void => listener();
    this.listeners.add(own);
    return () => void this.listeners.delete(own);
  }

  /** Steps 5 and 6. */
  private checkRevocationAndPins(cred: Credential, fingerprint: Uint8Array): void {
    if (this.revokedSerials.some((s) => s.issuer === cred.issuerId && equalBytes(s.serial, cred.serial))) throw new CredentialRevokedError('serial');
    if (this.revokedKeys.some((k) => equalBytes(k, fingerprint) || equalBytes(k, cred.issuerFingerprint))) throw new CredentialRevokedError('key');
    const pinsForAgent = this.pins.filter((p) => p.agentId === cred.agentId);
    if (pinsForAgent.length > 0 && !pinsForAgent.some((p) => equalBytes(p.fingerprint, fingerprint))) {
      throw new CredentialInvalidError(`${JSON.stringify(cred.agentId)} presented a key other than its pinned key`);
    }
  }

  /**
   * A counter that changes whenever trust changes (issuer or pin added, serial or key
   * revoked). Anything derived from a verification (the verified-credential cache, a
   * resumption ticket's re-check) is only reused under the generation it was made under.
   * Any mutator added later must call `changed()`.
   */
  get generation(): number {
    return this._generation;
  }

  /** Bound the verified-credential cache (default 1024 entries; 0 disables it). */
  verifiedCacheSize(entries: number): this {
    this.verified.resize(entries);
    return this;
  }

  private changed(): void {
    this._generation++;
    this.verified.clear();
    this.notify();
  }

  /** Tell the onChange listeners, once per microtask. */
  private notify(): void {
    if (this.notifyScheduled || this.listeners.size === 0) return;
    this.notifyScheduled = true;
    queueMicrotask(() => {
      this.notifyScheduled = false;
      for (const listener of [...this.listeners]) {
        try {
          listener();
        } catch {
          // One listener's failure must not stop the others.
        }
      }
    });
  }

  /** The JSON form (see trust-config.ts); `JSON.stringify(store)` uses it. */
  toJSON(): TrustStoreJson {
    return {
      version: TRUST_STORE_JSON_VERSION,
      issuers: this.issuers.map((e) => ({ id: e.id, publicKey: base64urlEncode(e.publicKey), ...(e.constraints !== undefined ? { constraints: [...e.constraints] } : {}) })),
      pinned: this.pins.map((p) => ({ fingerprint: toHex(p.fingerprint), agentId: p.agentId })),
      revokedSerials: this.revokedSerials.map((s) => ({ issuer: s.issuer, serial: toHex(s.serial) })),
      revokedKeys: this.revokedKeys.map((k) => toHex(k)),
    };
  }

  /** Parse the JSON form (an object, or its JSON text). Strict: InvalidArgumentError naming the bad field. */
  static fromJSON(json: unknown): TrustStore {
    let value = json;
    if (typeof json === 'string') {
      try {
        value = JSON.parse(json);
      } catch {
        throw new InvalidArgumentError('trust store JSON: not valid JSON');
      }
    }
    const store = new TrustStore();
    store.load(checkTrustStoreOptions(value, 'trust store JSON: ', true));
    return store;
  }

  private issuerFingerprint(backend: CryptoBackend, entry: IssuerEntry): Uint8Array {
    entry.fingerprint ??= keyFingerprint(backend, entry.publicKey);
    return entry.fingerprint;
  }

  /** Verify a peer's credential (bytes, or a decoded Credential) in the order listed above. */
  verifyCredential(backend: CryptoBackend, credential: Uint8Array | Credential, options: VerifyCredentialOptions = {}): VerifiedPeer {
    return this.check(backend, credential, options, false);
  }

  /**
   * Every step except 3 (the issuer's signature), for a credential this deployment verified
   * in full before and kept where no one else could change it: inside a resumption ticket
   * sealed under our own ticket key, or in a client's own session memory. Issuer trust,
   * validity, revocation, pins and the expected peer are all checked against the store as it
   * is now. Never call it on bytes a peer just sent.
   */
  recheckCredential(backend: CryptoBackend, credential: Uint8Array, options: VerifyCredentialOptions = {}): VerifiedPeer {
    return this.check(backend, credential, options, true);
  }

  private check(backend: CryptoBackend, credential: Uint8Array | Credential, options: VerifyCredentialOptions, signatureVouchedFor: boolean): VerifiedPeer {
    const skew = skewSeconds(options.clockSkewSeconds);
    const expected = options.expectedPeerId;
    if (expected !== undefined && typeof expected !== 'string') throw new InvalidArgumentError('expectedPeerId must be a string');
    const role = options.peerRole;
    if (role !== undefined && role !== 'client' && role !== 'server') throw new InvalidArgumentError('peerRole must be "client" or "server"');
    const peerConstraints = options.peerIdConstraints === undefined ? undefined : normaliseNameConstraints(options.peerIdConstraints, 'peerIdConstraints');
    const bytes = credential instanceof Uint8Array ? credential : (credential as Partial<Credential> | undefined)?.encoded;
    if (!(bytes instanceof Uint8Array)) throw new InvalidArgumentError('credential must be encoded bytes or a decoded Credential');

    // 1. Structure.
    const cred = decodeCredential(bytes);

    // 2. Who vouches for it.
    const fingerprint = keyFingerprint(backend, cred.publicKey);
    const selfSigned = cred.issuerId === cred.agentId && equalBytes(cred.issuerFingerprint, fingerprint);
    let issuerKey: Uint8Array;
    if (selfSigned) {
      // Only a pin binding exactly this key to exactly this agent id admits it.
      const pinned = this.pins.some((p) => p.agentId === cred.agentId && equalBytes(p.fingerprint, fingerprint));
      if (!pinned) throw new CredentialInvalidError(`self-signed credential of ${JSON.stringify(cred.agentId)} is not pinned`);
      issuerKey = cred.publicKey;
    } else {
      const issuer = this.issuers.find((e) => e.id === cred.issuerId && equalBytes(this.issuerFingerprint(backend, e), cred.issuerFingerprint));
      if (!issuer) throw new UntrustedIssuerError(cred.issuerId);
      // 2a. The names this issuer may vouch for (public data, before any signature work).
      if (issuer.constraints !== undefined && !withinNameConstraints(cred.agentId, issuer.constraints)) throw new NameConstraintError(cred.agentId, cred.issuerId);
      issuerKey = issuer.publicKey;
    }

    // 2b. The role it plays (public data, before any signature work).
    if (role !== undefined && !usagePermits(cred.usage, role)) throw new CredentialUsageError(cred.usage, role);

    // 3. The issuer's signature, unless these exact bytes passed it under this generation.
    // Cached only once every step has passed (a credential that fails later is not kept).
    const nowMs = nowMilliseconds(options.now);
    let cacheAs: string | undefined;
    if (!signatureVouchedFor) {
      const key = VerifiedCredentialCache.keyOf(backend, cred.encoded);
      if (!this.verified.has(key, this._generation, nowMs, skew)) {
        if (!compositeVerify(backend, issuerKey, cred.tbs, cred.signature, CREDENTIAL_SIGNATURE_CONTEXT)) throw new BadSignatureError();
        cacheAs = key;
      }
    }

    // 4. Validity window, inclusive, with skew.
    if (nowMs < (cred.notBefore - skew) * 1000) throw new CredentialNotYetValidError(cred.notBefore);
    if (nowMs > (cred.notAfter + skew) * 1000) throw new CredentialExpiredError(cred.notAfter);

    // 5-6. Revocation, pins for this agent id.
    this.checkRevocationAndPins(cred, fingerprint);

    // 7. The peer the caller expects.
    if (expected !== undefined && cred.agentId !== expected) throw new UnexpectedPeerError(expected, cred.agentId);
    if (peerConstraints !== undefined && !withinNameConstraints(cred.agentId, peerConstraints)) {
      throw new NameConstraintError(cred.agentId, undefined, `peer ${JSON.stringify(cred.agentId)} is outside the accepted ids (${peerConstraints.map((c) => JSON.stringify(c)).join(', ')})`);
    }

    if (cacheAs !== undefined) this.verified.add(cacheAs, this._generation, cred.notAfter);

    return {
      agentId: cred.agentId,
      displayName: cred.displayName,
      fingerprint: toHex(fingerprint),
      publicKey: cred.publicKey,
      usage: cred.usage,
      scopes: cred.scopes,
      attributes: cred.attributes,
      notBefore: cred.notBefore,
      notAfter: cred.notAfter,
      serial: toHex(cred.serial),
      issuer: cred.issuerId,
      selfSigned,
      credential: cred,
    };
  }
}
