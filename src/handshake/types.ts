/**
 * Types shared by the client and server handshake state machines and the session.
 */
import type { CompositeKeyPair } from '../crypto/composite.js';
import type { CryptoBackend, XWingKeyPair } from '../crypto/types.js';
import type { Credential } from '../identity/credential.js';
import type { TrustStore, VerifiedPeer } from '../identity/trust.js';
import type { ClientTicket } from '../resumption/client-tickets.js';
import type { ServerTicketConfig, TicketsWithheld } from './resumption.js';

/**
 * This side's long-term identity: its composite key pair and its credential (encoded bytes
 * or decoded; an `AgentIdentity` from the identity module fits as it is).
 */
export interface LocalIdentity {
  keyPair: CompositeKeyPair;
  /** Presented to the peer inside the encrypted handshake. */
  credential: Uint8Array | Credential;
}

/** A LocalIdentity whose credential is its encoding (what the transports hold). */
export type EncodedLocalIdentity = LocalIdentity & { credential: Uint8Array };

export interface HandshakeConfig {
  backend: CryptoBackend;
  identity: LocalIdentity;
  trust: TrustStore;
  /** Refuse the peer unless its attested agent id equals this. */
  expectedPeerId?: string;
  // --- roles and name constraints (issue 11 item 3) ---
  /** Refuse the peer unless its agent id is within one of these (docs/protocol.md 6.4; NameConstraintError, alert 102). */
  peerIdConstraints?: readonly string[];

  // --- protocol revision (issue 11): endpoint binding (endpoint.ts) ---
  /** Client: the endpoint it means ("//authority/path" or a service name), sent in ClientHello extension 0x0001. Default: none sent. */
  endpoint?: string;
  /**
   * Server: the endpoints it serves (full endpoints, or "/path" for any authority with that
   * path). With it set, a ClientHello naming another endpoint, or none, is refused with
   * endpoint_mismatch (100). Default: not checked (the transports always set it).
   */
  acceptEndpoints?: readonly string[];
  /** Offered (client) or accepted (server) versions, in preference order. Default [PQMCP/1]. */
  versions?: readonly number[];
  /** Offered (client) or accepted (server) suites, in preference order. Default: ChaCha20-Poly1305, then AES-256-GCM where the backend AEAD is native. */
  suites?: readonly number[];
  /** Allowed clock skew when checking the peer credential's validity window. Default 60 s. */
  clockSkewSeconds?: number;
  /** Clock in milliseconds since the epoch. Default Date.now. */
  now?: () => number;
  /**
   * Source of every random input (hello randoms, the ephemeral X-Wing seed, encapsulation
   * randomness, ML-DSA's rnd). Inject it only for known-answer tests: with it set, the whole
   * handshake is reproducible byte for byte. Default: the backend's CSPRNG, and the native
   * primitives draw their own randomness. `purpose` names each draw ("client random",
   * "server X-Wing encapsulation randomness (m || ek_X)", ...) for labelled vectors.
   */
  random?: (length: number, purpose: string) => Uint8Array;
  /**
   * Receives every secret of the key schedule as it is derived (like TLS's key log). For
   * known-answer tests and protocol debugging only: anything it stores can decrypt the
   * session. Never set it in production.
   */
  keyLog?: (label: string, secret: Uint8Array) => void;

  // --- resumption (docs/protocol.md section 15) ---
  /** Server: issue tickets after each handshake and accept them in ClientHellos. */
  tickets?: ServerTicketConfig;
  /** Client: offer this ticket (PSK + fresh X-Wing, no signatures). Ignored unless usable now. */
  resumeTicket?: ClientTicket;

  /**
   * Server only: hand the X-Wing encapsulation and the composite signature back to the
   * caller as 'compute' actions (resume with `resume()`), instead of computing them inline,
   * so a transport can run them off its event loop (a worker pool) and refuse them when
   * overloaded. The bytes on the wire are the same either way. Default false.
   */
  deferCrypto?: boolean;

  // --- speed (issue 12): the client's key share made ahead of time ---
  /**
   * Client only: the ephemeral X-Wing key pair for this handshake's key share, made ahead of
   * time (off the critical path: the transport keeps one ready, src/transport/key-shares.ts).
   * It must be fresh: a key pair is used by one handshake only, and one already given to a
   * handshake, or whose seed is wiped, is refused (InvalidArgumentError). The handshake owns
   * it: it is disposed of (`backend.xwing.dispose`) after the ServerHello's decapsulation or
   * when the handshake ends before that. Exclusive with `random` (known-answer handshakes
   * draw its seed from `random`). Default: generated when the ClientHello is made.
   */
  ephemeralKeyPair?: XWingKeyPair;
}

export type Epoch = 'plaintext' | 'handshake' | 'application';

/** What the session must do, in order, after feeding a message to a handshake state machine. */
export type HandshakeAction =
  | { type: 'send'; epoch: 'plaintext' | 'handshake' | 'application'; message: Uint8Array }
  | { type: 'keys'; direction: 'send' | 'receive'; epoch: 'handshake' | 'application'; secret: Uint8Array }
  | {
      type: 'complete';
      result: HandshakeResult;
      exporterSecret: Uint8Array;
      resumptionSecret?: Uint8Array;
      /** Client: the longest ticket its ClientHello can offer (longestOfferableTicket); a longer NewSessionTicket is not kept. */
      longestTicket?: number;
    }
  /** Always the last action: compute this (anywhere), then resume the state machine with the result. */
  | { type: 'compute'; request: CryptoRequest };

/**
 * Expensive work a deferring server hands out (see `deferCrypto`). `randomness` is set only
 * when the handshake's randomness is injected (known-answer tests): the result is then
 * reproducible wherever it is computed.
 */
export type CryptoRequest =
  | { op: 'encapsulate'; publicKey: Uint8Array; randomness?: Uint8Array }
  /** A composite signature under this side's own identity key. */
  | { op: 'sign'; message: Uint8Array; context: Uint8Array; randomness?: Uint8Array };

export type CryptoResult = { op: 'encapsulate'; ciphertext: Uint8Array; sharedSecret: Uint8Array } | { op: 'sign'; signature: Uint8Array };

/** A result nobody will use (its handshake ended, another runner answered first, a copy was posted): an encapsulation's shared secret is wiped, not left to the collector. */
export function discardCryptoResult(result: CryptoResult): void {
  if (result.op === 'encapsulate') result.sharedSecret.fill(0);
}

export interface HandshakeResult {
  version: number;
  suite: number;
  peer: VerifiedPeer;
  /** SHA-256 of the full transcript through the client's Finished: a unique session id. */
  transcriptHash: Uint8Array;
  /** True when the session was resumed from a ticket: `peer` comes from the ticket (re-checked against the trust store), no signatures were made. */
  resumed: boolean;
  /**
   * Server, issuing tickets: set when this session got none because its ticket could not
   * be used: 'client-hello' (with the client's credential it would make a resuming
   * ClientHello longer than 8,192 bytes) or 'max-ticket-length' (longer than the server's
   * own maxTicketLength, which refuses it), 'expired' (it would already be), or
   * 'credential-renewed' (the server renewed its own credential while this handshake ran).
   * Absent otherwise.
   */
  ticketsWithheld?: TicketsWithheld;
}

export type { CryptoBackend };
