/**
 * ReadPause.heldByUs (src/transport/read-pause.ts): the keepalive re-arms its pong deadline
 * only while the connection's own limits keep the peer's bytes unread. A pause the peer
 * causes (a full inbox: it does not read our replies) or the application asks for must win,
 * or a peer that reads nothing while a backlog waits behind its inbox is never timed out
 * (review 9b, F1).
 */
import { describe, expect, it } from 'vitest';
import { ReadPause } from '../../src/transport/read-pause.js';

describe('ReadPause.heldByUs', () => {
  const pause = () => new ReadPause({ pause: () => {}, resume: () => {} }, () => true);

  it('holds for the receive budget or a backlog alone', () => {
    for (const reason of ['budget', 'backlog'] as const) {
      const p = pause();
      p.set(reason, true);
      expect(p.heldByUs(), reason).toBe(true);
      p.set(reason, false);
      expect(p.heldByUs(), reason).toBe(false);
    }
  });

  it('does not hold while the peer (inbox) or the application (app) also pauses reading', () => {
    for (const own of ['budget', 'backlog'] as const) {
      for (const theirs of ['inbox', 'app'] as const) {
        const p = pause();
        p.set(own, true);
        p.set(theirs, true);
        expect(p.heldByUs(), `${own} + ${theirs}`).toBe(false);
        p.set(theirs, false);
        expect(p.heldByUs(), own).toBe(true);
      }
    }
  });
});
