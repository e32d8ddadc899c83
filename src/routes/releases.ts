import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { normaliseRelease, checkVersion, pageByVersion } from '../domain/release.js'
import { ChartcastError } from '../errors.js'
import { Release, ReleaseInput, ReleasePageQuery, VersionText } from '../schemas.js'
import { described, pageLimit, publisherRoute, refuseUnstorableText } from './common.js'
import { presentRelease } from './present.js'

const RELEASES_PAGE = 100
const MAX_RELEASES_PAGE = 1000

const releasesRoutes: FastifyPluginAsyncTypebox<{ apiRateLimit: object | false }> = async (fastify, opts) => {
  fastify.post('/releases', {
    onRequest: fastify.requireRole('publisher'),
    preValidation: refuseUnstorableText,
    config: { rateLimit: opts.apiRateLimit },
    schema: {
      summary: 'Publish an immutable release (JSON or application/yaml body)',
      tags: ['releases'],
      body: ReleaseInput,
      ...publisherRoute({ 200: described(Release, 'This exact release was already published'), 201: described(Release, 'Published') }, { body: true, problems: ['RELEASE_CONFLICT'] })
    }
  }, async (request, reply) => {
    let release
    try {
      release = normaliseRelease(request.body)
    } catch (error) {
      fastify.metrics.publishes.inc({ result: 'invalid' })
      throw error
    }
    try {
      const { created, row } = await fastify.store.publishRelease(release, request.user.sub)
      fastify.metrics.publishes.inc({ result: created ? 'created' : 'identical' })
      if (created) fastify.metrics.mutations.inc({ action: 'release.publish' })
      return await reply.code(created ? 201 : 200).header('location', `/releases/${row.version}`).send(presentRelease(row))
    } catch (error) {
      if (error instanceof ChartcastError && error.code === 'RELEASE_CONFLICT') fastify.metrics.publishes.inc({ result: 'conflict' })
      throw error
    }
  })

  fastify.get('/releases', {
    onRequest: fastify.requireRole('reader'),
    config: { rateLimit: opts.apiRateLimit },
    schema: {
      summary: 'Releases, highest version first, a page at a time. Page with ?before=<nextBefore>; ?q= searches versions.',
      tags: ['releases'],
      querystring: ReleasePageQuery,
      ...publisherRoute({ 200: Type.Object({ releases: Type.Array(Release), nextBefore: Type.Union([Type.String(), Type.Null()]) }) }, { problems: ['VALIDATION_FAILED'] })
    }
  }, async (request) => {
    const limit = pageLimit(request.query.limit, RELEASES_PAGE, MAX_RELEASES_PAGE)
    const before = request.query.before === undefined ? null : checkVersion(request.query.before)
    // Semver order is not SQL order, so the page is cut here; fine at thousands of releases.
    const q = request.query.q?.toLowerCase() ?? ''
    const all = await fastify.store.listReleases()
    const { page, nextBefore } = pageByVersion(q === '' ? all : all.filter((row) => row.version.toLowerCase().includes(q)), before, limit)
    return { releases: page.map(presentRelease), nextBefore }
  })

  fastify.get('/releases/:version', {
    onRequest: fastify.requireRole('reader'),
    config: { rateLimit: opts.apiRateLimit },
    schema: {
      summary: 'One release',
      tags: ['releases'],
      params: Type.Object({ version: VersionText }),
      ...publisherRoute({ 200: Release }, { problems: ['VALIDATION_FAILED', 'RELEASE_NOT_FOUND'] })
    }
  }, async (request) => {
    const version = checkVersion(request.params.version)
    const row = await fastify.store.getRelease(version)
    if (row === null) throw new ChartcastError('RELEASE_NOT_FOUND', `release ${version} has not been published`)
    return presentRelease(row)
  })
}

export default releasesRoutes
