/**
 * The revoked publisher token ids, and the ended dashboard session ids, held in memory so
 * checking a token or a session cookie costs no database call. Loaded at start and again
 * whenever a token revocation or a logout commits on any replica (both notify
 * `token-revocation`).
 */
import type { Store } from '../db/store.js'

export class PublisherTokenRevocations {
  private readonly revoked = new Set<string>()
  private readonly endedSessions = new Set<string>()

  constructor (private readonly store: Pick<Store, 'listPublisherTokenRevocations' | 'listSessionRevocations'>) {}

  /**
   * Adds every stored revocation. Token revocations are never lifted, so the set only grows:
   * a slow reload finishing after a newer one cannot bring a revoked token back. Ended
   * sessions are only added too; the store drops rows of sessions long expired, which their
   * own exp refuses anyway.
   */
  async load (): Promise<void> {
    for (const row of await this.store.listPublisherTokenRevocations()) this.revoked.add(row.jti)
    for (const row of await this.store.listSessionRevocations()) this.endedSessions.add(row.sid)
  }

  /** Takes effect on this replica at once, without waiting for the change notice. */
  add (jti: string): void {
    this.revoked.add(jti)
  }

  /** A logout, on this replica at once. */
  endSession (sid: string): void {
    this.endedSessions.add(sid)
  }

  get jtis (): ReadonlySet<string> {
    return this.revoked
  }

  get sessions (): ReadonlySet<string> {
    return this.endedSessions
  }
}
