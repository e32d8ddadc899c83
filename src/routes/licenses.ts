import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ChartcastError } from '../errors.js'
import { Revocation, RevocationIdParams, RevocationInput, RevocationLiftInput } from '../schemas.js'
import { described, publisherRoute, refuseUnstorableText } from './common.js'
import { presentRevocation } from './present.js'

const licensesRoutes: FastifyPluginAsyncTypebox<{ apiRateLimit: object | false }> = async (fastify, opts) => {
  /** This replica honours a committed change before answering; the others on its change notice. */
  const reloadRevocations = async (): Promise<void> => {
    try {
      await fastify.licenses.loadRevocations()
    } catch (error) {
      fastify.log.warn({ reason: (error as Error).message }, 'revocation reload failed; the change notice will retry')
    }
  }

  fastify.post('/licenses/revocations', {
    onRequest: fastify.requireRole('admin'),
    preValidation: refuseUnstorableText,
    config: { rateLimit: opts.apiRateLimit },
    schema: {
      summary: 'Revoke a license by jti, or every license of a deployment by sub; effective on the next pull',
      tags: ['licenses'],
      body: RevocationInput,
      ...publisherRoute({ 201: Revocation }, { body: true })
    }
  }, async (request, reply) => {
    const { jti, sub, reason } = request.body
    if (jti === undefined && sub === undefined) throw new ChartcastError('VALIDATION_FAILED', 'name the license to revoke with "jti", "sub" or both')
    const row = await fastify.store.revoke({ ...(jti !== undefined && { jti }), ...(sub !== undefined && { sub }), reason }, request.user.sub)
    fastify.metrics.mutations.inc({ action: 'license.revoke' })
    await reloadRevocations()
    return await reply.code(201).send(presentRevocation(row))
  })

  fastify.get('/licenses/revocations', {
    onRequest: fastify.requireRole('admin'),
    config: { rateLimit: opts.apiRateLimit },
    schema: {
      summary: 'All revocations, newest first',
      tags: ['licenses'],
      ...publisherRoute({ 200: Type.Object({ revocations: Type.Array(Revocation) }) })
    }
  }, async () => ({ revocations: (await fastify.store.listRevocationsWithLifts()).map(({ revocation, lift }) => presentRevocation(revocation, lift)) }))

  fastify.post('/licenses/revocations/:id/lift', {
    onRequest: fastify.requireRole('admin'),
    preValidation: refuseUnstorableText,
    config: { rateLimit: opts.apiRateLimit },
    schema: {
      summary: 'Lift a license revocation (once; recorded, not deleted); effective on the next pull',
      tags: ['licenses'],
      params: RevocationIdParams,
      body: RevocationLiftInput,
      ...publisherRoute({ 201: described(Revocation, 'Lifted') }, { body: true, problems: ['REVOCATION_NOT_FOUND', 'REVOCATION_ALREADY_LIFTED'] })
    }
  }, async (request, reply) => {
    const { revocation, lift } = await fastify.store.liftRevocation(Number(request.params.id), request.body.reason, request.user.sub)
    fastify.metrics.mutations.inc({ action: 'license.revocation.lift' })
    await reloadRevocations()
    return await reply.code(201).send(presentRevocation(revocation, lift))
  })
}

export default licensesRoutes
