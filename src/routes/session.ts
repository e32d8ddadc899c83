/**
 * The dashboard's session: sign in with a publisher token (where single sign-on is not set up,
 * or for an operator), see who is signed in, sign out. The browser only ever holds the sealed
 * session cookie (src/plugins/auth.ts); the token it signed in with is not kept anywhere.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type, type Static } from 'typebox'
import { cookieValue, originAllowed, SESSION_COOKIE, type SessionClaims } from '../domain/session.js'
import { ChartcastError } from '../errors.js'
import { described, problemsFor, publisherRoute, refuseUnstorableText, sessionRoute, BODY_MEDIA_TYPES, BODY_PROBLEMS } from './common.js'

export const SessionInput = Type.Object({
  token: Type.String({ minLength: 1, maxLength: 8192, description: 'A publisher token from `chartcast token create`' })
}, { additionalProperties: false })

export const Session = Type.Object({
  subject: Type.String({ description: 'Who is signed in: the token\'s subject, or the OIDC email (else sub); audit rows name it' }),
  role: Type.Union([Type.Literal('reader'), Type.Literal('publisher'), Type.Literal('admin')]),
  expiresAt: Type.String({ format: 'date-time', description: 'When the session ends: never after the token or ID token it came from' }),
  via: Type.Union([Type.Literal('token'), Type.Literal('oidc')])
}, { additionalProperties: false })
export type SessionView = Static<typeof Session>

export const AuthConfig = Type.Object({
  oidc: Type.Boolean({ description: 'Single sign-on is set up: GET /auth/oidc/login starts it' })
}, { additionalProperties: false })

export function presentSession (claims: SessionClaims): SessionView {
  return { subject: claims.sub, role: claims.role, expiresAt: new Date(claims.exp * 1000).toISOString(), via: claims.via }
}

const sessionRoutes: FastifyPluginAsyncTypebox<{ apiRateLimit: object | false, oidc: boolean }> = async (fastify, opts) => {
  /** A cross-site page must not sign a browser in (login CSRF): a browser's Origin, when sent, must be ours. */
  const refuseForeignOrigin = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const origin = request.headers.origin
    if (origin !== undefined && !originAllowed(origin, fastify.sessions.expectedOrigin(request))) {
      reply.header('connection', 'close')
      throw new ChartcastError('ORIGIN_NOT_ALLOWED', `sign-in must come from ${fastify.sessions.expectedOrigin(request)}`)
    }
  }

  fastify.post('/auth/session', {
    onRequest: refuseForeignOrigin,
    preValidation: refuseUnstorableText,
    config: { rateLimit: opts.apiRateLimit },
    schema: {
      summary: 'Sign in to the dashboard with a publisher token: sets the HttpOnly session cookie',
      tags: ['session'],
      body: SessionInput,
      // Not a secured route: the credential is the body. Its refusals are those of a token.
      consumes: BODY_MEDIA_TYPES,
      response: { 200: described(Session, 'Signed in; the session cookie is set'), ...problemsFor(...BODY_PROBLEMS, 'UNAUTHORIZED', 'TOKEN_REVOKED', 'ORIGIN_NOT_ALLOWED', 'RATE_LIMITED', 'DATABASE_UNAVAILABLE') }
    }
  }, async (request, reply) => {
    const token = fastify.sessions.verifyToken(request.body.token)
    const claims = await fastify.sessions.start(request, reply, { sub: token.sub, role: token.role, via: 'token', credentialExp: token.exp, tokenJti: token.jti })
    return presentSession(claims)
  })

  fastify.get('/auth/session', {
    onRequest: fastify.requireRole('reader'),
    config: { rateLimit: opts.apiRateLimit },
    schema: {
      summary: 'Who is signed in (with a session cookie or a Bearer token), with which role, until when',
      tags: ['session'],
      ...publisherRoute({ 200: Session })
    }
  }, async (request) => {
    const session = request.dashboardSession
    if (session !== null) return presentSession(session)
    return { subject: request.user.sub, role: request.user.role, expiresAt: new Date(request.user.exp * 1000).toISOString(), via: 'token' as const }
  })

  fastify.delete('/auth/session', {
    config: { rateLimit: opts.apiRateLimit },
    schema: {
      summary: 'Sign out: the cookie is cleared and the session is refused from now on, on every replica, even if a copy was kept',
      tags: ['session'],
      ...sessionRoute({ 204: Type.Null({ description: 'Signed out (also when there was no live session)' }) }),
      // Without a session there is nothing to refuse: the cookie is cleared all the same.
      security: [{ session: [] }, {}]
    }
  }, async (request, reply) => {
    const sealed = cookieValue(request.headers.cookie, SESSION_COOKIE)
    const claims = sealed === null ? null : await fastify.sessions.sealer.openSession(sealed, Math.floor(fastify.sessions.now() / 1000))
    if (claims !== null) {
      if (!originAllowed(request.headers.origin, fastify.sessions.expectedOrigin(request))) {
        throw new ChartcastError('ORIGIN_NOT_ALLOWED', `sign-out with a session cookie must come from ${fastify.sessions.expectedOrigin(request)}`)
      }
      await fastify.store.endSession(claims.jti, new Date(claims.exp * 1000), claims.sub)
      fastify.publisherTokenRevocations.endSession(claims.jti)
    }
    fastify.sessions.clearCookie(request, reply, SESSION_COOKIE, '/')
    return await reply.code(204).send(undefined as never)
  })

  fastify.get('/auth/config', {
    schema: {
      summary: 'How one may sign in to the dashboard',
      tags: ['session'],
      response: { 200: described(AuthConfig, 'OK') }
    }
  }, async () => ({ oidc: opts.oidc }))
}

export default sessionRoutes
