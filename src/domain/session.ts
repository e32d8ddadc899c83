/**
 * Dashboard session rules, with no framework in them: how long a session may live, which
 * requests a cookie may authenticate, where a login may send the browser back to, and how an
 * OpenID Connect claim becomes a chartcast role (OIDC_ROLES).
 */
import { ROLES, isRole, type Role } from './publisher-token.js'

/** The session cookie: sealed (encrypted and authenticated), HttpOnly, SameSite=Strict. */
export const SESSION_COOKIE = 'chartcast_session'
/** The OIDC login's state, nonce, PKCE verifier and returnTo, between /auth/oidc/login and the callback. */
export const OIDC_TRANSACTION_COOKIE = 'chartcast_oidc'

/** What a session cookie holds once unsealed. */
export interface SessionClaims {
  /** The person: the token's subject, or the OIDC email (else `sub`). Audit rows name it. */
  sub: string
  role: Role
  via: 'token' | 'oidc'
  /** The session's own id: logging out revokes it. */
  jti: string
  /** Seconds since the epoch; never after the token's or ID token's own exp. */
  exp: number
  iat: number
  /** For a token session, the publisher token's jti: revoking the token ends its sessions too. */
  tokenJti?: string
}

/**
 * A session ends at SESSION_MAX_AGE or when the credential it came from ends, whichever is
 * first: a session never outlives its token or ID token.
 */
export function sessionExpiry (nowSeconds: number, maxAgeSeconds: number, credentialExp: number): number {
  return Math.min(nowSeconds + maxAgeSeconds, Math.floor(credentialExp))
}

/** Methods that change nothing (RFC 9110 9.2.1): the only ones a cookie may send without an Origin check. */
export function isSafeMethod (method: string): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS'
}

/**
 * A cookie-authenticated mutation must come from a page of this server: its Origin header
 * (sent by every current browser on a non-GET fetch) must be exactly the server's origin.
 * A missing Origin is refused too: the cookie alone proves nothing about who made the request.
 */
export function originAllowed (origin: string | undefined, expectedOrigin: string): boolean {
  return origin !== undefined && origin === expectedOrigin
}

/**
 * Where a login may send the browser back to: a path on this server only. Anything with a
 * scheme, a host (`//evil.example`, `/\evil.example`, which browsers read as a host), a
 * backslash or a control character is refused, so the login is never an open redirect.
 */
export function safeReturnTo (returnTo: unknown, fallback = '/ui/'): string {
  if (typeof returnTo !== 'string' || returnTo.length > 2048) return fallback
  if (!returnTo.startsWith('/') || returnTo.startsWith('//')) return fallback
  // eslint-disable-next-line no-control-regex
  if (/[\\\u0000-\u001f\u007f]/.test(returnTo)) return fallback
  // A path that resolves against some origin to that same origin is a path of this server.
  const base = 'http://chartcast.invalid'
  let resolved: URL
  try {
    resolved = new URL(returnTo, base)
  } catch {
    return fallback
  }
  if (resolved.origin !== base) return fallback
  return resolved.pathname + resolved.search + resolved.hash
}

/** One OIDC_ROLES entry: people whose claim holds `value` (or anyone, for `*`) get `role`. */
export interface RoleRule {
  value: string
  role: Role
}

/**
 * OIDC_ROLES: comma-separated `claim-value=role` entries, e.g.
 * `chartcast-admins=admin,chartcast-release=publisher,*=reader`. `*` matches anyone the
 * provider signs in. Whitespace around names is ignored; a value may not contain `,` or `=`.
 * Returns the rules, or a message saying what is wrong.
 */
export function parseRoleMapping (text: string): { ok: true, rules: RoleRule[] } | { ok: false, message: string } {
  const rules: RoleRule[] = []
  const seen = new Set<string>()
  for (const [index, raw] of text.split(',').entries()) {
    const entry = raw.trim()
    if (entry === '') return { ok: false, message: `entry ${index + 1} is empty` }
    const parts = entry.split('=')
    if (parts.length !== 2) return { ok: false, message: `entry ${index + 1} ("${entry}") must be claim-value=role` }
    const value = parts[0]!.trim()
    const role = parts[1]!.trim()
    if (value === '') return { ok: false, message: `entry ${index + 1} has no claim value before "="` }
    if (!isRole(role)) return { ok: false, message: `entry ${index + 1} ("${entry}"): role must be one of ${ROLES.join(', ')}` }
    if (seen.has(value)) return { ok: false, message: `"${value}" is mapped twice` }
    seen.add(value)
    rules.push({ value, role })
  }
  return { ok: true, rules }
}

/**
 * The role for a person whose ID token carries `claim` (a string, or an array of strings as
 * `groups` usually is): the highest role among the rules that match, or null when none does
 * (then no session is made).
 */
export function mapRole (claim: unknown, rules: readonly RoleRule[]): Role | null {
  const values = new Set(typeof claim === 'string' ? [claim] : Array.isArray(claim) ? claim.filter((v): v is string => typeof v === 'string') : [])
  let best = -1
  for (const rule of rules) {
    if (rule.value === '*' || values.has(rule.value)) best = Math.max(best, ROLES.indexOf(rule.role))
  }
  return best < 0 ? null : ROLES[best]!
}

/**
 * The claim OIDC_ROLE_CLAIM names: a top-level claim (`groups`), else a dotted path into
 * nested objects (`realm_access.roles`, where Keycloak puts realm roles).
 */
export function claimAt (claims: Record<string, unknown>, name: string): unknown {
  if (name in claims) return claims[name]
  let node: unknown = claims
  for (const key of name.split('.')) {
    if (node === null || typeof node !== 'object' || Array.isArray(node) || !Object.hasOwn(node, key)) return undefined
    node = (node as Record<string, unknown>)[key]
  }
  return node
}

/** The session cookie's value in a Cookie header, without parsing the rest of the header. */
export function cookieValue (header: string | undefined, name: string): string | null {
  if (header === undefined) return null
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0) continue
    if (part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim()
      return value === '' ? null : value
    }
  }
  return null
}
