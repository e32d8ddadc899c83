/** Publisher token revocations: a revoked token is refused at once here and, on the change notice, on every replica. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { TokenRevocation, TokenRevocationInput } from '../schemas.js'
import { described, publisherRoute, refuseUnstorableText } from './common.js'
import { presentTokenRevocation } from './present.js'

const tokensRoutes: FastifyPluginAsyncTypebox<{ apiRateLimit: object | false }> = async (fastify, opts) => {
  fastify.post('/tokens/revocations', {
    onRequest: fastify.requireRole('admin'),
    preValidation: refuseUnstorableText,
    config: { rateLimit: opts.apiRateLimit },
    schema: {
      summary: 'Revoke a publisher token by its jti, for good; 200 with the earlier revocation when it is revoked already',
      tags: ['tokens'],
      body: TokenRevocationInput,
      ...publisherRoute({ 200: described(TokenRevocation, 'Already revoked: the earlier revocation'), 201: described(TokenRevocation, 'Revoked') }, { body: true })
    }
  }, async (request, reply) => {
    const { jti, reason } = request.body
    const { created, row } = await fastify.store.revokePublisherToken(jti, reason, request.user.sub)
    // In memory now, so the next request with the token is refused even before the notice arrives.
    fastify.publisherTokenRevocations.add(row.jti)
    if (created) fastify.metrics.mutations.inc({ action: 'token.revoke' })
    return await reply.code(created ? 201 : 200).send(presentTokenRevocation(row))
  })

  fastify.get('/tokens/revocations', {
    onRequest: fastify.requireRole('admin'),
    config: { rateLimit: opts.apiRateLimit },
    schema: {
      summary: 'All publisher token revocations, newest first',
      tags: ['tokens'],
      ...publisherRoute({ 200: Type.Object({ revocations: Type.Array(TokenRevocation) }) })
    }
  }, async () => ({ revocations: (await fastify.store.listPublisherTokenRevocations()).map(presentTokenRevocation) }))
}

export default tokensRoutes
