/**
 * One connection's place in its listener's ReceiveBudget (receive-budget.ts): the bytes of
 * the message it has partly received, reported after each socket message, and the read
 * pause ('budget') while the budget says so.
 *
 * Sharp edges:
 * - Without a budget (a client, a connection made by hand) nothing is counted.
 * - `account()` after the connection closed does nothing; `release()` (the connection ended)
 *   frees its bytes and may let another connection read.
 */
import type { ReadPause } from './read-pause.js';
import type { BudgetMember, ReceiveBudget } from './receive-budget.js';

export class ReceiveShare {
  private readonly member: BudgetMember = {
    resumeReading: (): void => this.reading.set('budget', false),
  };

  constructor(
    private readonly budget: ReceiveBudget | undefined,
    private readonly reading: ReadPause,
    private readonly connection: {
      /** Not closed. */
      live(): boolean;
      /** Bytes of the message partly received (Session.partialBytes). */
      partialBytes(): number;
    },
  ) {}

  /** After a socket message (or a backlog drain): report what is held, pause reading while the budget says so. */
  account(): void {
    if (!this.budget || !this.connection.live()) return;
    const mayRead = this.budget.update(this.member, this.connection.partialBytes());
    this.reading.set('budget', !mayRead);
  }

  release(): void {
    this.budget?.release(this.member);
  }
}
