/**
 * The PQMCP/1 handshake as two pure state machines: framed handshake messages in,
 * `HandshakeAction`s out. No sockets, no timers, no records; the session applies the
 * actions (sends, key installs) in the order given. Randomness and the clock are injected.
 *
 *   Client                                             Server
 *   ClientHello (versions, suites, X-Wing ek)  -------->
 *                                              <--------  ServerHello (version, suite, X-Wing ct)
 *                                                         {Credential} {CredentialVerify} {Finished}
 *   {Credential} {CredentialVerify} {Finished} -------->
 *   [application data]                         <------->  [application data]
 *
 *   {} = protected under handshake traffic keys, [] = under application traffic keys.
 *
 * Resumed (docs/protocol.md section 15; the PSK logic lives in resumption.ts):
 *   ClientHello (+ pre_shared_key: ticket, binder; fresh X-Wing ek) -->
 *                                              <--------  ServerHello (+ pre_shared_key) {Finished}
 *   {Finished}                                 -------->
 *                                              <--------  [NewSessionTicket] (after any handshake)
 *
 * Sharp edges:
 * - Every message is checked against the one state that accepts it and the epoch (plaintext
 *   or handshake-protected) it must arrive in; anything else is UnexpectedMessageError.
 * - A state machine that has thrown is dead: every later call throws the same error.
 * - The server switches its sending side to application keys right after its Finished (as
 *   TLS 1.3 does, so its alerts reach the client), but the session sends application data
 *   only after 'complete': never to an unauthenticated client.
 * - Finished MACs are compared in constant time; signature and MAC failures use constant
 *   messages (BadSignatureError, BadFinishedError).
 * - With `deferCrypto` the server does not encapsulate or sign itself: it returns a
 *   'compute' action (always last) and waits, in 'wait-encapsulation' or 'wait-signature',
 *   for `resume()` with the result. Any message fed meanwhile is unexpected; a result of the
 *   wrong kind or length is refused. Random draws happen in the same order either way, so
 *   an injected `random` gives the same bytes deferred or not.
 * - A client given `ephemeralKeyPair` (made ahead of time by its transport) uses it for this
 *   handshake only: a key pair given to any handshake before (SPENT_KEY_PAIRS), or whose seed
 *   is wiped, is refused at start(). It is disposed of (`xwing.dispose`: seed wiped, the
 *   expanded decapsulation key wiped or dropped, decapsulate refuses it) right after the
 *   ServerHello's decapsulation, and on every path that ends the handshake before that
 *   (`dispose()`: a failure here, or the session failing or closing: a peer alert, a
 *   timeout, a dropped socket). No reference to it is kept past that point: neither in
 *   `config` nor in the Session's options.
 * - `dispose()` also wipes the key-schedule secrets a handshake holds when it ends early.
 */
import { copyBytes, equalBytes, utf8Encode, wipe } from '../bytes.js';
import { MAX_PLAINTEXT_HANDSHAKE } from '../record/constants.js';
import { COMPOSITE_SIGNATURE_LENGTH, compositeSign, compositeVerify } from '../crypto/composite.js';
import { BadFinishedError, BadSignatureError, InvalidArgumentError, PqmcpError, UnexpectedMessageError, UnsupportedExtensionError, UnsupportedSuiteError, UnsupportedVersionError, DecodeError, toPqmcpError } from '../errors.js';
import type { VerifiedPeer } from '../identity/trust.js';
import { normaliseNameConstraints } from '../identity/name-constraints.js';
import {
  KEM_XWING,
  MsgType,
  RANDOM_LENGTH,
  SIG_MLDSA65_ED25519,
  Suite,
  SUITE_NAMES,
  VERSION_1,
  XWING_CIPHERTEXT_LENGTH,
  XWING_PUBLIC_KEY_LENGTH,
  decodeClientHello,
  decodeCredentialMessage,
  decodeCredentialVerify,
  decodeFinished,
  decodeServerHello,
  encodeClientHello,
  encodeCredentialMessage,
  encodeCredentialVerify,
  encodeFinished,
  encodeServerHello,
  expectType,
  peekClientHelloVersions,
  unframeHandshake,
} from '../wire/messages.js';
import type { Extension } from '../wire/messages.js';
import { EXT_ENDPOINT, checkAcceptedEndpoints, checkEndpoint, encodeEndpoint, requireServedEndpoint } from './endpoint.js';
import type { XWingKeyPair } from '../crypto/types.js';
import type { VerifyCredentialOptions } from '../identity/trust.js';
import { EXT_PRE_SHARED_KEY, checkPskAccepted, encodePskAccepted } from '../wire/resumption.js';
import { Transcript, applicationSecrets, exporterSecret, finishedMac, handshakeSecrets, masterSecret } from './key-schedule.js';
import { acceptTicket, bindOffer, issueTickets, ownTicketIdentity, prepareOffer, pskHandshakeSalt, resumptionMasterSecret } from './resumption.js';
import type { ClientOffer, OwnTicketIdentity, ServerContext } from './resumption.js';
import type { CryptoRequest, CryptoResult, Epoch, HandshakeAction, HandshakeConfig, HandshakeResult } from './types.js';

export const DEFAULT_VERSIONS: readonly number[] = [VERSION_1];
export const DEFAULT_SUITES: readonly number[] = [Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256, Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256];
export const SUPPORTED_VERSIONS: readonly number[] = [VERSION_1];
export const SUPPORTED_SUITES: readonly number[] = DEFAULT_SUITES;

/**
 * Ephemeral key pairs given to a client handshake (`ephemeralKeyPair`): each may key one
 * handshake only, so a second handshake given the same object is refused even before the
 * first one wiped its seed.
 */
const SPENT_KEY_PAIRS = new WeakSet<XWingKeyPair>();

/** Signature contexts: which side signed is part of what is signed. */
const SERVER_SIGNATURE_CONTEXT = utf8Encode('PQMCP/1 server CredentialVerify');
const CLIENT_SIGNATURE_CONTEXT = utf8Encode('PQMCP/1 client CredentialVerify');

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

abstract class HandshakeBase {
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

export class ClientHandshake extends HandshakeBase {
  readonly role = 'client';
  protected readonly peerSignatureContext = SERVER_SIGNATURE_CONTEXT;
  protected state: 'start' | 'wait-server-hello' | 'wait-credential' | 'wait-verify' | 'wait-finished' | 'done' = 'start';
  private ephemeral: XWingKeyPair | undefined;
  /**
   * `ephemeralKeyPair` as given, until start() takes it. Not left in `config`: no reference
   * to the key pair may outlive the handshake's use of it (it is disposed of then).
   */
  private given: XWingKeyPair | undefined;
  /** Extension types the ClientHello carried: the only ones a ServerHello may contain. */
  private offeredExtensions: number[] = [];
  /** The ticket offered (resumption), and its early secret until the ServerHello. */
  private offer: ClientOffer | undefined;
  private early: Uint8Array | undefined;

  /** `ephemeralKeyPair`: as config.ephemeralKeyPair (the Session passes it apart, its options keep none). */
  constructor(config: HandshakeConfig, ephemeralKeyPair: XWingKeyPair | undefined = config.ephemeralKeyPair) {
    const { ephemeralKeyPair: _inConfig, ...rest } = config;
    super(_inConfig === undefined ? config : rest);
    this.given = ephemeralKeyPair;
  }

  /** Produce the ClientHello. Call exactly once. */
  start(): HandshakeAction[] {
    if (this.state !== 'start') throw new InvalidArgumentError('client handshake already started');
    const { backend, resumeTicket } = this.config;
    this.ephemeral = this.ephemeralKeyPair();
    const random = this.random(RANDOM_LENGTH, 'random');
    const extensions = this.clientExtensions();
    const keyShare = this.ephemeral.publicKey;
    // pre_shared_key (0x0020) is placed by type like any other extension; its binder is
    // computed over this same encoding with the binder zeroed (resumption.ts).
    const encode = (psk?: Extension): Uint8Array =>
      encodeClientHello({ versions: [...this.versions], random, suites: [...this.suites], kemId: KEM_XWING, keyShare, extensions: psk ? [...extensions, psk].sort((a, b) => a.type - b.type) : extensions });
    this.offer = resumeTicket ? prepareOffer(backend, this.config.trust, resumeTicket, this.ownCredential(), this.suites, this.verifyOptions(), this.nowMs()) : undefined;
    let hello: Uint8Array | undefined;
    if (this.offer) {
      const bound = bindOffer(backend, this.offer, encode);
      if (bound.hello.length <= MAX_PLAINTEXT_HANDSHAKE) {
        this.early = bound.early;
        this.log('early_secret', bound.early);
        hello = bound.hello;
        this.offeredExtensions = [...extensions.map((e) => e.type), EXT_PRE_SHARED_KEY];
      } else {
        // The ticket (it carries this client's credential) would push the ClientHello past
        // one plaintext record: no offer, a full handshake instead of a failure to connect.
        wipe(bound.early);
        this.offer = undefined;
      }
    }
    if (hello === undefined) {
      hello = encode();
      this.offeredExtensions = extensions.map((e) => e.type);
    }
    this.transcript.add(hello);
    this.state = 'wait-server-hello';
    return [{ type: 'send', epoch: 'plaintext', message: hello }];
  }

  override dispose(): void {
    super.dispose();
    // The key pair given (not yet taken by start()) or taken: this handshake owns it. One
    // refused at start() (already given to another handshake) was never taken, so is left alone.
    for (const kp of [this.given, this.ephemeral]) if (kp !== undefined) this.config.backend.xwing.dispose(kp);
    this.given = this.ephemeral = undefined;
    this.early?.fill(0);
    this.early = undefined;
  }

  /** The key share's key pair: the fresh one given (used here once, never again), or a new one. */
  private ephemeralKeyPair(): XWingKeyPair {
    const { backend, random } = this.config;
    const given = this.given;
    this.given = undefined;
    if (given === undefined) return backend.xwing.keygen(this.random(32, 'X-Wing key generation seed'));
    if (random) throw new InvalidArgumentError('ephemeralKeyPair and random are exclusive: a known-answer handshake draws the key pair from random');
    if (SPENT_KEY_PAIRS.has(given) || given.publicKey.length !== XWING_PUBLIC_KEY_LENGTH || given.seed.length !== 32 || given.seed.every((b) => b === 0)) {
      throw new InvalidArgumentError('ephemeralKeyPair must be a fresh X-Wing key pair: this one was already given to a handshake');
    }
    SPENT_KEY_PAIRS.add(given);
    return given;
  }

  /** The ClientHello's extensions, strictly ascending by type. */
  private clientExtensions(): Extension[] {
    const { endpoint } = this.config;
    return endpoint !== undefined ? [{ type: EXT_ENDPOINT, data: encodeEndpoint(endpoint) }] : [];
  }

  protected handle(type: number, body: Uint8Array, framed: Uint8Array, epoch: Epoch): HandshakeAction[] {
    const { backend } = this.config;
    switch (this.state) {
      case 'start':
        throw new UnexpectedMessageError('client received a handshake message before sending ClientHello');
      case 'wait-server-hello': {
        expectType(type, MsgType.serverHello, this.state);
        this.requireEpoch(epoch, 'plaintext', 'ServerHello');
        const sh = decodeServerHello(body);
        // Negotiation check: the server must pick from what we offered (downgrade defence
        // in depth; the transcript signature and Finished cover the full offer as well).
        if (!this.versions.includes(sh.version)) throw new UnsupportedVersionError(`server selected version ${sh.version}, which was not offered`);
        if (!this.suites.includes(sh.suite)) throw new UnsupportedSuiteError(`server selected suite ${sh.suite}, which was not offered`);
        if (sh.kemId !== KEM_XWING) throw new UnsupportedSuiteError(`server selected KEM ${sh.kemId}, which was not offered`);
        // A ServerHello may only answer what the ClientHello offered (TLS 1.3, section 4.2).
        for (const ext of sh.extensions) if (!this.offeredExtensions.includes(ext.type)) throw new UnsupportedExtensionError(ext.type);
        if (sh.ciphertext.length !== XWING_CIPHERTEXT_LENGTH) throw new DecodeError(`X-Wing ciphertext must be ${XWING_CIPHERTEXT_LENGTH} bytes, got ${sh.ciphertext.length}`);
        this.version = sh.version;
        this.suite = sh.suite;
        this.onResumption(sh.extensions);
        const ephemeral = this.ephemeral!;
        this.ephemeral = undefined;
        let shared: Uint8Array;
        try {
          shared = backend.xwing.decapsulate(ephemeral, sh.ciphertext);
        } finally {
          backend.xwing.dispose(ephemeral); // seed and expanded key: it never decapsulates again
        }
        this.transcript.add(framed);
        const secrets = this.deriveHandshake(shared);
        this.state = this.resumed ? 'wait-finished' : 'wait-credential';
        return [
          { type: 'keys', direction: 'receive', epoch: 'handshake', secret: secrets.serverHandshake },
          { type: 'keys', direction: 'send', epoch: 'handshake', secret: secrets.clientHandshake },
        ];
      }
      case 'wait-credential':
      case 'wait-verify':
        this.state = this.peerAuthentication(this.state, type, body, framed, epoch);
        return [];
      case 'wait-finished': {
        this.onPeerFinished(type, body, framed, epoch, this.serverHandshakeSecret!);
        const app = this.deriveApplication();
        const flight = this.resumed ? this.finishedOnly(this.clientHandshakeSecret!) : this.authenticate(CLIENT_SIGNATURE_CONTEXT, this.clientHandshakeSecret!);
        this.state = 'done';
        return [
          ...flight.map((message): HandshakeAction => ({ type: 'send', epoch: 'handshake', message })),
          { type: 'keys', direction: 'send', epoch: 'application', secret: app.client },
          { type: 'keys', direction: 'receive', epoch: 'application', secret: app.server },
          this.complete(),
        ];
      }
      case 'done':
        throw new UnexpectedMessageError('handshake message after the handshake completed');
    }
  }

  /** The ServerHello's pre_shared_key: the ticket offered was accepted (else: a full handshake). */
  private onResumption(extensions: Extension[]): void {
    const accepted = extensions.find((e) => e.type === EXT_PRE_SHARED_KEY);
    const early = this.early;
    this.early = undefined;
    try {
      if (!accepted) return;
      if (!this.offer || !early) throw new UnexpectedMessageError('ServerHello accepts a ticket that was not offered');
      checkPskAccepted(accepted.data);
      if (this.suite !== this.offer.ticket.suite) throw new UnsupportedSuiteError(`server resumed with suite ${this.suite}, but the ticket is for suite ${this.offer.ticket.suite}`);
      this.resumed = true;
      this.peer = this.offer.serverPeer;
      this.pskSalt = pskHandshakeSalt(this.config.backend, early);
    } finally {
      early?.fill(0);
    }
  }
}

export class ServerHandshake extends HandshakeBase {
  readonly role = 'server';
  protected readonly peerSignatureContext = CLIENT_SIGNATURE_CONTEXT;
  protected state: 'wait-client-hello' | 'wait-encapsulation' | 'wait-signature' | 'wait-credential' | 'wait-verify' | 'wait-finished' | 'done' = 'wait-client-hello';
  private applicationClientSecret: Uint8Array | undefined;
  /** Unix seconds of the full handshake behind this session (a resumed one keeps the ticket's). */
  private authTime: number | undefined;
  /** The endpoint the client named (ClientHello 0x0001), once checked against acceptEndpoints. */
  private namedEndpoint: string | undefined;
  /** A ticket offer waiting for the encapsulation (the ClientHello and its extension). */
  private offeredTicket: { framed: Uint8Array; extension: Extension; suites: readonly number[] } | undefined;
  /** This server's identity as tickets bind it: decoded and fingerprinted once a handshake needs it. */
  private ownForTickets: OwnTicketIdentity | undefined;

  private serverContext(): ServerContext {
    const tickets = this.config.tickets!;
    return {
      backend: this.config.backend,
      trust: this.config.trust,
      // Tickets bind the endpoint the client named and this listener checked (authority
      // included), not only the listener's own `tickets.endpoint`: docs/protocol.md 15.4.
      tickets: this.namedEndpoint !== undefined ? { ...tickets, endpoint: this.namedEndpoint } : tickets,
      own: () => (this.ownForTickets ??= ownTicketIdentity(this.config.backend, this.ownCredential(), this.config.identity.keyPair.publicKey)),
      verify: this.verifyOptions(),
      nowMs: this.nowMs(),
    };
  }

  override dispose(): void {
    super.dispose();
    this.applicationClientSecret?.fill(0);
    this.applicationClientSecret = undefined;
  }

  /** Hand the client's application secret to the session (which owns and wipes it). */
  private takeApplicationClientSecret(): Uint8Array {
    const secret = this.applicationClientSecret!;
    this.applicationClientSecret = undefined;
    return secret;
  }

  protected handle(type: number, body: Uint8Array, framed: Uint8Array, epoch: Epoch): HandshakeAction[] {
    switch (this.state) {
      case 'wait-client-hello': {
        expectType(type, MsgType.clientHello, this.state);
        this.requireEpoch(epoch, 'plaintext', 'ClientHello');
        // Versions first, before anything else is parsed: an unknown future layout still
        // gets a clear protocol_version answer.
        const offeredVersions = peekClientHelloVersions(body);
        const version = this.versions.find((v) => offeredVersions.includes(v));
        if (version === undefined) throw new UnsupportedVersionError(`no common protocol version (client offered [${offeredVersions.join(', ')}])`);
        const ch = decodeClientHello(body);
        const suite = this.suites.find((s) => ch.suites.includes(s));
        if (suite === undefined) throw new UnsupportedSuiteError(`no common cipher suite (client offered [${ch.suites.join(', ')}])`);
        if (ch.kemId !== KEM_XWING) throw new UnsupportedSuiteError(`unsupported KEM ${ch.kemId}`);
        if (ch.keyShare.length !== XWING_PUBLIC_KEY_LENGTH) throw new DecodeError(`X-Wing key share must be ${XWING_PUBLIC_KEY_LENGTH} bytes, got ${ch.keyShare.length}`);
        // Endpoint binding (section 5.7): before any crypto work.
        if (this.acceptEndpoints) this.namedEndpoint = requireServedEndpoint(ch.extensions, this.acceptEndpoints);
        // Resumption is decided once the encapsulation is done (acceptOffered): the ticket is
        // opened only after this handshake was admitted (with deferCrypto, its source's rate
        // token taken), so a forged ticket costs no unadmitted work (review F2).
        const offered = this.config.tickets ? ch.extensions.find((e) => e.type === EXT_PRE_SHARED_KEY) : undefined;
        if (offered) this.offeredTicket = { framed, extension: offered, suites: ch.suites }; // views of our own copy (receive())
        this.version = version;
        this.suite = suite;
        this.transcript.add(framed);
        const randomness = this.config.random ? this.random(64, 'X-Wing encapsulation randomness (m || ek_X)') : undefined;
        const request: CryptoRequest = { op: 'encapsulate', publicKey: ch.keyShare, ...(randomness ? { randomness } : {}) };
        return this.computeOrContinue('wait-encapsulation', request);
      }
      case 'wait-encapsulation':
      case 'wait-signature':
        throw new UnexpectedMessageError(`handshake message while the server is computing (${this.state})`);
      case 'wait-credential':
      case 'wait-verify':
        this.state = this.peerAuthentication(this.state, type, body, framed, epoch);
        return [];
      case 'wait-finished': {
        this.onPeerFinished(type, body, framed, epoch, this.clientHandshakeSecret!);
        this.state = 'done';
        const { resumptionSecret, ...complete } = this.complete();
        const tickets = this.config.tickets
          ? issueTickets(this.serverContext(), resumptionSecret, this.suite, complete.result.peer, this.authTime ?? Math.floor(this.nowMs() / 1000), (n) => this.random(n, 'ticket salt'))
          : [];
        resumptionSecret.fill(0);
        return [
          { type: 'keys', direction: 'receive', epoch: 'application', secret: this.takeApplicationClientSecret() },
          complete,
          // After 'complete': the client is verified; tickets go under application keys.
          ...tickets.map((message): HandshakeAction => ({ type: 'send', epoch: 'application', message })),
        ];
      }
      case 'done':
        throw new UnexpectedMessageError('handshake message after the handshake completed');
    }
  }

  /** Deferring: hand `request` out and wait in `state`. Otherwise compute it and go on. */
  private computeOrContinue(state: 'wait-encapsulation' | 'wait-signature', request: CryptoRequest): HandshakeAction[] {
    if (this.config.deferCrypto) {
      this.state = state;
      return [{ type: 'compute', request }];
    }
    this.state = state;
    return this.onResult(this.computeInline(request));
  }

  protected override onResult(result: CryptoResult): HandshakeAction[] {
    if (this.state === 'wait-encapsulation' && result.op === 'encapsulate') {
      if (result.ciphertext.length !== XWING_CIPHERTEXT_LENGTH || result.sharedSecret.length !== 32) throw new InvalidArgumentError('encapsulation result has the wrong length');
      this.acceptOffered();
      return this.afterEncapsulation(result.ciphertext, result.sharedSecret);
    }
    if (this.state === 'wait-signature' && result.op === 'sign') {
      if (result.signature.length !== COMPOSITE_SIGNATURE_LENGTH) throw new InvalidArgumentError('signature result has the wrong length');
      return this.afterSignature(result.signature);
    }
    return super.onResult(result);
  }

  /**
   * Resumption (section 15.4): a usable ticket with a good binder makes this a PSK handshake;
   * any other refusal is reported and ignored (full handshake); a bad binder throws.
   */
  private acceptOffered(): void {
    const offer = this.offeredTicket;
    this.offeredTicket = undefined;
    const accepted = offer ? acceptTicket(this.serverContext(), offer.extension, offer.framed, offer.suites, this.suites) : undefined;
    if (!accepted) return;
    this.suite = accepted.contents.suite;
    this.resumed = true;
    this.peer = accepted.peer;
    this.authTime = accepted.contents.authTime;
    this.pskSalt = pskHandshakeSalt(this.config.backend, accepted.early);
    this.log('early_secret', accepted.early);
    accepted.early.fill(0);
    accepted.contents.psk.fill(0);
  }

  /** ServerHello, handshake keys, our Credential; then the signature over them. */
  private afterEncapsulation(ciphertext: Uint8Array, sharedSecret: Uint8Array): HandshakeAction[] {
    const extensions = this.resumed ? [encodePskAccepted()] : [];
    const hello = encodeServerHello({ version: this.version, random: this.random(RANDOM_LENGTH, 'random'), suite: this.suite, kemId: KEM_XWING, ciphertext, extensions });
    this.transcript.add(hello);
    const secrets = this.deriveHandshake(sharedSecret);
    if (this.resumed) return [{ type: 'send', epoch: 'plaintext', message: hello }, ...this.resumedFlight(secrets)];
    const { credential, request } = this.presentCredential(SERVER_SIGNATURE_CONTEXT);
    const actions: HandshakeAction[] = [
      { type: 'send', epoch: 'plaintext', message: hello },
      { type: 'keys', direction: 'send', epoch: 'handshake', secret: secrets.serverHandshake },
      { type: 'keys', direction: 'receive', epoch: 'handshake', secret: secrets.clientHandshake },
      { type: 'send', epoch: 'handshake', message: credential },
    ];
    return [...actions, ...this.computeOrContinue('wait-signature', request)];
  }

  /** Resumed: handshake keys and our Finished only (no Credential, no signature). */
  private resumedFlight(secrets: { clientHandshake: Uint8Array; serverHandshake: Uint8Array }): HandshakeAction[] {
    const flight = this.finishedOnly(secrets.serverHandshake);
    const app = this.deriveApplication();
    this.applicationClientSecret = app.client;
    this.state = 'wait-finished';
    return [
      { type: 'keys', direction: 'send', epoch: 'handshake', secret: secrets.serverHandshake },
      { type: 'keys', direction: 'receive', epoch: 'handshake', secret: secrets.clientHandshake },
      ...flight.map((message): HandshakeAction => ({ type: 'send', epoch: 'handshake', message })),
      { type: 'keys', direction: 'send', epoch: 'application', secret: app.server },
    ];
  }

  /** CredentialVerify and Finished; then wait for the client's flight. */
  private afterSignature(signature: Uint8Array): HandshakeAction[] {
    const flight = this.proveCredential(signature, this.serverHandshakeSecret!);
    const app = this.deriveApplication();
    this.applicationClientSecret = app.client;
    this.state = 'wait-credential';
    return [
      ...flight.map((message): HandshakeAction => ({ type: 'send', epoch: 'handshake', message })),
      // As in TLS 1.3, the server's sending side moves to application keys right after
      // its Finished (the client switches its receiving side at the same point), so an
      // alert about the client's credential reaches the client. No application data is
      // sent under them until 'complete': the session holds it back.
      { type: 'keys', direction: 'send', epoch: 'application', secret: app.server },
    ];
  }
}
