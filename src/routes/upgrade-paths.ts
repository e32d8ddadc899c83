/**
 * GET /channels/:name/path: the hops a deployment on a given version takes to the top of the
 * channel, as the spec path would give them one poll after another.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { checkVersion } from '../domain/release.js'
import { eligibleReleases, outsiderDeployment } from '../domain/select-spec.js'
import { noUpgradePathError, upgradePath } from '../domain/upgrade-path.js'
import { ChartcastError } from '../errors.js'
import { ChannelName, PathQuery, UpgradePath } from '../schemas.js'
import { publisherRoute } from './common.js'

const upgradePathRoutes: FastifyPluginAsyncTypebox<{ apiRateLimit: object | false, now?: () => number }> = async (fastify, opts) => {
  const now = opts.now ?? Date.now

  fastify.get('/channels/:name/path', {
    onRequest: fastify.requireRole('reader'),
    config: { rateLimit: opts.apiRateLimit },
    schema: {
      summary: 'The upgrade path from a version: each hop in order, for a deployment outside every partial rollout',
      description: 'What the spec path gives a deployment on `from`, then on that hop, and so on, as the channel stands now: `required` releases are stopped at and `upgradeFrom` is honoured. 409 NO_UPGRADE_PATH where a pull on the way would be.',
      tags: ['channels'],
      params: Type.Object({ name: ChannelName }),
      querystring: PathQuery,
      ...publisherRoute({ 200: UpgradePath }, { problems: ['VALIDATION_FAILED', 'CHANNEL_NOT_FOUND', 'CHANNEL_EMPTY', 'NO_UPGRADE_PATH'] })
    }
  }, async (request) => {
    const { name } = request.params
    const from = checkVersion(request.query.from)
    // The state the spec path serves from on this replica (a change is read back before its 2xx).
    const state = fastify.specCache.get(name)
    if (state === undefined) throw new ChartcastError('CHANNEL_NOT_FOUND', `channel "${name}" does not exist`)
    if (state.head === null) throw new ChartcastError('CHANNEL_EMPTY', `channel "${name}" has no release yet`)
    const at = now()
    const path = upgradePath((applied) => eligibleReleases(state, outsiderDeployment(name, applied), at), state.memberships, from)
    if ('kind' in path) throw noUpgradePathError(name, path)
    return { from, hops: path.hops, to: path.hops.at(-1) ?? from }
  })
}

export default upgradePathRoutes
