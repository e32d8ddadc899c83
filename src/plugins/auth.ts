/**
 * Publisher authentication: HS256 bearer tokens signed with AUTH_SECRET carrying `sub`, `role`,
 * `exp` and `jti` (src/domain/publisher-token.ts). Roles are ordered reader < publisher < admin;
 * a route names the least it needs.
 *
 * The guard runs as the route's `onRequest` hook, before fastify reads or parses a body: an
 * unauthenticated write is answered 401 at the cost of one header check, whatever it sends.
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
    /** An `onRequest` hook: 401 without a valid publisher token, 403 when its role is below `role`. */
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

/**
 * A refusal sent before the body was read leaves that body on the socket. Closing the
 * connection afterwards means Node does not read (and discard) the rest of it to keep the
 * connection alive, so a client cannot hold the socket by sending it slowly.
 */
function closeIfBodyPending (request: FastifyRequest, reply: FastifyReply): void {
  const length = request.headers['content-length']
  if (request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) reply.header('connection', 'close')
}

export default fp<{ secret: string, maxTokenLifetimeSeconds: number }>(async (fastify, opts) => {
  await fastify.register(fastifyJwt, {
    secret: opts.secret,
    sign: { algorithm: 'HS256' },
    verify: { algorithms: ['HS256'] }
  })
  const policy: PublisherTokenPolicy = { maxLifetimeSeconds: opts.maxTokenLifetimeSeconds }

  fastify.decorate('requireRole', (role: Role) => async (request: FastifyRequest, reply: FastifyReply) => {
    try {
      const header = request.headers.authorization
      if (header === undefined || !/^Bearer\s+\S+$/i.test(header)) {
        throw new ChartcastError('UNAUTHORIZED', 'send a publisher token as "Authorization: Bearer <token>"', BEARER_CHALLENGE)
      }
      const user = await authenticatePublisher(request, policy, fastify.publisherTokenRevocations.jtis)
      if (ROLES.indexOf(user.role) < ROLES.indexOf(role)) {
        throw new ChartcastError('FORBIDDEN', `this needs the ${role} role; the token has ${user.role}`)
      }
    } catch (error) {
      closeIfBodyPending(request, reply)
      throw error
    }
  })
}, { name: 'chartcast-auth', dependencies: ['chartcast-spec-state'] })
