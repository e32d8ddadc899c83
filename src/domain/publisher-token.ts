/**
 * Publisher token rules, decided after the HS256 signature (and `exp`, `nbf`) has been verified:
 * a token must say who it is for (`sub`), what it may do (`role`), when it ends (`exp`, within
 * the configured maximum lifetime) and which token it is (`jti`, so it can be revoked).
 */
import { formatDuration } from './duration.js'
import { unstorableCodeUnit } from './storable-text.js'

export const ROLES = ['reader', 'publisher', 'admin'] as const
export type Role = typeof ROLES[number]

export function isRole (value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value)
}

export interface PublisherClaims {
  sub: string
  role: Role
  jti: string
  exp: number
  iat?: number
}

export interface PublisherTokenPolicy {
  /** The longest a token may live: exp may lie at most this far after iat, and after now. */
  maxLifetimeSeconds: number
}

/**
 * Clocks of the machine that minted a token and of this server differ a little: a token minted
 * with the full lifetime on a machine a few seconds ahead is still accepted.
 */
export const CLOCK_SKEW_SECONDS = 60

export type PublisherTokenCheck =
  | { ok: true, claims: PublisherClaims }
  | { ok: false, code: 'UNAUTHORIZED' | 'TOKEN_REVOKED', detail: string }

function refuse (detail: string): PublisherTokenCheck {
  return { ok: false, code: 'UNAUTHORIZED', detail }
}

function isTime (value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value)
}

/** Checks a verified token's payload; `revokedJtis` is the in-memory set of revoked token ids. */
export function checkPublisherToken (payload: unknown, nowSeconds: number, policy: PublisherTokenPolicy, revokedJtis: ReadonlySet<string>): PublisherTokenCheck {
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) return refuse('publisher token payload is not a JSON object')
  const p = payload as Record<string, unknown>
  if (typeof p.sub !== 'string' || p.sub === '' || !isRole(p.role)) return refuse('publisher token lacks "sub" or a known "role"')
  // `sub` becomes the audit actor (and a session's owner) and `jti` a revocation key: text the
  // database cannot store would turn every write made with the token into a 500.
  if (unstorableCodeUnit(p.sub) !== null) return refuse('publisher token "sub" contains a NUL character or an unpaired surrogate, which cannot be stored')
  // A token without exp would never end, and one without jti could not be revoked short of
  // rotating AUTH_SECRET: both are refused.
  if (!isTime(p.exp)) return refuse('publisher token has no "exp"; mint one with chartcast token create')
  if (typeof p.jti !== 'string' || p.jti === '') return refuse('publisher token has no "jti", so it could not be revoked; mint one with chartcast token create')
  if (unstorableCodeUnit(p.jti) !== null) return refuse('publisher token "jti" contains a NUL character or an unpaired surrogate, which cannot be stored')
  if (p.iat !== undefined && !isTime(p.iat)) return refuse('publisher token "iat" is not a number')
  const max = policy.maxLifetimeSeconds
  if (p.iat !== undefined && p.exp - p.iat > max) return refuse(`publisher token lives longer (exp - iat) than the maximum of ${formatDuration(max * 1000)} (PUBLISHER_TOKEN_MAX_LIFETIME)`)
  // Without this, a token could escape the maximum by claiming an iat in the future.
  if (p.exp - nowSeconds > max + CLOCK_SKEW_SECONDS) return refuse(`publisher token expires more than the maximum of ${formatDuration(max * 1000)} (PUBLISHER_TOKEN_MAX_LIFETIME) from now`)
  if (revokedJtis.has(p.jti)) return { ok: false, code: 'TOKEN_REVOKED', detail: 'publisher token has been revoked' }
  return { ok: true, claims: { sub: p.sub, role: p.role, jti: p.jti, exp: p.exp, ...(p.iat !== undefined && { iat: p.iat }) } }
}
