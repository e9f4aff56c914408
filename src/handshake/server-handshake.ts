/**
 * The server's handshake state machine (handshake.ts describes the protocol): the
 * ClientHello's negotiation and endpoint check, the encapsulation and signature (inline, or
 * handed out as 'compute' actions with deferCrypto), a resumption ticket accepted once the
 * encapsulation is done, the client's authentication, then the tickets it issues. Pure: no
 * I/O.
 */
import { COMPOSITE_SIGNATURE_LENGTH } from '../crypto/composite.js';
import { InvalidArgumentError, UnexpectedMessageError, UnsupportedSuiteError, UnsupportedVersionError, DecodeError } from '../errors.js';
import { KEM_XWING, MsgType, RANDOM_LENGTH, XWING_CIPHERTEXT_LENGTH, XWING_PUBLIC_KEY_LENGTH, decodeClientHello, encodeServerHello, expectType, peekClientHelloVersions } from '../wire/messages.js';
import type { Extension } from '../wire/messages.js';
import { requireServedEndpoint } from './endpoint.js';
import { EXT_PRE_SHARED_KEY, encodePskAccepted } from '../wire/resumption.js';
import { acceptTicket, issueTickets, longestOfferableTicket, ownTicketIdentity, pskHandshakeSalt } from './resumption.js';
import type { OwnTicketIdentity, ServerContext } from './resumption.js';
import type { CryptoRequest, CryptoResult, Epoch, HandshakeAction } from './types.js';
import { CLIENT_SIGNATURE_CONTEXT, HandshakeBase, SERVER_SIGNATURE_CONTEXT } from './handshake-base.js';

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
  /** The longest ticket a ClientHello like this one can offer: no longer one is issued. */
  private longestTicket = 0;
  /** This server's identity as tickets bind it: decoded and hashed once a handshake needs it. */
  private ownForTickets: OwnTicketIdentity | undefined;

  private serverContext(): ServerContext {
    const tickets = this.config.tickets!;
    return {
      backend: this.config.backend,
      trust: this.config.trust,
      // Tickets bind the endpoint the client named and this listener checked (authority
      // included), not only the listener's own `tickets.endpoint`: docs/protocol.md 15.4.
      tickets: this.namedEndpoint !== undefined ? { ...tickets, endpoint: this.namedEndpoint } : tickets,
      own: () => (this.ownForTickets ??= ownTicketIdentity(this.config.backend, this.ownCredential())),
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
        if (version === undefined) throw new UnsupportedVersionError(`no common protocol version (client offered ${offeredList(offeredVersions)})`);
        const ch = decodeClientHello(body);
        const suite = this.suites.find((s) => ch.suites.includes(s));
        if (suite === undefined) throw new UnsupportedSuiteError(`no common cipher suite (client offered ${offeredList(ch.suites)})`);
        if (ch.kemId !== KEM_XWING) throw new UnsupportedSuiteError(`unsupported KEM ${ch.kemId}`);
        if (ch.keyShare.length !== XWING_PUBLIC_KEY_LENGTH) throw new DecodeError(`X-Wing key share must be ${XWING_PUBLIC_KEY_LENGTH} bytes, got ${ch.keyShare.length}`);
        // Endpoint binding (section 5.7): before any crypto work.
        if (this.acceptEndpoints) this.namedEndpoint = requireServedEndpoint(ch.extensions, this.acceptEndpoints);
        // Resumption is decided once the encapsulation is done (acceptOffered): the ticket is
        // opened only after this handshake was admitted (with deferCrypto, its source's rate
        // token taken), so a forged ticket costs no unadmitted work (review F2).
        const offered = this.config.tickets ? ch.extensions.find((e) => e.type === EXT_PRE_SHARED_KEY) : undefined;
        if (offered) this.offeredTicket = { framed, extension: offered, suites: ch.suites }; // views of our own copy (receive())
        // The client's next ClientHello is this one with our ticket in place of any it offered
        // (that extension: its type and length, 4 bytes, then its data).
        this.longestTicket = longestOfferableTicket(framed.length - (offered ? 4 + offered.data.length : 0));
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
        const issued = this.config.tickets
          ? issueTickets(this.serverContext(), resumptionSecret, this.suite, complete.result.peer, this.authTime ?? Math.floor(this.nowMs() / 1000), (n) => this.random(n, 'ticket salt'), this.longestTicket)
          : { messages: [] };
        resumptionSecret.fill(0);
        if (issued.withheld) complete.result.ticketsWithheld = issued.withheld;
        return [
          { type: 'keys', direction: 'receive', epoch: 'application', secret: this.takeApplicationClientSecret() },
          complete,
          // After 'complete': the client is verified; tickets go under application keys.
          ...issued.messages.map((message): HandshakeAction => ({ type: 'send', epoch: 'application', message })),
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

/** How many codes a refusal's message names: the ClientHello is the peer's, unauthenticated, and up to 32,767 suites long. */
const NAMED_CODES = 8;

/**
 * The codes a client offered, for an error message: all of them up to NAMED_CODES, else
 * their count and the first NAMED_CODES (review 13, R13-11: 4,000 suite codes made a
 * ~28 KB message for every log that printed it).
 */
function offeredList(codes: readonly number[]): string {
  if (codes.length <= NAMED_CODES) return `[${codes.join(', ')}]`;
  return `${codes.length} codes: [${codes.slice(0, NAMED_CODES).join(', ')}, ...]`;
}
