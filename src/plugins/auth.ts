/**
 * Publisher authentication: HS256 bearer tokens signed with AUTH_SECRET carrying `sub` and
 * `role`. Roles are ordered reader < publisher < admin; a route names the least it needs.
 *
 * The guard runs as the route's `onRequest` hook, before fastify reads or parses a body: an
 * unauthenticated write is answered 401 at the cost of one header check, whatever it sends.
 */
import fp from 'fastify-plugin'
import fastifyJwt from '@fastify/jwt'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { ChartcastError } from '../errors.js'

export const ROLES = ['reader', 'publisher', 'admin'] as const
export type Role = typeof ROLES[number]

export interface PublisherClaims {
  sub: string
  role: Role
}

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

export function isRole (value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value)
}

const BEARER_CHALLENGE = { 'www-authenticate': 'Bearer realm="chartcast"' }

/**
 * Every check a publisher token must pass, in one place; sets and returns `request.user`.
 * Throws UNAUTHORIZED (401) for a missing, malformed, badly signed or incomplete token.
 */
export async function verifyPublisherToken (request: FastifyRequest): Promise<PublisherClaims> {
  const header = request.headers.authorization
  if (header === undefined || !/^Bearer\s+\S+$/i.test(header)) {
    throw new ChartcastError('UNAUTHORIZED', 'send a publisher token as "Authorization: Bearer <token>"', BEARER_CHALLENGE)
  }
  try {
    await request.jwtVerify()
  } catch {
    throw new ChartcastError('UNAUTHORIZED', 'publisher token is invalid or expired', { 'www-authenticate': 'Bearer realm="chartcast", error="invalid_token"' })
  }
  const user = request.user
  if (typeof user?.sub !== 'string' || !isRole(user.role)) {
    throw new ChartcastError('UNAUTHORIZED', 'publisher token lacks "sub" or a known "role"', BEARER_CHALLENGE)
  }
  return user
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

export default fp<{ secret: string }>(async (fastify, opts) => {
  await fastify.register(fastifyJwt, {
    secret: opts.secret,
    sign: { algorithm: 'HS256' },
    verify: { algorithms: ['HS256'] }
  })

  fastify.decorate('requireRole', (role: Role) => async (request: FastifyRequest, reply: FastifyReply) => {
    try {
      const user = await verifyPublisherToken(request)
      if (ROLES.indexOf(user.role) < ROLES.indexOf(role)) {
        throw new ChartcastError('FORBIDDEN', `this needs the ${role} role; the token has ${user.role}`)
      }
    } catch (error) {
      closeIfBodyPending(request, reply)
      throw error
    }
  })
}, { name: 'chartcast-auth' })
