/**
 * Single sign-on with OpenID Connect: GET /auth/oidc/login sends the browser to the provider,
 * GET /auth/oidc/callback takes it back, maps the ID token's role claim through OIDC_ROLES and
 * sets the same session cookie a token sign-in sets. Registered only when OIDC_ISSUER is set.
 *
 * Between the two, the login's state, nonce and PKCE verifier travel in a sealed cookie of
 * their own (SameSite=Lax: the callback is a top-level navigation from the provider's site,
 * which a Strict cookie would not accompany), so the callback may land on any replica.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { OidcConfig } from '../config.js'
import { claimAt, cookieValue, mapRole, OIDC_TRANSACTION_COOKIE, safeReturnTo } from '../domain/session.js'
import { unstorableCodeUnit } from '../domain/storable-text.js'
import { ChartcastError } from '../errors.js'
import { OidcSignIn } from '../services/oidc-sign-in.js'
import { problemsFor } from './common.js'

/** How long a person may take at the provider's login page. */
const TRANSACTION_SECONDS = 600
const TRANSACTION_PATH = '/auth/oidc'

const Redirect = Type.Null({ description: 'Found: the Location header says where the browser goes next' })

/**
 * Who the audit log names: the email when the provider gives one it has not marked unverified
 * (people recognise it), else the provider's `sub`.
 */
export function personOf (claims: Record<string, unknown> & { sub: string }): string {
  const email = claims.email
  return typeof email === 'string' && email !== '' && claims.email_verified !== false ? email : claims.sub
}

const oidcRoutes: FastifyPluginAsyncTypebox<{ oidc: OidcConfig, production: boolean, apiRateLimit: object | false }> = async (fastify, opts) => {
  const signIn = new OidcSignIn(opts.oidc, !opts.production)
  const nowSeconds = (): number => Math.floor(fastify.sessions.now() / 1000)

  fastify.get('/auth/oidc/login', {
    config: { rateLimit: opts.apiRateLimit },
    schema: {
      summary: 'Start single sign-on: redirects to the identity provider (authorization code flow with PKCE)',
      tags: ['session'],
      querystring: Type.Object({ returnTo: Type.Optional(Type.String({ maxLength: 2048, description: 'A path on this server to come back to (default /ui/); anything else is ignored' })) }),
      response: { 302: Redirect, ...problemsFor('VALIDATION_FAILED', 'RATE_LIMITED', 'IDENTITY_PROVIDER_UNAVAILABLE') }
    }
  }, async (request, reply) => {
    const { transaction, url } = await signIn.start(safeReturnTo(request.query.returnTo))
    const sealed = await fastify.sessions.sealer.sealTransaction(transaction, nowSeconds() + TRANSACTION_SECONDS)
    fastify.sessions.setCookie(request, reply, OIDC_TRANSACTION_COOKIE, sealed, { path: TRANSACTION_PATH, maxAgeSeconds: TRANSACTION_SECONDS, sameSite: 'Lax' })
    return await reply.code(302).header('location', url.href).header('cache-control', 'no-store').send(undefined as never)
  })

  fastify.get('/auth/oidc/callback', {
    config: { rateLimit: opts.apiRateLimit },
    schema: {
      summary: 'Where the identity provider sends the browser back: validates state, nonce and PKCE, maps the role, sets the session cookie, redirects to returnTo',
      tags: ['session'],
      response: { 302: Redirect, ...problemsFor('SIGN_IN_FAILED', 'NO_ROLE', 'RATE_LIMITED', 'DATABASE_UNAVAILABLE', 'IDENTITY_PROVIDER_UNAVAILABLE') }
    }
  }, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    // Used once, whatever the outcome: a second callback with the same cookie finds none.
    fastify.sessions.clearCookie(request, reply, OIDC_TRANSACTION_COOKIE, TRANSACTION_PATH)
    const sealed = cookieValue(request.headers.cookie, OIDC_TRANSACTION_COOKIE)
    const transaction = sealed === null ? null : await fastify.sessions.sealer.openTransaction(sealed, nowSeconds())
    if (transaction === null) throw new ChartcastError('SIGN_IN_FAILED', `no sign-in is in progress in this browser, or it took longer than ${TRANSACTION_SECONDS / 60} minutes; start again at /auth/oidc/login`)
    const callbackUrl = new URL(request.url, opts.oidc.redirectUri)
    const result = await signIn.finish(callbackUrl, transaction)
    if (!result.ok) {
      request.log.warn({ reason: result.failure.message }, 'single sign-on callback refused')
      if (result.failure.kind === 'unavailable') throw new ChartcastError('IDENTITY_PROVIDER_UNAVAILABLE', 'the identity provider could not be reached to finish the sign-in')
      throw new ChartcastError('SIGN_IN_FAILED', `the identity provider's answer was refused (${result.failure.message}); start again at /auth/oidc/login`)
    }
    const { claims } = result.identity
    const person = personOf(claims)
    // The person becomes the session's owner and every audit row's actor: text the database
    // cannot store would make the sign-in (and each later write) a 500.
    if (unstorableCodeUnit(person) !== null) {
      request.log.warn('single sign-on callback refused: the person\'s email or sub holds a NUL character or an unpaired surrogate')
      throw new ChartcastError('SIGN_IN_FAILED', 'the identity provider names this person (email, or sub) with a NUL character or an unpaired surrogate, which cannot be stored; ask its administrator to correct the account')
    }
    const role = mapRole(claimAt(claims, opts.oidc.roleClaim), opts.oidc.roles)
    if (role === null) {
      request.log.info({ person }, 'single sign-on: no OIDC_ROLES entry matches; no session')
      throw new ChartcastError('NO_ROLE', `${person} is signed in at the identity provider, but no OIDC_ROLES entry matches their "${opts.oidc.roleClaim}" claim; ask an administrator for access`)
    }
    await fastify.sessions.start(request, reply, { sub: person, role, via: 'oidc', credentialExp: claims.exp })
    return await reply.code(302).header('location', safeReturnTo(transaction.returnTo)).send(undefined as never)
  })

}

export default oidcRoutes
