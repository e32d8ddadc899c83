/**
 * Publisher authentication: HS256 bearer tokens signed with AUTH_SECRET carrying `sub` and
 * `role`. Roles are ordered reader < publisher < admin; a route names the least it needs.
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
    requireRole: (role: Role) => (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
}

export function isRole (value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value)
}

const BEARER_CHALLENGE = { 'www-authenticate': 'Bearer realm="chartcast"' }

export default fp<{ secret: string }>(async (fastify, opts) => {
  await fastify.register(fastifyJwt, {
    secret: opts.secret,
    sign: { algorithm: 'HS256' },
    verify: { algorithms: ['HS256'] }
  })

  fastify.decorate('requireRole', (role: Role) => async (request: FastifyRequest) => {
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
    if (ROLES.indexOf(user.role) < ROLES.indexOf(role)) {
      throw new ChartcastError('FORBIDDEN', `this needs the ${role} role; the token has ${user.role}`)
    }
  })
}, { name: 'chartcast-auth' })
