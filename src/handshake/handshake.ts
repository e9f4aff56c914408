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
 * This file describes the protocol and exports the state machines: the client's is in
 * client-handshake.ts, the server's in server-handshake.ts, and what they share (config
 * check and defaults, transcript and key-schedule secrets, authentication, Finished, the
 * failure rule) in handshake-base.ts.
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
export { DEFAULT_SUITES, DEFAULT_VERSIONS, SUPPORTED_SUITES, SUPPORTED_VERSIONS, defaultSuites } from './handshake-base.js';
export { ClientHandshake } from './client-handshake.js';
export { ServerHandshake } from './server-handshake.js';
