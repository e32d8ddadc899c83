/**
 * Everything a license check needs, held in memory: the verifier (signatures, cached per
 * token) and the revocation sets (reloaded when a revocation commits anywhere).
 */
import type { Store } from '../db/store.js'
import { checkEntitlement, checkLicenseValidity, type LicenseClaims, type LicensePolicy, type RevocationSet } from '../domain/license.js'
import type { LicenseVerifier } from './license-verifier.js'

export class LicenseRegistry {
  private revoked: RevocationSet = { jtis: new Set(), subs: new Map() }

  constructor (private readonly verifier: LicenseVerifier, private readonly policy: LicensePolicy, private readonly store: Store, private readonly now: () => number = Date.now) {}

  /** Loads started so far, and the number of the one whose result is installed. */
  private loadsStarted = 0
  private installedLoad = 0

  /**
   * Reads the revocations in force and installs them, unless a load started after this one has
   * already installed its own: two reloads (two notices, or a notice and the resync) may finish
   * in either order, and the older read must not bring back a revoked license or undo a lift.
   */
  async loadRevocations (): Promise<void> {
    const load = ++this.loadsStarted
    // Lifted revocations are no longer in force.
    const rows = await this.store.listEffectiveRevocations()
    if (load < this.installedLoad) return
    const jtis = new Set<string>()
    const subs = new Map<string, number>()
    for (const row of rows) {
      if (row.jti !== null) jtis.add(row.jti)
      if (row.sub !== null) {
        // A sub revocation refuses licenses issued up to it (domain isRevoked): keep the latest.
        const at = Math.floor(row.at.getTime() / 1000)
        if (at > (subs.get(row.sub) ?? -Infinity)) subs.set(row.sub, at)
      }
    }
    this.revoked = { jtis, subs }
    this.installedLoad = load
  }

  /** Verifies a token and checks it is currently valid; entitlement is checked separately. */
  async authenticate (token: string): Promise<LicenseClaims> {
    return this.checkValidity(await this.verifier.verify(token))
  }

  async authorize (token: string, channel: string): Promise<LicenseClaims> {
    const claims = await this.authenticate(token)
    checkEntitlement(claims, channel)
    return claims
  }

  /**
   * The hot path, without a promise: for a token whose signature was already verified, the same
   * checks as authorize (time, issuer, audience, revocation, entitlement) on every call.
   * Null when the token is not verified yet: then await authorize.
   */
  authorizeCached (token: string, channel: string): LicenseClaims | null {
    const claims = this.authenticateCached(token)
    if (claims !== null) checkEntitlement(claims, channel)
    return claims
  }

  /**
   * authorizeCached for a token whose signature was verified before (the same per-request
   * checks), else null without looking for a cached refusal: for a fast path that falls back
   * to the strict one.
   */
  authorizeVerified (token: string, channel: string): LicenseClaims | null {
    const claims = this.verifier.verifiedClaims(token)
    if (claims === undefined) return null
    this.checkValidity(claims)
    checkEntitlement(claims, channel)
    return claims
  }

  /** authenticateCached for a token verified before, else null (see authorizeVerified). */
  authenticateVerified (token: string): LicenseClaims | null {
    const claims = this.verifier.verifiedClaims(token)
    return claims === undefined ? null : this.checkValidity(claims)
  }

  /** authenticate without a promise for an already verified token; null when it is not verified yet. */
  authenticateCached (token: string): LicenseClaims | null {
    const claims = this.verifier.cached(token)
    return claims === undefined ? null : this.checkValidity(claims)
  }

  /** Time window, issuer, audience and revocation: decided on every request, never cached. */
  private checkValidity (claims: LicenseClaims): LicenseClaims {
    checkLicenseValidity(claims, Math.floor(this.now() / 1000), this.policy, this.revoked)
    return claims
  }
}
