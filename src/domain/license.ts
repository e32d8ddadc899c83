/**
 * License decisions. Signature checking happens in the verifier (it needs keys); everything
 * that depends on time, revocations and the channel asked for is decided here, on every pull,
 * even for a token whose signature was verified earlier.
 */
import { ChartcastError } from '../errors.js'

export interface LicenseClaims {
  sub: string
  exp: number
  channels: string[]
  nbf?: number
  iat?: number
  jti?: string
  iss?: string
  aud?: string | string[]
  channel?: string
  /** Where the deployment stands in staged rollouts: 0 goes first, 1 last (src/domain/rollout.ts). */
  wariness?: number
}

export interface RevocationSet {
  jtis: ReadonlySet<string>
  /** Per revoked `sub`, when (epoch seconds) its latest revocation was made. */
  subs: ReadonlyMap<string, number>
}

export interface LicensePolicy {
  issuer: string | null
  audience: string | null
}

/** Checks the payload's shape once, after the signature is known good. */
export function parseLicenseClaims (payload: unknown): LicenseClaims {
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    throw new ChartcastError('LICENSE_INVALID', 'license payload is not a JSON object')
  }
  const p = payload as Record<string, unknown>
  if (typeof p.sub !== 'string' || p.sub === '') throw new ChartcastError('LICENSE_INVALID', 'license has no "sub" (deployment id)')
  if (typeof p.exp !== 'number' || !Number.isFinite(p.exp)) throw new ChartcastError('LICENSE_INVALID', 'license has no numeric "exp"')
  // An empty array is a valid license that entitles nothing (CHANNEL_NOT_ENTITLED on every pull).
  if (!Array.isArray(p.channels) || !p.channels.every((c) => typeof c === 'string' && c !== '')) {
    throw new ChartcastError('LICENSE_INVALID', 'license has no "channels" array of channel names')
  }
  for (const key of ['nbf', 'iat'] as const) {
    if (p[key] !== undefined && (typeof p[key] !== 'number' || !Number.isFinite(p[key]))) throw new ChartcastError('LICENSE_INVALID', `license "${key}" is not a number`)
  }
  for (const key of ['jti', 'iss', 'channel'] as const) {
    if (p[key] !== undefined && typeof p[key] !== 'string') throw new ChartcastError('LICENSE_INVALID', `license "${key}" is not a string`)
  }
  if (p.wariness !== undefined && (typeof p.wariness !== 'number' || !(p.wariness >= 0 && p.wariness <= 1))) {
    throw new ChartcastError('LICENSE_INVALID', 'license "wariness" is not a number from 0 to 1')
  }
  if (p.aud !== undefined && typeof p.aud !== 'string' && !(Array.isArray(p.aud) && p.aud.every((a) => typeof a === 'string'))) {
    throw new ChartcastError('LICENSE_INVALID', 'license "aud" is not a string or an array of strings')
  }
  return {
    sub: p.sub,
    exp: p.exp,
    channels: p.channels as string[],
    ...(p.nbf !== undefined && { nbf: p.nbf as number }),
    ...(p.iat !== undefined && { iat: p.iat as number }),
    ...(p.jti !== undefined && { jti: p.jti as string }),
    ...(p.iss !== undefined && { iss: p.iss as string }),
    ...(p.aud !== undefined && { aud: p.aud as string | string[] }),
    ...(p.channel !== undefined && { channel: p.channel as string }),
    ...(p.wariness !== undefined && { wariness: p.wariness as number })
  }
}

/** The checks that do not depend on the channel: time window, issuer, audience, revocation. */
export function checkLicenseValidity (claims: LicenseClaims, nowSeconds: number, policy: LicensePolicy, revoked: RevocationSet): void {
  // RFC 7519 4.1.4: the token must not be accepted on or after exp.
  if (nowSeconds >= claims.exp) throw new ChartcastError('LICENSE_EXPIRED', `license expired at ${describeNumericDate(claims.exp)}`)
  if (claims.nbf !== undefined && nowSeconds < claims.nbf) {
    throw new ChartcastError('LICENSE_NOT_YET_VALID', `license is valid from ${describeNumericDate(claims.nbf)}`)
  }
  if (policy.issuer !== null && claims.iss !== policy.issuer) throw new ChartcastError('LICENSE_INVALID', 'license was issued by another issuer')
  if (policy.audience !== null && !hasAudience(claims.aud, policy.audience)) throw new ChartcastError('LICENSE_INVALID', 'license is for another audience')
  if (isRevoked(claims, revoked)) {
    throw new ChartcastError('LICENSE_REVOKED', isRevokedByJti(claims, revoked) ? 'license has been revoked' : 'licenses of this deployment issued before its revocation have been revoked')
  }
}

function isRevokedByJti (claims: LicenseClaims, revoked: RevocationSet): boolean {
  return claims.jti !== undefined && revoked.jtis.has(claims.jti)
}

/**
 * A `jti` revocation refuses that license for good. A `sub` revocation refuses the licenses
 * issued before it, so the deployment can be given a renewed license: one whose `iat` is after
 * the revocation's second (the same second counts as before, since `iat` is truncated). A
 * license without `iat` cannot show it is newer, so it stays refused.
 */
export function isRevoked (claims: LicenseClaims, revoked: RevocationSet): boolean {
  if (isRevokedByJti(claims, revoked)) return true
  const revokedAt = revoked.subs.get(claims.sub)
  return revokedAt !== undefined && (claims.iat === undefined || claims.iat <= revokedAt)
}

/** ECMA-262 21.4.1.1: a Date holds at most 8.64e15 ms either side of 1970; toISOString throws beyond. */
const MAX_DATE_MS = 8.64e15

/**
 * A NumericDate (RFC 7519 2: seconds since 1970, possibly non-integer) for a message: as an ISO
 * date when a Date can hold it, else as the number itself. A signed license may carry any finite
 * number, and a refusal must never fail while being worded.
 */
export function describeNumericDate (seconds: number): string {
  const ms = seconds * 1000
  return Math.abs(ms) <= MAX_DATE_MS ? new Date(ms).toISOString() : `NumericDate ${seconds} (beyond the calendar)`
}

/** RFC 7519 4.1.3: `aud` is one string or an array of them. (No array built per request: this runs on every pull.) */
function hasAudience (aud: string | string[] | undefined, audience: string): boolean {
  return aud === audience || (Array.isArray(aud) && aud.includes(audience))
}

export function isEntitled (claims: LicenseClaims, channel: string): boolean {
  return claims.channels.includes('*') || claims.channels.includes(channel)
}

export function checkEntitlement (claims: LicenseClaims, channel: string): void {
  if (!isEntitled(claims, channel)) throw new ChartcastError('CHANNEL_NOT_ENTITLED', `license does not cover channel "${channel}"`)
}

/**
 * The channel the W&B endpoint serves (defaultChannel), entitlement checked: a license that
 * entitles nothing is CHANNEL_NOT_ENTITLED, one that names no channel CHANNEL_NOT_FOUND.
 */
export function operatorChannel (claims: LicenseClaims): string {
  if (claims.channels.length === 0) throw new ChartcastError('CHANNEL_NOT_ENTITLED', 'license entitles no channel ("channels" is empty)')
  const named = defaultChannel(claims)
  if (named === null) throw new ChartcastError('CHANNEL_NOT_FOUND', 'the license names no channel (add a "channel" claim)')
  checkEntitlement(claims, named)
  return named
}

/** The channel the W&B-compatible endpoint serves: the `channel` claim, else the first entitled channel. */
export function defaultChannel (claims: LicenseClaims): string | null {
  if (claims.channel !== undefined) return claims.channel
  const first = claims.channels.find((c) => c !== '*')
  return first ?? null
}
