/**
 * Publisher authentication: HS256 bearer tokens signed with AUTH_SECRET carrying `sub`, `role`,
 * `exp` and `jti` (src/domain/publisher-token.ts). Roles are ordered reader < publisher < admin;
 * a route names the least it needs.
 */
import fp from 'fastify-plugin'
import fastifyJwt from '@fastify/jwt'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { ChartcastError } from '../errors.js'
import { checkPublisherToken, ROLES, type PublisherClaims, type PublisherTokenPolicy, type Role } from '../domain/publisher-token.js'

export { isRole, ROLES, type PublisherClaims, type Role } from '../domain/publisher-token.js'

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: PublisherClaims
    user: PublisherClaims
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    requireRole: (role: Role) => (request: FastifyRequest, reply: FastifyReply) => Promise<void>
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

export default fp<{ secret: string, maxTokenLifetimeSeconds: number }>(async (fastify, opts) => {
  await fastify.register(fastifyJwt, {
    secret: opts.secret,
    sign: { algorithm: 'HS256' },
    verify: { algorithms: ['HS256'] }
  })
  const policy: PublisherTokenPolicy = { maxLifetimeSeconds: opts.maxTokenLifetimeSeconds }

  fastify.decorate('requireRole', (role: Role) => async (request: FastifyRequest) => {
    const header = request.headers.authorization
    if (header === undefined || !/^Bearer\s+\S+$/i.test(header)) {
      throw new ChartcastError('UNAUTHORIZED', 'send a publisher token as "Authorization: Bearer <token>"', BEARER_CHALLENGE)
    }
    const user = await authenticatePublisher(request, policy, fastify.publisherTokenRevocations.jtis)
    if (ROLES.indexOf(user.role) < ROLES.indexOf(role)) {
      throw new ChartcastError('FORBIDDEN', `this needs the ${role} role; the token has ${user.role}`)
    }
  })
}, { name: 'chartcast-auth', dependencies: ['chartcast-spec-state'] })
