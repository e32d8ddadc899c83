import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { AuditEntry, PageQuery } from '../schemas.js'
import { pageLimit, publisherRoute } from './common.js'
import { presentAudit } from './present.js'

const DEFAULT_PAGE = 50
const MAX_PAGE = 500

const auditRoutes: FastifyPluginAsyncTypebox<{ apiRateLimit: object | false }> = async (fastify, opts) => {
  fastify.get('/audit', {
    onRequest: fastify.requireRole('admin'),
    config: { rateLimit: opts.apiRateLimit },
    schema: {
      summary: 'Who did what, when, to what; newest first. Page with ?before=<nextBefore>.',
      tags: ['audit'],
      querystring: PageQuery,
      ...publisherRoute({ 200: Type.Object({ entries: Type.Array(AuditEntry), nextBefore: Type.Union([Type.Number(), Type.Null()]) }) }, { problems: ['VALIDATION_FAILED'] })
    }
  }, async (request) => {
    const limit = pageLimit(request.query.limit, DEFAULT_PAGE, MAX_PAGE)
    const before = request.query.before === undefined ? null : Number(request.query.before)
    const rows = await fastify.store.listAudit(limit, before)
    const last = rows.at(-1)
    return { entries: rows.map(presentAudit), nextBefore: rows.length === limit && last !== undefined ? last.id : null }
  })
}

export default auditRoutes
