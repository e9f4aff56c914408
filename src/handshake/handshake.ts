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
 * Sharp edges:
 * - Every message is checked against the one state that accepts it and the epoch (plaintext
 *   or handshake-protected) it must arrive in; anything else is UnexpectedMessageError.
 * - A state machine that has thrown is dead: every later call throws the same error.
 * - The server switches its sending side to application keys right after its Finished (as
 *   TLS 1.3 does, so its alerts reach the client), but the session sends application data
 *   only after 'complete': never to an unauthenticated client.
 * - Finished MACs are compared in constant time; signature and MAC failures use constant
 *   messages (BadSignatureError, BadFinishedError).
 */
import { equalBytes, utf8Encode } from '../bytes.js';
import { compositeSign, compositeVerify } from '../crypto/composite.js';
import { BadFinishedError, BadSignatureError, InvalidArgumentError, PqmcpError, UnexpectedMessageError, UnsupportedExtensionError, UnsupportedSuiteError, UnsupportedVersionError, DecodeError, toPqmcpError } from '../errors.js';
import type { VerifiedPeer } from '../identity/trust.js';
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
import type { XWingKeyPair } from '../crypto/types.js';
import { Transcript, applicationSecrets, exporterSecret, finishedMac, handshakeSecrets, masterSecret } from './key-schedule.js';
import type { Epoch, HandshakeAction, HandshakeConfig, HandshakeResult } from './types.js';

export const DEFAULT_VERSIONS: readonly number[] = [VERSION_1];
export const DEFAULT_SUITES: readonly number[] = [Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256, Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256];
export const SUPPORTED_VERSIONS: readonly number[] = [VERSION_1];
export const SUPPORTED_SUITES: readonly number[] = DEFAULT_SUITES;

/** Signature contexts: which side signed is part of what is signed. */
const SERVER_SIGNATURE_CONTEXT = utf8Encode('PQMCP/1 server CredentialVerify');
const CLIENT_SIGNATURE_CONTEXT = utf8Encode('PQMCP/1 client CredentialVerify');

/**
 * Default suites for a backend: ChaCha20-Poly1305 first; AES-256-GCM only where the AEAD is
 * native (noble's AES is table-based, not constant time). Explicit `suites` override this.
 */
export function defaultSuites(config: HandshakeConfig): readonly number[] {
  return config.backend.report.aead === 'native' ? DEFAULT_SUITES : [Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256];
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
  private failure: PqmcpError | undefined;
  abstract readonly role: 'client' | 'server';
  protected abstract state: string;

  constructor(protected readonly config: HandshakeConfig) {
    const { versions, suites } = checkConfig(config);
    this.versions = versions;
    this.suites = suites;
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
    if (this.failure) throw this.failure;
    try {
      if (this.state === 'done') throw new UnexpectedMessageError('handshake message after the handshake completed');
      // Own copy: the transcript and decoded fields keep views into it, and a transport
      // may reuse its receive buffers.
      const own = message.slice();
      const { type, body } = unframeHandshake(own);
      return this.handle(type, body, own, epoch);
    } catch (err) {
      this.failure = toPqmcpError(err);
      throw this.failure;
    }
  }

  protected abstract handle(type: number, body: Uint8Array, framed: Uint8Array, epoch: Epoch): HandshakeAction[];

  protected log(label: string, secret: Uint8Array): void {
    this.config.keyLog?.(label, secret.slice());
  }

  /** Derive and log the handshake and master secrets from the X-Wing shared secret. */
  protected deriveHandshake(sharedSecret: Uint8Array): { clientHandshake: Uint8Array; serverHandshake: Uint8Array } {
    const { backend } = this.config;
    this.log('xwing_shared_secret', sharedSecret);
    const secrets = handshakeSecrets(backend, sharedSecret, this.transcript.hash());
    sharedSecret.fill(0);
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

  protected random(n: number): Uint8Array {
    return this.config.random ? this.config.random(n) : this.config.backend.randomBytes(n);
  }

  /** ML-DSA `rnd`: explicit only in deterministic mode. */
  protected signingRandomness(): Uint8Array | undefined {
    return this.config.random ? this.config.random(32) : undefined;
  }

  protected requireEpoch(epoch: Epoch, required: Epoch, what: string): void {
    if (epoch !== required) throw new UnexpectedMessageError(`${what} must arrive in the ${required} epoch, got ${epoch}`);
  }

  /** Our Credential, CredentialVerify and Finished, appended to the transcript. */
  protected authenticate(signatureContext: Uint8Array, finishedBase: Uint8Array): Uint8Array[] {
    const { backend, identity } = this.config;
    const encoded = identity.credential instanceof Uint8Array ? identity.credential : identity.credential.encoded;
    const cred = encodeCredentialMessage(encoded);
    this.transcript.add(cred);
    const signature = compositeSign(backend, identity.keyPair, this.transcript.hash(), signatureContext, this.signingRandomness());
    const verify = encodeCredentialVerify({ algorithm: SIG_MLDSA65_ED25519, signature });
    this.transcript.add(verify);
    const finished = encodeFinished(finishedMac(backend, finishedBase, this.transcript.hash()));
    this.transcript.add(finished);
    return [cred, verify, finished];
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
    const options: { now?: () => number; clockSkewSeconds?: number; expectedPeerId?: string } = {};
    if (this.config.now) options.now = this.config.now;
    if (this.config.clockSkewSeconds !== undefined) options.clockSkewSeconds = this.config.clockSkewSeconds;
    if (this.config.expectedPeerId !== undefined) options.expectedPeerId = this.config.expectedPeerId;
    this.peer = this.config.trust.verifyCredential(this.config.backend, credential, options);
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
  protected complete(): HandshakeAction {
    if (!this.peer || !this.master) throw new UnexpectedMessageError('handshake incomplete');
    const transcriptHash = this.transcript.hash();
    const exporter = exporterSecret(this.config.backend, this.master, transcriptHash);
    this.log('exporter_secret', exporter);
    this.master.fill(0);
    this.clientHandshakeSecret?.fill(0);
    this.serverHandshakeSecret?.fill(0);
    this.master = this.clientHandshakeSecret = this.serverHandshakeSecret = undefined;
    return { type: 'complete', result: { version: this.version, suite: this.suite, peer: this.peer, transcriptHash }, exporterSecret: exporter };
  }
}

export class ClientHandshake extends HandshakeBase {
  readonly role = 'client';
  protected readonly peerSignatureContext = SERVER_SIGNATURE_CONTEXT;
  protected state: 'start' | 'wait-server-hello' | 'wait-credential' | 'wait-verify' | 'wait-finished' | 'done' = 'start';
  private ephemeral: XWingKeyPair | undefined;
  /** Extension types the ClientHello carried: the only ones a ServerHello may contain. */
  private offeredExtensions: number[] = [];

  /** Produce the ClientHello. Call exactly once. */
  start(): HandshakeAction[] {
    if (this.state !== 'start') throw new InvalidArgumentError('client handshake already started');
    const { backend } = this.config;
    this.ephemeral = backend.xwing.keygen(this.random(32));
    const random = this.random(RANDOM_LENGTH);
    const extensions = this.clientExtensions();
    this.offeredExtensions = extensions.map((e) => e.type);
    const hello = encodeClientHello({
      versions: [...this.versions],
      random,
      suites: [...this.suites],
      kemId: KEM_XWING,
      keyShare: this.ephemeral.publicKey,
      extensions,
    });
    this.transcript.add(hello);
    this.state = 'wait-server-hello';
    return [{ type: 'send', epoch: 'plaintext', message: hello }];
  }

  /** The ClientHello's extensions, strictly ascending by type. */
  private clientExtensions(): Extension[] {
    return [];
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
        const shared = backend.xwing.decapsulate(this.ephemeral!, sh.ciphertext);
        this.ephemeral!.seed.fill(0);
        this.ephemeral = undefined;
        this.transcript.add(framed);
        const secrets = this.deriveHandshake(shared);
        this.state = 'wait-credential';
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
        const flight = this.authenticate(CLIENT_SIGNATURE_CONTEXT, this.clientHandshakeSecret!);
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
}

export class ServerHandshake extends HandshakeBase {
  readonly role = 'server';
  protected readonly peerSignatureContext = CLIENT_SIGNATURE_CONTEXT;
  protected state: 'wait-client-hello' | 'wait-credential' | 'wait-verify' | 'wait-finished' | 'done' = 'wait-client-hello';
  private applicationClientSecret: Uint8Array | undefined;

  /** Hand the client's application secret to the session (which owns and wipes it). */
  private takeApplicationClientSecret(): Uint8Array {
    const secret = this.applicationClientSecret!;
    this.applicationClientSecret = undefined;
    return secret;
  }

  protected handle(type: number, body: Uint8Array, framed: Uint8Array, epoch: Epoch): HandshakeAction[] {
    const { backend } = this.config;
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
        this.version = version;
        this.suite = suite;
        this.transcript.add(framed);
        const { ciphertext, sharedSecret } = backend.xwing.encapsulate(ch.keyShare, this.config.random ? this.config.random(64) : undefined);
        const hello = encodeServerHello({ version, random: this.random(RANDOM_LENGTH), suite, kemId: KEM_XWING, ciphertext, extensions: [] });
        this.transcript.add(hello);
        const secrets = this.deriveHandshake(sharedSecret);
        const flight = this.authenticate(SERVER_SIGNATURE_CONTEXT, secrets.serverHandshake);
        const app = this.deriveApplication();
        this.applicationClientSecret = app.client;
        this.state = 'wait-credential';
        return [
          { type: 'send', epoch: 'plaintext', message: hello },
          { type: 'keys', direction: 'send', epoch: 'handshake', secret: secrets.serverHandshake },
          { type: 'keys', direction: 'receive', epoch: 'handshake', secret: secrets.clientHandshake },
          ...flight.map((message): HandshakeAction => ({ type: 'send', epoch: 'handshake', message })),
          // As in TLS 1.3, the server's sending side moves to application keys right after
          // its Finished (the client switches its receiving side at the same point), so an
          // alert about the client's credential reaches the client. No application data is
          // sent under them until 'complete': the session holds it back.
          { type: 'keys', direction: 'send', epoch: 'application', secret: app.server },
        ];
      }
      case 'wait-credential':
      case 'wait-verify':
        this.state = this.peerAuthentication(this.state, type, body, framed, epoch);
        return [];
      case 'wait-finished':
        this.onPeerFinished(type, body, framed, epoch, this.clientHandshakeSecret!);
        this.state = 'done';
        return [
          { type: 'keys', direction: 'receive', epoch: 'application', secret: this.takeApplicationClientSecret() },
          this.complete(),
        ];
      case 'done':
        throw new UnexpectedMessageError('handshake message after the handshake completed');
    }
  }
}
