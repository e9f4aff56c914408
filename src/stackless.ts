/**
 * Errors a flood produces by the thousand (a pending connection evicted for a newer one, a
 * first flight or an upgrade request that came too late, a TCP connection past its accept
 * rate, a new handshake refused by the crypto pool's rate or queue, a connection its peer
 * dropped during the handshake) are built without a stack trace: capturing one was the
 * largest single cost of our own code per churned connection (docs/benchmarks.md, "Floods",
 * eighth and eleventh sessions), and the stack of an error made by the edge's bookkeeping
 * or at a stream's end names nothing a reader needs: its type, code, alert and message say
 * what happened.
 *
 * Here, not in transport/: the session (session.ts `end()`) uses it too, and imports flow
 * outer to inner (transport -> session), so it sits beside errors.ts, which every layer may
 * import.
 *
 * Sharp edges:
 * - `Error.stackTraceLimit` is set to 0 for the duration of `make` only, synchronously, and
 *   restored even if `make` throws. On runtimes without it (non-V8) the assignment is harmless.
 * - Only for errors of routine flood ends; a failure someone may debug keeps its stack.
 *   (A client whose server drops the connection during the handshake gets the session's
 *   stackless TruncationError too: its code and message say all the stack would.)
 */
export function stackless<E extends Error>(make: () => E): E {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    Error.stackTraceLimit = limit;
  }
}
