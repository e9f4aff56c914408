/**
 * What the two handshake state machines (client-handshake.ts, server-handshake.ts) share:
 * the configuration's check and defaults (versions, suites), the transcript and the key
 * schedule's secrets (derived, logged, wiped), the failure rule (a state machine that has
 * thrown is dead), this side's authentication (Credential, CredentialVerify, Finished) and
 * the check of the peer's, and the 'complete' action. handshake.ts describes the protocol
 * and re-exports the public parts. Pure: no I/O; randomness and the clock are injected.
 */
import { copyBytes, equalBytes, utf8Encode } from '../bytes.js';
import { compositeSign, compositeVerify } from '../crypto/composite.js';
import { BadFinishedError, BadSignatureError, InvalidArgumentError, PqmcpError, UnexpectedMessageError, DecodeError, toPqmcpError } from '../errors.js';
import type { VerifiedPeer } from '../identity/trust.js';
import { normaliseNameConstraints } from '../identity/name-constraints.js';
import { MsgType, SIG_MLDSA65_ED25519, Suite, SUITE_NAMES, VERSION_1, decodeCredentialMessage, decodeCredentialVerify, decodeFinished, encodeCredentialMessage, encodeCredentialVerify, encodeFinished, expectType, unframeHandshake } from '../wire/messages.js';
import { checkAcceptedEndpoints, checkEndpoint } from './endpoint.js';
import type { VerifyCredentialOptions } from '../identity/trust.js';
import { Transcript, applicationSecrets, exporterSecret, finishedMac, handshakeSecrets, masterSecret } from './key-schedule.js';
import { resumptionMasterSecret } from './resumption.js';
import type { CryptoRequest, CryptoResult, Epoch, HandshakeAction, HandshakeConfig } from './types.js';

export const DEFAULT_VERSIONS: readonly number[] = [VERSION_1];
export const DEFAULT_SUITES: readonly number[] = [Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256, Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256];
export const SUPPORTED_VERSIONS: readonly number[] = [VERSION_1];
export const SUPPORTED_SUITES: readonly number[] = DEFAULT_SUITES;

/** Signature contexts: which side signed is part of what is signed. */
export const SERVER_SIGNATURE_CONTEXT = utf8Encode('PQMCP/1 server CredentialVerify');
export const CLIENT_SIGNATURE_CONTEXT = utf8Encode('PQMCP/1 client CredentialVerify');

/** The default preference where the AEAD is native: AES-256-GCM first (measured faster). */
const NATIVE_AEAD_SUITES: readonly number[] = [Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256, Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256];
/** The portable AEAD: ChaCha20-Poly1305 only (noble's AES is table-based, not constant time). */
const PORTABLE_AEAD_SUITES: readonly number[] = [Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256];

/**
 * Default suites for a backend, in preference order. Where the AEAD is native (OpenSSL),
 * AES-256-GCM comes first: it is cheaper than ChaCha20-Poly1305 at every message size the
 * benchmarks measure (docs/benchmarks.md: `pqmcp` over `pqmcp-chacha`), as TLS servers prefer it where AES
 * is in hardware. The portable backend offers ChaCha20-Poly1305 only, so a browser or
 * noble client still gets ChaCha20-Poly1305 from a native server. Explicit `suites`
 * override this.
 */
export function defaultSuites(config: HandshakeConfig): readonly number[] {
  return config.backend.report.aead === 'native' ? NATIVE_AEAD_SUITES : PORTABLE_AEAD_SUITES;
}

function checkConfig(config: HandshakeConfig): { versions: readonly number[]; suites: readonly number[] } {
  const versions = config.versions ?? DEFAULT_VERSIONS;
  const suites = config.suites ?? defaultSuites(config);
  const skew = config.clockSkewSeconds;
  if (skew !== undefined && !(Number.isFinite(skew) && skew >= 0 && skew <= 3600)) {
    throw new InvalidArgumentError('clockSkewSeconds must be a number of seconds in [0, 3600]');
  }
  if (versions.length === 0 || versions.some((v) => !SUPPORTED_VERSIONS.includes(v))) {
    throw new InvalidArgumentError(`versions must be a non-empty subset of [${SUPPORTED_VERSIONS.join(', ')}]`);
  }
  if (suites.length === 0 || suites.some((s) => !SUPPORTED_SUITES.includes(s))) {
    throw new InvalidArgumentError(`suites must be a non-empty subset of [${SUPPORTED_SUITES.map((s) => SUITE_NAMES[s]).join(', ')}]`);
  }
  return { versions, suites };
}

export abstract class HandshakeBase {
  protected readonly transcript: Transcript;
  protected readonly versions: readonly number[];
  protected readonly suites: readonly number[];
  protected version = 0;
  protected suite = 0;
  protected peer: VerifiedPeer | undefined;
  protected clientHandshakeSecret: Uint8Array | undefined;
  protected serverHandshakeSecret: Uint8Array | undefined;
  protected master: Uint8Array | undefined;
  /** Resumption: set once a ticket is accepted (both sides); the PSK's handshake salt. */
  protected resumed = false;
  protected pskSalt: Uint8Array | undefined;
  private failure: PqmcpError | undefined;
  abstract readonly role: 'client' | 'server';
  protected abstract state: string;

  /** Server: the endpoints served (checked against the ClientHello's endpoint extension). */
  protected readonly acceptEndpoints: readonly string[] | undefined;

  constructor(protected readonly config: HandshakeConfig) {
    const { versions, suites } = checkConfig(config);
    this.versions = versions;
    this.suites = suites;
    if (config.endpoint !== undefined) checkEndpoint(config.endpoint, 'endpoint');
    if (config.peerIdConstraints !== undefined) normaliseNameConstraints(config.peerIdConstraints, 'peerIdConstraints');
    this.acceptEndpoints = config.acceptEndpoints !== undefined ? checkAcceptedEndpoints(config.acceptEndpoints, 'acceptEndpoints') : undefined;
    this.transcript = new Transcript(config.backend);
  }

  /** The negotiated suite (0 until the hellos are done). */
  get negotiatedSuite(): number {
    return this.suite;
  }

  get currentState(): string {
    return this.failure ? 'failed' : this.state;
  }

  /** Feed one framed handshake message that arrived in `epoch`. */
  receive(message: Uint8Array, epoch: Epoch): HandshakeAction[] {
    return this.guarded(() => {
      if (this.state === 'done') throw new UnexpectedMessageError('handshake message after the handshake completed');
      // Own copy: the transcript and decoded fields keep views into it, and a transport
      // may reuse its receive buffers.
      const own = copyBytes(message);
      const { type, body } = unframeHandshake(own);
      return this.handle(type, body, own, epoch);
    });
  }

  /** Continue after a 'compute' action with its result (deferCrypto only). */
  resume(result: CryptoResult): HandshakeAction[] {
    return this.guarded(() => this.onResult(result));
  }

  private guarded(fn: () => HandshakeAction[]): HandshakeAction[] {
    if (this.failure) throw this.failure;
    try {
      return fn();
    } catch (err) {
      this.failure = toPqmcpError(err);
      this.dispose();
      throw this.failure;
    }
  }

  /**
   * Done with this handshake before it completed (it failed, or the session failed or
   * closed): wipe the key-schedule secrets it holds and, on the client, dispose of the
   * key share's key pair. Idempotent. The session calls it; a failed state machine calls it
   * itself.
   */
  dispose(): void {
    for (const secret of [this.master, this.clientHandshakeSecret, this.serverHandshakeSecret, this.pskSalt]) secret?.fill(0);
    this.master = this.clientHandshakeSecret = this.serverHandshakeSecret = this.pskSalt = undefined;
  }

  protected abstract handle(type: number, body: Uint8Array, framed: Uint8Array, epoch: Epoch): HandshakeAction[];

  protected onResult(_result: CryptoResult): HandshakeAction[] {
    throw new InvalidArgumentError('resume() without a pending compute action');
  }

  /** Compute a request here and now (the default, inline path). */
  protected computeInline(request: CryptoRequest): CryptoResult {
    const { backend, identity } = this.config;
    if (request.op === 'encapsulate') return { op: 'encapsulate', ...backend.xwing.encapsulate(request.publicKey, request.randomness) };
    return { op: 'sign', signature: compositeSign(backend, identity.keyPair, request.message, request.context, request.randomness) };
  }

  protected log(label: string, secret: Uint8Array): void {
    this.config.keyLog?.(label, copyBytes(secret));
  }

  /** Derive and log the handshake and master secrets from the X-Wing shared secret. */
  protected deriveHandshake(sharedSecret: Uint8Array): { clientHandshake: Uint8Array; serverHandshake: Uint8Array } {
    const { backend } = this.config;
    this.log('xwing_shared_secret', sharedSecret);
    const secrets = handshakeSecrets(backend, sharedSecret, this.transcript.hash(), this.pskSalt);
    sharedSecret.fill(0);
    this.pskSalt?.fill(0);
    this.pskSalt = undefined;
    this.clientHandshakeSecret = secrets.clientHandshake;
    this.serverHandshakeSecret = secrets.serverHandshake;
    this.master = masterSecret(backend, secrets.handshakeSecret);
    this.log('handshake_secret', secrets.handshakeSecret);
    this.log('c_hs_traffic', secrets.clientHandshake);
    this.log('s_hs_traffic', secrets.serverHandshake);
    this.log('master_secret', this.master);
    secrets.handshakeSecret.fill(0);
    return secrets;
  }

  /** Application traffic secrets over the transcript through the server Finished. */
  protected deriveApplication(): { client: Uint8Array; server: Uint8Array } {
    const app = applicationSecrets(this.config.backend, this.master!, this.transcript.hash());
    this.log('c_ap_traffic_0', app.client);
    this.log('s_ap_traffic_0', app.server);
    return app;
  }

  /** `n` random bytes; `purpose` names the draw for known-answer vectors. */
  protected random(n: number, purpose: string): Uint8Array {
    return this.config.random ? this.config.random(n, `${this.role} ${purpose}`) : this.config.backend.randomBytes(n);
  }

  /** ML-DSA `rnd`: explicit only in deterministic mode. */
  protected signingRandomness(): Uint8Array | undefined {
    return this.config.random ? this.config.random(32, `${this.role} CredentialVerify ML-DSA rnd`) : undefined;
  }

  protected requireEpoch(epoch: Epoch, required: Epoch, what: string): void {
    if (epoch !== required) throw new UnexpectedMessageError(`${what} must arrive in the ${required} epoch, got ${epoch}`);
  }

  /** Our Credential, CredentialVerify and Finished, appended to the transcript. */
  protected authenticate(signatureContext: Uint8Array, finishedBase: Uint8Array): Uint8Array[] {
    const { credential, request } = this.presentCredential(signatureContext);
    const result = this.computeInline(request) as { signature: Uint8Array };
    return [credential, ...this.proveCredential(result.signature, finishedBase)];
  }

  /** Our Credential, appended to the transcript, and the signature request over it. */
  protected presentCredential(signatureContext: Uint8Array): { credential: Uint8Array; request: CryptoRequest } {
    const { identity } = this.config;
    const encoded = identity.credential instanceof Uint8Array ? identity.credential : identity.credential.encoded;
    const credential = encodeCredentialMessage(encoded);
    this.transcript.add(credential);
    const randomness = this.signingRandomness();
    const request: CryptoRequest = { op: 'sign', message: this.transcript.hash(), context: signatureContext, ...(randomness ? { randomness } : {}) };
    return { credential, request };
  }

  /** Our CredentialVerify (carrying `signature`) and Finished, appended to the transcript. */
  protected proveCredential(signature: Uint8Array, finishedBase: Uint8Array): Uint8Array[] {
    const verify = encodeCredentialVerify({ algorithm: SIG_MLDSA65_ED25519, signature });
    this.transcript.add(verify);
    const finished = encodeFinished(finishedMac(this.config.backend, finishedBase, this.transcript.hash()));
    this.transcript.add(finished);
    return [verify, finished];
  }

  /** A resumed side's only authentication: its Finished (no Credential, no signature). */
  protected finishedOnly(finishedBase: Uint8Array): Uint8Array[] {
    const finished = encodeFinished(finishedMac(this.config.backend, finishedBase, this.transcript.hash()));
    this.transcript.add(finished);
    return [finished];
  }

  protected nowMs(): number {
    return (this.config.now ?? Date.now)();
  }

  /** This side's credential bytes. */
  protected ownCredential(): Uint8Array {
    const c = this.config.identity.credential;
    return c instanceof Uint8Array ? c : c.encoded;
  }

  /** How the peer's credential is checked (full handshakes and ticket re-checks alike). */
  protected verifyOptions(): VerifyCredentialOptions {
    const options: VerifyCredentialOptions = {};
    if (this.config.now) options.now = this.config.now;
    if (this.config.clockSkewSeconds !== undefined) options.clockSkewSeconds = this.config.clockSkewSeconds;
    if (this.config.expectedPeerId !== undefined) options.expectedPeerId = this.config.expectedPeerId;
    if (this.config.peerIdConstraints !== undefined) options.peerIdConstraints = this.config.peerIdConstraints;
    // The peer plays the other role: its credential's usage must permit it (alert 101).
    options.peerRole = this.role === 'client' ? 'server' : 'client';
    return options;
  }

  /** The context the peer's CredentialVerify must be made under (the other role's). */
  protected abstract readonly peerSignatureContext: Uint8Array;

  /** The peer's Credential, then its CredentialVerify; returns the next state. */
  protected peerAuthentication(state: 'wait-credential' | 'wait-verify', type: number, body: Uint8Array, framed: Uint8Array, epoch: Epoch): 'wait-verify' | 'wait-finished' {
    if (state === 'wait-credential') {
      expectType(type, MsgType.credential, state);
      this.requireEpoch(epoch, 'handshake', 'Credential');
      this.onPeerCredential(body, framed);
      return 'wait-verify';
    }
    expectType(type, MsgType.credentialVerify, state);
    this.requireEpoch(epoch, 'handshake', 'CredentialVerify');
    this.onPeerVerify(body, framed, this.peerSignatureContext);
    return 'wait-finished';
  }

  /** The peer's Credential: decode and verify against the trust store (typed errors). */
  private onPeerCredential(body: Uint8Array, framed: Uint8Array): void {
    const credential = decodeCredentialMessage(body);
    this.peer = this.config.trust.verifyCredential(this.config.backend, credential, this.verifyOptions());
    this.transcript.add(framed);
  }

  /** The peer's CredentialVerify: its composite signature over the transcript so far. */
  private onPeerVerify(body: Uint8Array, framed: Uint8Array, context: Uint8Array): void {
    const { algorithm, signature } = decodeCredentialVerify(body);
    if (algorithm !== SIG_MLDSA65_ED25519) throw new DecodeError(`unknown signature algorithm ${algorithm}`);
    const peer = this.peer;
    if (!peer || !compositeVerify(this.config.backend, peer.publicKey, this.transcript.hash(), signature, context)) {
      throw new BadSignatureError();
    }
    this.transcript.add(framed);
  }

  /** The peer's Finished: constant-time MAC check over the transcript so far. */
  protected onPeerFinished(type: number, body: Uint8Array, framed: Uint8Array, epoch: Epoch, base: Uint8Array): void {
    expectType(type, MsgType.finished, 'wait-finished');
    this.requireEpoch(epoch, 'handshake', 'Finished');
    const received = decodeFinished(body);
    const expected = finishedMac(this.config.backend, base, this.transcript.hash());
    if (!equalBytes(received, expected)) throw new BadFinishedError();
    this.transcript.add(framed);
  }

  /**
   * The 'complete' action. Derives the exporter secret, then wipes every secret this state
   * machine still holds: the traffic secrets now belong to the session (which wipes them on
   * key update and close) and nothing else is needed again.
   */
  protected complete(): Extract<HandshakeAction, { type: 'complete' }> & { resumptionSecret: Uint8Array } {
    if (!this.peer || !this.master) throw new UnexpectedMessageError('handshake incomplete');
    const transcriptHash = this.transcript.hash();
    const exporter = exporterSecret(this.config.backend, this.master, transcriptHash);
    this.log('exporter_secret', exporter);
    const resumptionSecret = resumptionMasterSecret(this.config.backend, this.master, transcriptHash);
    this.log('resumption_master_secret', resumptionSecret);
    this.master.fill(0);
    this.clientHandshakeSecret?.fill(0);
    this.serverHandshakeSecret?.fill(0);
    this.master = this.clientHandshakeSecret = this.serverHandshakeSecret = undefined;
    return {
      type: 'complete',
      result: { version: this.version, suite: this.suite, peer: this.peer, transcriptHash, resumed: this.resumed },
      exporterSecret: exporter,
      resumptionSecret,
    };
  }
}
