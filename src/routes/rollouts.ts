/**
 * Staged rollouts and channel freezes: their state, and the publisher's actions on them. The
 * rules (what percent, which state, when a freeze ends) are in src/domain/rollout.ts; the
 * locking and audit rows in the store.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { checkFreezeUntil } from '../domain/rollout.js'
import { checkVersion } from '../domain/release.js'
import type { RolloutAction } from '../db/store.js'
import { ChartcastError } from '../errors.js'
import { ChannelName, Freeze, FreezeInput, ReasonInput, ReasonQuery, Rollout, VersionText } from '../schemas.js'
import { described, publisherRoute, refuseUnstorableText } from './common.js'
import { presentFreeze, presentRollout } from './present.js'

const NameParams = Type.Object({ name: ChannelName })
const RolloutParams = Type.Object({ name: ChannelName, version: VersionText })
const ACTION_PROBLEMS = ['VALIDATION_FAILED', 'CHANNEL_NOT_FOUND', 'ROLLOUT_NOT_FOUND', 'ROLLOUT_STATE'] as const

const rolloutsRoutes: FastifyPluginAsyncTypebox<{ apiRateLimit: object | false, now?: () => number }> = async (fastify, opts) => {
  const rateLimit = opts.apiRateLimit
  const now = opts.now ?? Date.now

  /** Read-your-writes on this replica; the NOTIFY brings the others along. */
  async function refresh (name: string): Promise<void> {
    try {
      await fastify.specCache.refreshChannel(name)
    } catch (error) {
      fastify.log.warn({ channel: name, reason: (error as Error).message }, 'cache refresh after a change failed; the change notice will retry')
    }
  }

  async function channelRollouts (name: string) {
    const at = now()
    return (await fastify.store.listRollouts(name)).map((view) => presentRollout(view, at))
  }

  async function existingChannel (name: string): Promise<void> {
    if (await fastify.store.getChannel(name) === null) throw new ChartcastError('CHANNEL_NOT_FOUND', `channel "${name}" does not exist`)
  }

  fastify.get('/channels/:name/rollouts', {
    onRequest: fastify.requireRole('reader'),
    config: { rateLimit },
    schema: {
      summary: 'The channel\'s staged rollouts: state, percent, next step, pause, report counts',
      tags: ['rollouts'],
      params: NameParams,
      ...publisherRoute({ 200: Type.Array(Rollout) }, { problems: ['VALIDATION_FAILED', 'CHANNEL_NOT_FOUND'] })
    }
  }, async (request) => {
    await existingChannel(request.params.name)
    return await channelRollouts(request.params.name)
  })

  /** One action: the store checks the state under the rollout's lock and writes the audit row. */
  async function act (name: string, versionText: string, action: RolloutAction, actor: string, reason: string | null) {
    const version = checkVersion(versionText)
    await fastify.store.changeRollout(name, version, action, actor, reason, now())
    fastify.metrics.mutations.inc({ action: `rollout.${action}` })
    await refresh(name)
    const shown = (await channelRollouts(name)).find((r) => r.version === version)
    if (shown === undefined) throw new ChartcastError('ROLLOUT_NOT_FOUND', `release ${version} has no rollout in channel "${name}"`)
    return shown
  }

  fastify.post('/channels/:name/rollouts/:version/pause', {
    onRequest: fastify.requireRole('publisher'),
    preValidation: refuseUnstorableText,
    config: { rateLimit },
    schema: {
      summary: 'Pause a rolling release: nobody new gets it; those who run it keep it',
      tags: ['rollouts'],
      params: RolloutParams,
      body: ReasonInput,
      ...publisherRoute({ 200: described(Rollout, 'Paused') }, { body: true, problems: [...ACTION_PROBLEMS] })
    }
  }, async (request) => await act(request.params.name, request.params.version, 'pause', request.user.sub, request.body.reason))

  fastify.post('/channels/:name/rollouts/:version/resume', {
    onRequest: fastify.requireRole('publisher'),
    preValidation: refuseUnstorableText,
    config: { rateLimit },
    schema: {
      summary: 'Resume a paused rollout; the time it was paused does not count towards its steps',
      description: 'A frozen channel answers 423 CHANNEL_FROZEN: resumed, the rollout would admit new deployments.',
      tags: ['rollouts'],
      params: RolloutParams,
      ...publisherRoute({ 200: described(Rollout, 'Rolling again') }, { problems: [...ACTION_PROBLEMS, 'CHANNEL_FROZEN'] })
    }
  }, async (request) => await act(request.params.name, request.params.version, 'resume', request.user.sub, null))

  fastify.post('/channels/:name/rollouts/:version/complete', {
    onRequest: fastify.requireRole('publisher'),
    preValidation: refuseUnstorableText,
    config: { rateLimit },
    schema: {
      summary: 'Complete a rollout now (100%), rolling or paused',
      description: 'A frozen channel answers 423 CHANNEL_FROZEN.',
      tags: ['rollouts'],
      params: RolloutParams,
      ...publisherRoute({ 200: described(Rollout, 'Complete') }, { problems: [...ACTION_PROBLEMS, 'CHANNEL_FROZEN'] })
    }
  }, async (request) => await act(request.params.name, request.params.version, 'complete', request.user.sub, null))

  fastify.post('/channels/:name/freeze', {
    onRequest: fastify.requireRole('publisher'),
    preValidation: refuseUnstorableText,
    config: { rateLimit },
    schema: {
      summary: 'Freeze the channel until `until` or DELETE: what it serves stays as it is; withdrawals and pauses still work',
      description: 'While frozen, rollout steps wait, and promotions, changes of the channel\'s values, accepts or pollInterval (PUT), required marks (PATCH), and rollout resumes and completions answer 423 CHANNEL_FROZEN.',
      tags: ['rollouts'],
      params: NameParams,
      body: FreezeInput,
      ...publisherRoute({ 201: described(Freeze, 'Frozen (a freeze in force is replaced)') }, { body: true, problems: ['CHANNEL_NOT_FOUND'] })
    }
  }, async (request, reply) => {
    const at = now()
    const until = request.body.until === undefined ? null : checkFreezeUntil(request.body.until, at)
    const row = await fastify.store.freezeChannel(request.params.name, request.body.reason, until, request.user.sub, at)
    fastify.metrics.mutations.inc({ action: 'channel.freeze' })
    await refresh(request.params.name)
    return await reply.code(201).send(presentFreeze(row))
  })

  fastify.delete('/channels/:name/freeze', {
    onRequest: fastify.requireRole('publisher'),
    preValidation: refuseUnstorableText,
    config: { rateLimit },
    schema: {
      summary: 'Unfreeze the channel (optional ?reason=)',
      tags: ['rollouts'],
      params: NameParams,
      querystring: ReasonQuery,
      ...publisherRoute({ 204: Type.Null({ description: 'Unfrozen (or was not frozen)' }) }, { problems: ['VALIDATION_FAILED', 'CHANNEL_NOT_FOUND'] })
    }
  }, async (request, reply) => {
    const { unfrozen } = await fastify.store.unfreezeChannel(request.params.name, request.user.sub, request.query.reason ?? null, now())
    if (unfrozen) {
      fastify.metrics.mutations.inc({ action: 'channel.unfreeze' })
      await refresh(request.params.name)
    }
    return await reply.code(204).send(undefined as never)
  })
}

export default rolloutsRoutes
