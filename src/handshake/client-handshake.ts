/**
 * The client's handshake state machine (handshake.ts describes the protocol): the
 * ClientHello (with a resumption ticket's offer when it fits), the ServerHello's checks
 * (only what was offered) and decapsulation, the server's authentication, then the
 * client's flight. Its X-Wing key pair keys this handshake only (SPENT_KEY_PAIRS) and is
 * disposed of after the decapsulation or when the handshake ends early. Pure: no I/O.
 */
import { wipe } from '../bytes.js';
import { MAX_PLAINTEXT_HANDSHAKE } from '../record/constants.js';
import { InvalidArgumentError, UnexpectedMessageError, UnsupportedExtensionError, UnsupportedSuiteError, UnsupportedVersionError, DecodeError } from '../errors.js';
import { KEM_XWING, MsgType, RANDOM_LENGTH, XWING_CIPHERTEXT_LENGTH, XWING_PUBLIC_KEY_LENGTH, decodeServerHello, encodeClientHello, expectType } from '../wire/messages.js';
import type { Extension } from '../wire/messages.js';
import { EXT_ENDPOINT, encodeEndpoint } from './endpoint.js';
import type { XWingKeyPair } from '../crypto/types.js';
import { EXT_PRE_SHARED_KEY, checkPskAccepted, pskOfferExtensionLength } from '../wire/resumption.js';
import { bindOffer, longestOfferableTicket, prepareOffer, pskHandshakeSalt, spendTicket } from './resumption.js';
import type { ClientOffer } from './resumption.js';
import type { Epoch, HandshakeAction, HandshakeConfig } from './types.js';
import { CLIENT_SIGNATURE_CONTEXT, HandshakeBase, SERVER_SIGNATURE_CONTEXT } from './handshake-base.js';

/**
 * Ephemeral key pairs given to a client handshake (`ephemeralKeyPair`): each may key one
 * handshake only, so a second handshake given the same object is refused even before the
 * first one wiped its seed.
 */
const SPENT_KEY_PAIRS = new WeakSet<XWingKeyPair>();

/** The extensions a ServerHello may carry (protocol.md 4.4): only pre_shared_key in this revision. */
const SERVER_HELLO_EXTENSIONS: readonly number[] = [EXT_PRE_SHARED_KEY];

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
  /** The longest ticket a ClientHello like ours can offer: a longer one is not kept (Session). */
  private longestTicket = 0;

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
        spendTicket(this.offer.ticket);
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
    this.longestTicket = longestOfferableTicket(hello.length - (this.offer ? pskOfferExtensionLength(this.offer.ticket.ticket.length) : 0));
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
        // A ServerHello may only answer what the ClientHello offered (TLS 1.3, section 4.2),
        // and of that only what section 4.4 allows in a ServerHello (the endpoint, and any
        // later ClientHello-only extension, is the client's statement alone).
        for (const ext of sh.extensions) {
          if (!this.offeredExtensions.includes(ext.type)) throw new UnsupportedExtensionError(ext.type);
          if (!SERVER_HELLO_EXTENSIONS.includes(ext.type)) throw new UnsupportedExtensionError(ext.type, 'which a ServerHello never carries');
        }
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
          { ...this.complete(), longestTicket: this.longestTicket },
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
