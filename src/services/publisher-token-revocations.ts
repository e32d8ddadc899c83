/**
 * The revoked publisher token ids, held in memory so checking a token costs no database call.
 * Loaded at start and again whenever a token revocation commits on any replica.
 */
import type { Store } from '../db/store.js'

export class PublisherTokenRevocations {
  private readonly revoked = new Set<string>()

  constructor (private readonly store: Pick<Store, 'listPublisherTokenRevocations'>) {}

  /**
   * Adds every stored revocation. Token revocations are never lifted, so the set only grows:
   * a slow reload finishing after a newer one cannot bring a revoked token back.
   */
  async load (): Promise<void> {
    for (const row of await this.store.listPublisherTokenRevocations()) this.revoked.add(row.jti)
  }

  /** Takes effect on this replica at once, without waiting for the change notice. */
  add (jti: string): void {
    this.revoked.add(jti)
  }

  get jtis (): ReadonlySet<string> {
    return this.revoked
  }
}
