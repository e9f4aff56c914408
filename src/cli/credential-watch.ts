/**
 * The gateway's own credential, watched and renewed (`pqmcp serve`): a credential that ends
 * ends every session with it and every new handshake, so the operator hears of it ahead of
 * time, and a renewed credential file is taken on SIGHUP without a restart.
 *
 *   const watch = new CredentialWatch(notAfter, log);   // logs now if it is already close
 *   watch.renewed(newNotAfter);                          // after server.setCredential()
 *   watch.close();
 *
 * Sharp edges:
 * - One `credential-expiring` line when 7 days, 1 day and 1 hour are left (the first one
 *   due is logged at once: a gateway started 3 days before the end says so at start, once),
 *   and `credential-expired` at notAfter. A renewal starts over with the new notAfter.
 *   `pqmcp connect` watches its own credential the same way, in its own words.
 * - Timers are chained below setTimeout's limit (about 24.8 days) and unref'd: they never
 *   keep the process alive.
 * - reloadOwnCredential re-reads the credential file only: the key stays (the crypto workers
 *   hold it, and clients may pin it), so a credential for another key is refused; a new key
 *   needs a restart. server.setCredential makes the other checks (id, role, window).
 */
import type { PqmcpServer } from '../transport/server.js';
import type { CryptoBackend } from '../crypto/types.js';
import { equalBytes, toHex } from '../bytes.js';
import { MAX_TIMER_MS } from '../timer-limit.js';
import { defaultCredentialPath, loadCredential } from '../identity/files.js';
import { fingerprintHex } from '../identity/fingerprint.js';
import { humanDuration, isoTime } from './output.js';

type Log = (event: string, fields: Record<string, unknown>, human: string) => void;

const HOUR_S = 3600;
const DAY_S = 24 * HOUR_S;
/** Seconds before notAfter at which a warning is logged, most distant first. */
export const EXPIRY_WARNINGS_S: readonly number[] = [7 * DAY_S, DAY_S, HOUR_S];

/** The gateway's lines: its operator renews and sends SIGHUP. */
const GATEWAY_WORDS = { whose: "this gateway's credential", renew: 'renew it (pqmcp credential issue --agent <its .cred.json>) and send SIGHUP' };

export class CredentialWatch {
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Warnings (indices into EXPIRY_WARNINGS_S, then its length for the end) already logged for this notAfter. */
  private next = 0;
  private closed = false;

  constructor(
    private notAfter: number,
    private readonly log: Log,
    private readonly now: () => number = Date.now,
    /** Whose credential, and what to do about it, in the lines' words (default: the gateway's). */
    private readonly words: { whose: string; renew: string } = GATEWAY_WORDS,
  ) {
    this.check();
  }

  /** The credential now presented ends at `notAfter` (Unix seconds): warnings start over. */
  renewed(notAfter: number): void {
    this.notAfter = notAfter;
    this.next = 0;
    this.check();
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.closed) return;
    const leftS = this.notAfter - this.now() / 1000;
    const at = isoTime(this.notAfter);
    // Valid at notAfter itself (the window is inclusive): ended once past it.
    if (leftS < 0) {
      if (this.next <= EXPIRY_WARNINGS_S.length) {
        this.next = EXPIRY_WARNINGS_S.length + 1;
        this.log('credential-expired', { notAfter: at }, `${this.words.whose} ended at ${at}: peers refuse it from now on (past the clock skew they allow, 60 s by default) and the sessions that presented it end; ${this.words.renew}`);
      }
      return;
    }
    // The closest threshold already passed: one line for it, none for the ones before it.
    let due = -1;
    for (let i = this.next; i < EXPIRY_WARNINGS_S.length; i++) if (leftS <= EXPIRY_WARNINGS_S[i]!) due = i;
    if (due >= 0) {
      this.next = due + 1;
      this.log('credential-expiring', { notAfter: at, secondsLeft: Math.floor(leftS) }, `${this.words.whose} expires in ${humanDuration(leftS * 1000)} (at ${at}); sessions end with it: ${this.words.renew}`);
    }
    const untilS = this.next < EXPIRY_WARNINGS_S.length ? leftS - EXPIRY_WARNINGS_S[this.next]! : leftS;
    // +1 ms: the window is inclusive (the credential is valid at notAfter itself).
    this.timer = setTimeout(() => this.check(), Math.min(MAX_TIMER_MS, Math.ceil(untilS * 1000) + 1));
    this.timer.unref();
  }
}

/**
 * SIGHUP: re-read this gateway's credential file (--credential, or NAME.cred.json beside the
 * key) and present it if it is new. The key file is not read again: the key stays (a new one
 * needs a restart), so no private key is derived or held for a reload. Returns what
 * happened, for the reload's log line; throws (the previous credential stays) when the file
 * does not load or server.setCredential refuses it (another key or id, not a server
 * credential, outside its window).
 */
export async function reloadOwnCredential(
  server: PqmcpServer,
  backend: CryptoBackend,
  files: { keyPath: string; credentialPath: string | undefined },
  current: { publicKey: Uint8Array; credential: Uint8Array },
): Promise<{ renewed: false } | { renewed: true; credential: Uint8Array; notAfter: number; serial: string }> {
  const path = files.credentialPath ?? defaultCredentialPath(files.keyPath);
  // Started, so the path was found then; a key file renamed since is the operator's to fix.
  if (path === undefined) throw new Error(`no credential beside ${files.keyPath}: pass --credential`);
  const credential = await loadCredential(path);
  if (equalBytes(credential.encoded, current.credential)) return { renewed: false };
  if (!equalBytes(credential.publicKey, current.publicKey)) {
    const fp = (key: Uint8Array): string => fingerprintHex(backend, key).slice(0, 16);
    throw new Error(`${path} is for another key (${fp(credential.publicKey)}, not this gateway's ${fp(current.publicKey)}): a new key needs a restart`);
  }
  server.setCredential(credential.encoded);
  return { renewed: true, credential: credential.encoded, notAfter: credential.notAfter, serial: toHex(credential.serial) };
}
