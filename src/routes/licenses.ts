import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ChartcastError } from '../errors.js'
import { Revocation, RevocationInput } from '../schemas.js'
import { bearerSecurity, problemResponses } from './common.js'
import { presentRevocation } from './present.js'

const licensesRoutes: FastifyPluginAsyncTypebox<{ apiRateLimit: object | false }> = async (fastify, opts) => {
  fastify.post('/licenses/revocations', {
    onRequest: fastify.requireRole('admin'),
    config: { rateLimit: opts.apiRateLimit },
    schema: {
      summary: 'Revoke a license by jti, or every license of a deployment by sub; effective on the next pull',
      tags: ['licenses'],
      security: bearerSecurity,
      body: RevocationInput,
      response: { 201: Revocation, ...problemResponses }
    }
  }, async (request, reply) => {
    const { jti, sub, reason } = request.body
    if (jti === undefined && sub === undefined) throw new ChartcastError('VALIDATION_FAILED', 'name the license to revoke with "jti", "sub" or both')
    const row = await fastify.store.revoke({ ...(jti !== undefined && { jti }), ...(sub !== undefined && { sub }), reason }, request.user.sub)
    fastify.metrics.mutations.inc({ action: 'license.revoke' })
    try {
      await fastify.licenses.loadRevocations()
    } catch (error) {
      fastify.log.warn({ reason: (error as Error).message }, 'revocation reload failed; the change notice will retry')
    }
    return await reply.code(201).send(presentRevocation(row))
  })

  fastify.get('/licenses/revocations', {
    onRequest: fastify.requireRole('admin'),
    config: { rateLimit: opts.apiRateLimit },
    schema: {
      summary: 'All revocations, newest first',
      tags: ['licenses'],
      security: bearerSecurity,
      response: { 200: Type.Object({ revocations: Type.Array(Revocation) }), ...problemResponses }
    }
  }, async () => ({ revocations: (await fastify.store.listRevocations()).map(presentRevocation) }))
}

export default licensesRoutes
