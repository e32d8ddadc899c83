/** Liveness (the process answers) and readiness (database reachable, channels loaded) are separate. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ChartcastError, toProblem } from '../errors.js'
import { PROBLEM_MEDIA_TYPE, problemResponse } from './common.js'

const PING_TIMEOUT_MS = 2_000

const ReadinessFields = {
  database: Type.Boolean(),
  channelsLoaded: Type.Boolean(),
  changeListener: Type.Boolean({ description: 'change notifications are being received (false while the listening connection is down or reconnecting: this replica may serve an old state)' }),
  driver: Type.String()
}

/** Why the server is not ready, for the problem's `detail`. */
function notReadyDetail (database: boolean, channelsLoaded: boolean, changeListener: boolean): string {
  const reasons = [
    ...(database ? [] : ['the database is unreachable']),
    ...(channelsLoaded ? [] : ['the channels are not loaded yet']),
    ...(changeListener ? [] : ['the change listener is down (reconnecting)'])
  ]
  return `not ready: ${reasons.join(' and ')}`
}

const healthRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/livez', {
    schema: { summary: 'Liveness: the process answers', tags: ['health'], response: { 200: Type.Object({ status: Type.Literal('ok') }, { description: 'Alive' }) } }
  }, async () => ({ status: 'ok' as const }))

  fastify.get('/readyz', {
    schema: {
      summary: 'Readiness: the database answers, the channels are loaded and change notifications arrive',
      tags: ['health'],
      response: {
        200: Type.Object({ status: Type.Literal('ready'), ...ReadinessFields }, { description: 'Ready to serve' }),
        // RFC 9457 extension members carry the same checks as the 200 answer.
        503: problemResponse(['NOT_READY'], ReadinessFields)
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
    const changeListener = fastify.database.listening()
    const { driver } = fastify.database
    if (database && channelsLoaded && changeListener) return { status: 'ready' as const, database, channelsLoaded, changeListener, driver }
    const problem = toProblem(new ChartcastError('NOT_READY', notReadyDetail(database, channelsLoaded, changeListener)))
    return await reply.code(503).type(PROBLEM_MEDIA_TYPE).send({ ...problem, database, channelsLoaded, changeListener, driver })
  })
}

export default healthRoutes
