/** Liveness (the process answers) and readiness (database reachable, channels loaded) are separate. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'

const PING_TIMEOUT_MS = 2_000

const healthRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/livez', { schema: { tags: ['health'], response: { 200: Type.Object({ status: Type.Literal('ok') }) } } }, async () => ({ status: 'ok' as const }))

  fastify.get('/readyz', {
    schema: {
      tags: ['health'],
      response: {
        200: Type.Object({ status: Type.String(), database: Type.Boolean(), channelsLoaded: Type.Boolean(), driver: Type.String() }),
        503: Type.Object({ status: Type.String(), database: Type.Boolean(), channelsLoaded: Type.Boolean(), driver: Type.String() })
      }
    }
  }, async (_request, reply) => {
    let database = true
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        fastify.database.ping(),
        new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error('ping timed out')), PING_TIMEOUT_MS) })
      ])
    } catch {
      database = false
    } finally {
      clearTimeout(timer)
    }
    const channelsLoaded = fastify.specCache.loaded
    const ready = database && channelsLoaded
    return await reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', database, channelsLoaded, driver: fastify.database.driver })
  })
}

export default healthRoutes
