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
 * - Timers are chained below setTimeout's limit (about 24.8 days) and unref'd: they never
 *   keep the process alive.
 * - reloadOwnCredential re-reads the key and credential files as at start (the same
 *   checks: permissions, the credential is for the key, inside its window now). A key that
 *   changed is refused: the crypto workers hold the key, and clients may pin it; a new key
 *   needs a restart.
 */
import type { PqmcpServer } from '../transport/server.js';
import type { CryptoBackend } from '../crypto/types.js';
import { equalBytes } from '../bytes.js';
import { MAX_TIMER_MS } from '../timer-limit.js';
import { loadOwnIdentity } from './files.js';
import { humanDuration, isoTime } from './output.js';

type Log = (event: string, fields: Record<string, unknown>, human: string) => void;

const HOUR_S = 3600;
const DAY_S = 24 * HOUR_S;
/** Seconds before notAfter at which a warning is logged, most distant first. */
export const EXPIRY_WARNINGS_S: readonly number[] = [7 * DAY_S, DAY_S, HOUR_S];

export class CredentialWatch {
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Warnings (indices into EXPIRY_WARNINGS_S, then its length for the end) already logged for this notAfter. */
  private next = 0;
  private closed = false;

  constructor(
    private notAfter: number,
    private readonly log: Log,
    private readonly now: () => number = Date.now,
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
    if (leftS <= 0) {
      if (this.next <= EXPIRY_WARNINGS_S.length) {
        this.next = EXPIRY_WARNINGS_S.length + 1;
        this.log('credential-expired', { notAfter: at }, `this gateway's credential expired at ${at}: clients refuse every new handshake and its sessions have ended; renew it (pqmcp credential issue --agent <its .cred.json>) and send SIGHUP`);
      }
      return;
    }
    // The closest threshold already passed: one line for it, none for the ones before it.
    let due = -1;
    for (let i = this.next; i < EXPIRY_WARNINGS_S.length; i++) if (leftS <= EXPIRY_WARNINGS_S[i]!) due = i;
    if (due >= 0) {
      this.next = due + 1;
      this.log('credential-expiring', { notAfter: at, secondsLeft: Math.floor(leftS) }, `this gateway's credential expires in ${humanDuration(leftS * 1000)} (at ${at}): renew it (pqmcp credential issue --agent <its .cred.json>) and send SIGHUP; sessions end with it`);
    }
    const untilS = this.next < EXPIRY_WARNINGS_S.length ? leftS - EXPIRY_WARNINGS_S[this.next]! : leftS;
    // +1 ms: the window is inclusive (the credential is valid at notAfter itself).
    this.timer = setTimeout(() => this.check(), Math.min(MAX_TIMER_MS, Math.ceil(untilS * 1000) + 1));
    this.timer.unref();
  }
}

/**
 * SIGHUP: re-read this gateway's key and credential files; present the credential if it is
 * new. Returns what happened, for the reload's log line; throws (the previous credential
 * stays) when the files do not load or hold another key.
 */
export async function reloadOwnCredential(
  server: PqmcpServer,
  backend: CryptoBackend,
  files: { keyPath: string; credentialPath: string | undefined; allowLoosePermissions: boolean },
  current: { fingerprint: string; credential: Uint8Array },
): Promise<{ renewed: false } | { renewed: true; credential: Uint8Array; notAfter: number; serial: string }> {
  const loaded = await loadOwnIdentity(backend, files.keyPath, files.credentialPath, files.allowLoosePermissions);
  if (loaded.fingerprint !== current.fingerprint) {
    throw new Error(`${files.keyPath} now holds another key (${loaded.fingerprint.slice(0, 16)}, not ${current.fingerprint.slice(0, 16)}): a new key needs a restart`);
  }
  const credential = loaded.credential.encoded;
  if (equalBytes(credential, current.credential)) return { renewed: false };
  server.setCredential(credential);
  return { renewed: true, credential, notAfter: loaded.credential.notAfter, serial: Buffer.from(loaded.credential.serial).toString('hex') };
}

