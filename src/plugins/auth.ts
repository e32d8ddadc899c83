/**
 * Publisher authentication: HS256 bearer tokens signed with AUTH_SECRET carrying `sub`, `role`,
 * `exp` and `jti` (src/domain/publisher-token.ts), or, for the dashboard, a sealed session
 * cookie made from such a token or from an OpenID Connect sign-in (src/domain/session.ts).
 * Roles are ordered reader < publisher < admin; a route names the least it needs.
 *
 * The guard runs as the route's `onRequest` hook, before fastify reads or parses a body: an
 * unauthenticated write is answered 401 at the cost of one header check, whatever it sends.
 * A request with an Authorization header is judged by it alone, exactly as before sessions;
 * the cookie is looked at only without one.
 */
import fp from 'fastify-plugin'
import fastifyJwt from '@fastify/jwt'
import { randomUUID } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { ChartcastError } from '../errors.js'
import { checkPublisherToken, ROLES, type PublisherClaims, type PublisherTokenPolicy, type Role } from '../domain/publisher-token.js'
import { cookieValue, isSafeMethod, originAllowed, sessionExpiry, SESSION_COOKIE, type SessionClaims } from '../domain/session.js'
import { SessionSealer } from '../services/session-sealer.js'

export { isRole, ROLES, type PublisherClaims, type Role } from '../domain/publisher-token.js'

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: PublisherClaims
    user: PublisherClaims
  }
}

/** Cookie attributes (RFC 6265bis) for what the server sets in the browser. */
export interface CookieOptions {
  path: string
  maxAgeSeconds: number
  sameSite: 'Strict' | 'Lax'
}

/** Dashboard sessions: making, reading and ending them, and the cookie they travel in. */
export interface Sessions {
  sealer: SessionSealer
  maxAgeSeconds: number
  now: () => number
  /** The origin a cookie-authenticated mutation must come from: PUBLIC_URL, else this request's own. */
  expectedOrigin: (request: FastifyRequest) => string
  /** Seals a new session for `sub`, records it (audit), sets the cookie; returns its claims. */
  start: (request: FastifyRequest, reply: FastifyReply, person: { sub: string, role: Role, via: 'token' | 'oidc', credentialExp: number, tokenJti?: string }) => Promise<SessionClaims>
  /** A publisher token given to sign in with, checked as a Bearer token would be. */
  verifyToken: (token: string) => PublisherClaims
  /** The live session the request's cookie holds, or a refusal. */
  authenticate: (request: FastifyRequest) => Promise<SessionClaims>
  setCookie: (request: FastifyRequest, reply: FastifyReply, name: string, value: string, options: CookieOptions) => void
  clearCookie: (request: FastifyRequest, reply: FastifyReply, name: string, path: string) => void
}

declare module 'fastify' {
  interface FastifyInstance {
    /** An `onRequest` hook: 401 without a valid publisher token or session, 403 when its role is below `role`. */
    requireRole: (role: Role) => (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    sessions: Sessions
  }
  interface FastifyRequest {
    /** The dashboard session that authenticated this request, when it was a cookie rather than a token. */
    dashboardSession: SessionClaims | null
  }
}

const BEARER_CHALLENGE = { 'www-authenticate': 'Bearer realm="chartcast"' }
// RFC 6750 3.1: invalid_token for a token that is expired, revoked or malformed.
const INVALID_TOKEN_CHALLENGE = { 'www-authenticate': 'Bearer realm="chartcast", error="invalid_token"' }

/**
 * Verifies the request's bearer token (signature, exp, nbf) and the publisher token rules
 * (exp and jti present, lifetime within the maximum, not revoked); sets and returns request.user.
 */
export async function authenticatePublisher (request: FastifyRequest, policy: PublisherTokenPolicy, revokedJtis: ReadonlySet<string>): Promise<PublisherClaims> {
  try {
    await request.jwtVerify()
  } catch {
    throw new ChartcastError('UNAUTHORIZED', 'publisher token is invalid or expired', INVALID_TOKEN_CHALLENGE)
  }
  const check = checkPublisherToken(request.user, Math.floor(Date.now() / 1000), policy, revokedJtis)
  if (!check.ok) throw new ChartcastError(check.code, check.detail, INVALID_TOKEN_CHALLENGE)
  request.user = check.claims
  return check.claims
}

/**
 * A refusal sent before the body was read leaves that body on the socket. Closing the
 * connection afterwards means Node does not read (and discard) the rest of it to keep the
 * connection alive, so a client cannot hold the socket by sending it slowly.
 */
function closeIfBodyPending (request: FastifyRequest, reply: FastifyReply): void {
  const length = request.headers['content-length']
  if (request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) reply.header('connection', 'close')
}

export interface AuthOptions {
  secret: string
  maxTokenLifetimeSeconds: number
  /** SESSION_SECRET (optional: the session key is derived from `secret` and it). */
  sessionSecret: string | null
  sessionMaxAgeSeconds: number
  /** PUBLIC_URL's origin, when set. */
  publicOrigin: string | null
  now?: () => number
}

export default fp<AuthOptions>(async (fastify, opts) => {
  await fastify.register(fastifyJwt, {
    secret: opts.secret,
    sign: { algorithm: 'HS256' },
    verify: { algorithms: ['HS256'] }
  })
  const policy: PublisherTokenPolicy = { maxLifetimeSeconds: opts.maxTokenLifetimeSeconds }
  const now = opts.now ?? Date.now
  const nowSeconds = (): number => Math.floor(now() / 1000)
  const revocations = (): typeof fastify.publisherTokenRevocations => fastify.publisherTokenRevocations

  // Secure whenever the browser reached us over https: directly, through a trusted proxy
  // (request.protocol reads X-Forwarded-Proto only with TRUST_PROXY), or per PUBLIC_URL.
  const secure = (request: FastifyRequest): boolean => request.protocol === 'https' || opts.publicOrigin?.startsWith('https:') === true
  const setCookie = (request: FastifyRequest, reply: FastifyReply, name: string, value: string, options: CookieOptions): void => {
    const attributes = [`${name}=${value}`, `Path=${options.path}`, `Max-Age=${Math.max(0, Math.floor(options.maxAgeSeconds))}`, 'HttpOnly', `SameSite=${options.sameSite}`]
    if (secure(request)) attributes.push('Secure')
    const existing = reply.getHeader('set-cookie')
    const list = existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)]
    reply.header('set-cookie', [...list, attributes.join('; ')])
  }

  const sessions: Sessions = {
    sealer: new SessionSealer(opts.secret, opts.sessionSecret),
    maxAgeSeconds: opts.sessionMaxAgeSeconds,
    now,
    // Through URL, so a default port is dropped as browsers drop it (http://h:80 is http://h).
    // A Host that is no host at all expects an origin no browser sends: the check fails, it does not throw.
    expectedOrigin: (request) => {
      if (opts.publicOrigin !== null) return opts.publicOrigin
      try {
        return new URL(`${request.protocol}://${request.host}`).origin
      } catch {
        return 'invalid://host'
      }
    },
    setCookie,
    clearCookie: (request, reply, name, path) => { setCookie(request, reply, name, '', { path, maxAgeSeconds: 0, sameSite: 'Strict' }) },
    start: async (request, reply, person) => {
      const iat = nowSeconds()
      const claims: SessionClaims = {
        sub: person.sub,
        role: person.role,
        via: person.via,
        jti: randomUUID(),
        iat,
        exp: sessionExpiry(iat, opts.sessionMaxAgeSeconds, person.credentialExp),
        ...(person.tokenJti !== undefined && { tokenJti: person.tokenJti })
      }
      if (claims.exp <= iat) throw new ChartcastError('UNAUTHORIZED', 'the credential expires now; nothing to sign in with', INVALID_TOKEN_CHALLENGE)
      await fastify.store.startSession(claims.jti, claims.sub, { via: claims.via, role: claims.role, expiresAt: new Date(claims.exp * 1000).toISOString() })
      setCookie(request, reply, SESSION_COOKIE, await sessions.sealer.sealSession(claims), { path: '/', maxAgeSeconds: claims.exp - iat, sameSite: 'Strict' })
      return claims
    },
    verifyToken: (token) => {
      let payload: unknown
      try {
        payload = fastify.jwt.verify(token)
      } catch {
        throw new ChartcastError('UNAUTHORIZED', 'publisher token is invalid or expired', INVALID_TOKEN_CHALLENGE)
      }
      const check = checkPublisherToken(payload, Math.floor(Date.now() / 1000), policy, revocations().jtis)
      if (!check.ok) throw new ChartcastError(check.code, check.detail, INVALID_TOKEN_CHALLENGE)
      return check.claims
    },
    authenticate: async (request) => {
      const sealed = cookieValue(request.headers.cookie, SESSION_COOKIE)
      if (sealed === null) throw new ChartcastError('UNAUTHORIZED', 'sign in first (POST /auth/session with a publisher token, or single sign-on), or send "Authorization: Bearer <token>"', BEARER_CHALLENGE)
      const claims = await sessions.sealer.openSession(sealed, nowSeconds())
      if (claims === null) throw new ChartcastError('UNAUTHORIZED', 'the session is not valid or has expired; sign in again', INVALID_TOKEN_CHALLENGE)
      if (revocations().sessions.has(claims.jti)) throw new ChartcastError('UNAUTHORIZED', 'the session has been signed out; sign in again', INVALID_TOKEN_CHALLENGE)
      if (claims.tokenJti !== undefined && revocations().jtis.has(claims.tokenJti)) throw new ChartcastError('TOKEN_REVOKED', 'the publisher token this session was made from has been revoked', INVALID_TOKEN_CHALLENGE)
      return claims
    }
  }
  fastify.decorate('sessions', sessions)
  fastify.decorateRequest('dashboardSession', null)

  fastify.decorate('requireRole', (role: Role) => async (request: FastifyRequest, reply: FastifyReply) => {
    try {
      const header = request.headers.authorization
      let user: PublisherClaims
      if (header !== undefined || request.headers.cookie === undefined) {
        if (header === undefined || !/^Bearer\s+\S+$/i.test(header)) {
          throw new ChartcastError('UNAUTHORIZED', 'send a publisher token as "Authorization: Bearer <token>"', BEARER_CHALLENGE)
        }
        user = await authenticatePublisher(request, policy, revocations().jtis)
      } else {
        const session = await sessions.authenticate(request)
        // A cookie travels with every request the browser makes to us, whoever's page asked
        // for it; SameSite=Strict is one guard, the Origin of a mutation the other.
        if (!isSafeMethod(request.method) && !originAllowed(request.headers.origin, sessions.expectedOrigin(request))) {
          throw new ChartcastError('ORIGIN_NOT_ALLOWED', `a change made with a session cookie must come from ${sessions.expectedOrigin(request)} (the Origin header ${request.headers.origin === undefined ? 'is missing' : 'differs'})`)
        }
        request.dashboardSession = session
        user = { sub: session.sub, role: session.role, jti: session.jti, exp: session.exp, iat: session.iat }
        request.user = user
      }
      if (ROLES.indexOf(user.role) < ROLES.indexOf(role)) {
        throw new ChartcastError('FORBIDDEN', `this needs the ${role} role; ${request.dashboardSession === null ? 'the token' : 'your session'} has ${user.role}`)
      }
    } catch (error) {
      closeIfBodyPending(request, reply)
      throw error
    }
  })
}, { name: 'chartcast-auth', dependencies: ['chartcast-spec-state'] })
