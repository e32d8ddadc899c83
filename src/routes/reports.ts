/**
 * Apply reports: after every apply attempt an agent says what became of it. Authorized like a
 * spec pull of the same channel (the spec plugin hands its license step over, so a report
 * counts in the license's one rate window); the report goes through the check-in recorder's
 * batching, never a database call per request.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import type { LicenseClaims } from '../domain/license.js'
import { checkVersion } from '../domain/release.js'
import { ChartcastError } from '../errors.js'
import { ChannelName, ReportAccepted, ReportInput } from '../schemas.js'
import { BODY_MEDIA_TYPES, BODY_PROBLEMS, described, licensedRoute, refuseUnstorableText } from './common.js'

export interface ReportRoutesOptions {
  /** The spec pull's license step: Bearer license, verification, entitlement, rate limit. */
  authorize (request: FastifyRequest<{ Params: { name: string } }>): LicenseClaims | Promise<LicenseClaims>
}

const reportRoutes: FastifyPluginAsyncTypebox<ReportRoutesOptions> = async (fastify, opts) => {
  const { checkins, specCache, metrics } = fastify
  const authorized = new WeakMap<FastifyRequest, LicenseClaims>()

  fastify.post('/channels/:name/reports', {
    // The license first, before the body is read: a refused license is 401/403 whatever it sent.
    onRequest: async (request) => {
      authorized.set(request, await opts.authorize(request as FastifyRequest<{ Params: { name: string } }>))
    },
    preValidation: refuseUnstorableText,
    schema: {
      summary: 'An agent\'s report of an apply attempt (applied, failed or skipped)',
      description: 'License as `Authorization: Bearer <jwt>`, as for the spec pull, and counted in the same rate window. Accepted reports are written within CHECKIN_FLUSH_INTERVAL; the latest shows on the deployment\'s fleet record.',
      tags: ['spec'],
      params: Type.Object({ name: ChannelName }),
      body: ReportInput,
      consumes: BODY_MEDIA_TYPES,
      ...licensedRoute('license', { 202: described(ReportAccepted, 'Accepted; written with the next flush') }, [...BODY_PROBLEMS, 'CHANNEL_NOT_FOUND'])
    }
  }, async (request, reply) => {
    const claims = authorized.get(request)
    if (claims === undefined) throw new Error('report route reached without its license step')
    const channel = request.params.name
    if (specCache.get(channel) === undefined) throw new ChartcastError('CHANNEL_NOT_FOUND', `channel "${channel}" does not exist`)
    const { version, outcome, detail, digest } = request.body
    checkVersion(version)
    checkins.report({ deploymentId: claims.sub, channel, version, outcome, detail: detail ?? null, digest: digest ?? null })
    metrics.reports.inc({ channel, outcome })
    reply.code(202)
    return { accepted: true as const }
  })
}

export default reportRoutes
