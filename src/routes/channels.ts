import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { assertChannelAccepts, checkAcceptsRange, checkPollInterval, selectChannelHead, sortVersionsDescending } from '../domain/channel.js'
import { checkValues, checkVersion } from '../domain/release.js'
import { ChartcastError } from '../errors.js'
import { Channel, ChannelDetail, ChannelEvent, ChannelName, ChannelSettingsInput, Membership, MembershipInput, PromoteInput, VersionText, WithdrawQuery } from '../schemas.js'
import type { ChannelReleaseRow } from '../db/schema.js'
import { described, publisherRoute, refuseUnstorableText } from './common.js'
import { presentChannel, presentChannelEvent, presentFreeze, presentRollout } from './present.js'
import { checkRolloutPlan } from '../domain/rollout.js'
import { groupByChannel } from '../services/spec-cache.js'

const NameParams = Type.Object({ name: ChannelName })
const Promotion = Type.Object({ channel: Type.String(), version: Type.String(), promoted: Type.Boolean(), required: Type.Boolean(), head: Type.Union([Type.String(), Type.Null()]) })

function headOf (memberships: ChannelReleaseRow[]): string | null {
  return selectChannelHead(memberships.map((m) => ({ version: m.version, withdrawn: m.state === 'withdrawn' })))
}

const channelsRoutes: FastifyPluginAsyncTypebox<{ apiRateLimit: object | false, now?: () => number }> = async (fastify, opts) => {
  const rateLimit = opts.apiRateLimit
  /** Rollouts and freezes run on the app's clock (tests move it). */
  const now = opts.now ?? Date.now

  /** Read-your-writes on this replica; the NOTIFY brings the others along. */
  async function refresh (name: string): Promise<void> {
    try {
      await fastify.specCache.refreshChannel(name)
    } catch (error) {
      fastify.log.warn({ channel: name, reason: (error as Error).message }, 'cache refresh after a change failed; the change notice will retry')
    }
  }

  fastify.put('/channels/:name', {
    onRequest: fastify.requireRole('admin'),
    preValidation: refuseUnstorableText,
    config: { rateLimit },
    schema: {
      summary: 'Create or update a channel (409 CHANNEL_MANAGED_BY_FILE when a channel file defines it)',
      description: 'A frozen channel answers 423 CHANNEL_FROZEN to a change of its values, accepts or pollInterval; its description may still change.',
      tags: ['channels'],
      params: NameParams,
      body: ChannelSettingsInput,
      ...publisherRoute({ 200: described(Channel, 'Updated (or unchanged)'), 201: described(Channel, 'Created') }, { body: true, problems: ['CHANNEL_MANAGED_BY_FILE', 'CHANNEL_FROZEN'] })
    }
  }, async (request, reply) => {
    const body = request.body
    const settings = {
      ...(body.description !== undefined && { description: body.description }),
      ...(body.values !== undefined && { values: checkValues(body.values, 'values') }),
      ...(body.accepts !== undefined && { accepts: body.accepts === null ? null : checkAcceptsRange(body.accepts) }),
      ...(body.pollInterval !== undefined && { pollInterval: body.pollInterval === null ? null : checkPollInterval(body.pollInterval) })
    }
    const { created, changed, row } = await fastify.store.upsertChannel(request.params.name, settings, request.user.sub, now())
    if (changed) {
      fastify.metrics.mutations.inc({ action: 'channel.upsert' })
      await refresh(row.name)
    }
    const head = headOf(await fastify.store.listMemberships(row.name))
    return await reply.code(created ? 201 : 200).send(presentChannel(row, head))
  })

  fastify.get('/channels', {
    onRequest: fastify.requireRole('reader'),
    config: { rateLimit },
    schema: {
      summary: 'All channels with their current head',
      tags: ['channels'],
      ...publisherRoute({ 200: Type.Object({ channels: Type.Array(Channel) }) })
    }
  }, async () => {
    const [rows, memberships] = await Promise.all([fastify.store.listChannels(), fastify.store.listMemberships()])
    const byChannel = groupByChannel(memberships)
    return { channels: rows.map((row) => presentChannel(row, headOf(byChannel.get(row.name) ?? []))) }
  })

  fastify.get('/channels/:name', {
    onRequest: fastify.requireRole('reader'),
    config: { rateLimit },
    schema: {
      summary: 'A channel: settings, head and the releases currently in it',
      tags: ['channels'],
      params: NameParams,
      ...publisherRoute({ 200: ChannelDetail }, { problems: ['VALIDATION_FAILED', 'CHANNEL_NOT_FOUND'] })
    }
  }, async (request) => {
    const row = await fastify.store.getChannel(request.params.name)
    if (row === null) throw new ChartcastError('CHANNEL_NOT_FOUND', `channel "${request.params.name}" does not exist`)
    const memberships = await fastify.store.listMemberships(row.name)
    const active = new Map(memberships.filter((m) => m.state === 'active').map((m) => [m.version, m]))
    const releases = sortVersionsDescending([...active.keys()]).map((version) => {
      const m = active.get(version)!
      return { version, promotedAt: m.promotedAt.toISOString(), promotedBy: m.promotedBy, required: m.required }
    })
    const at = now()
    const rollouts = (await fastify.store.listRollouts(row.name)).map((view) => presentRollout(view, at))
    const freeze = await fastify.store.getFreeze(row.name, at)
    return { ...presentChannel(row, headOf(memberships)), releases, rollouts, freeze: freeze === null ? null : presentFreeze(freeze) }
  })

  fastify.post('/channels/:name/releases', {
    onRequest: fastify.requireRole('publisher'),
    preValidation: refuseUnstorableText,
    config: { rateLimit },
    schema: {
      summary: 'Promote a published release into the channel, at once or as a staged rollout (`required: true` marks it required)',
      description: 'With `rollout`, the release reaches a growing share of the deployments (see GET /channels/:name/rollouts). A frozen channel answers 423 CHANNEL_FROZEN. A release already in the channel is left as it is (200), rollout and all; only `required` may change on it.',
      tags: ['channels'],
      params: NameParams,
      body: PromoteInput,
      ...publisherRoute({ 200: described(Promotion, 'Already in the channel'), 201: described(Promotion, 'Promoted') }, { body: true, problems: ['CHANNEL_NOT_FOUND', 'RELEASE_NOT_FOUND', 'VERSION_NOT_ACCEPTED', 'CHANNEL_FROZEN'] })
    }
  }, async (request, reply) => {
    const { name } = request.params
    const version = checkVersion(request.body.version)
    const rollout = request.body.rollout === undefined ? undefined : checkRolloutPlan(request.body.rollout)
    const { promoted, required, requiredChanged } = await fastify.store.promote(name, version, request.user.sub, (range) => assertChannelAccepts(name, range, version), {
      ...(rollout !== undefined && { rollout }),
      ...(request.body.required !== undefined && { required: request.body.required }),
      now: now()
    })
    if (promoted) fastify.metrics.mutations.inc({ action: 'channel.promote' })
    if (requiredChanged) fastify.metrics.mutations.inc({ action: 'channel.require' })
    if (promoted || requiredChanged) await refresh(name)
    const head = headOf(await fastify.store.listMemberships(name))
    return await reply.code(promoted ? 201 : 200).send({ channel: name, version, promoted, required, head })
  })

  fastify.patch('/channels/:name/releases/:version', {
    onRequest: fastify.requireRole('publisher'),
    preValidation: refuseUnstorableText,
    config: { rateLimit },
    schema: {
      summary: 'Mark a release in the channel required (deployments below it stop there first) or not',
      description: 'A change of the mark in a frozen channel answers 423 CHANNEL_FROZEN.',
      tags: ['channels'],
      params: Type.Object({ name: ChannelName, version: VersionText }),
      body: MembershipInput,
      ...publisherRoute({ 200: Membership }, { body: true, problems: ['CHANNEL_NOT_FOUND', 'RELEASE_NOT_IN_CHANNEL', 'CHANNEL_FROZEN'] })
    }
  }, async (request) => {
    const { name } = request.params
    const version = checkVersion(request.params.version)
    const { required } = request.body
    const { changed } = await fastify.store.setRequired(name, version, required, request.user.sub, now())
    if (changed) {
      fastify.metrics.mutations.inc({ action: 'channel.require' })
      await refresh(name)
    }
    return { channel: name, version, required, changed }
  })

  fastify.delete('/channels/:name/releases/:version', {
    onRequest: fastify.requireRole('publisher'),
    preValidation: refuseUnstorableText,
    config: { rateLimit },
    schema: {
      summary: 'Withdraw a release from the channel; the spec falls back to the next highest at once (rollback=true: a sanctioned rollback)',
      tags: ['channels'],
      params: Type.Object({ name: ChannelName, version: VersionText }),
      querystring: WithdrawQuery,
      ...publisherRoute({ 204: Type.Null({ description: 'Withdrawn (or already withdrawn)' }) }, { problems: ['VALIDATION_FAILED', 'CHANNEL_NOT_FOUND', 'RELEASE_NOT_IN_CHANNEL'] })
    }
  }, async (request, reply) => {
    const { name } = request.params
    const version = checkVersion(request.params.version)
    const rollback = request.query.rollback === 'true'
    const { withdrawn } = await fastify.store.withdraw(name, version, request.user.sub, request.query.reason ?? null, { rollback, now: now() })
    // A rollback asked for a release withdrawn already changes it too (the cache is refreshed anyway).
    if (withdrawn) fastify.metrics.mutations.inc({ action: 'channel.withdraw' })
    if (withdrawn || rollback) await refresh(name)
    // No payload at all: `null` would be serialised as the four bytes "null".
    return await reply.code(204).send(undefined as never)
  })

  fastify.get('/channels/:name/releases', {
    onRequest: fastify.requireRole('reader'),
    config: { rateLimit },
    schema: {
      summary: 'Promotion and withdrawal history, newest first',
      tags: ['channels'],
      params: NameParams,
      ...publisherRoute({ 200: Type.Object({ events: Type.Array(ChannelEvent) }) }, { problems: ['VALIDATION_FAILED', 'CHANNEL_NOT_FOUND'] })
    }
  }, async (request) => {
    const row = await fastify.store.getChannel(request.params.name)
    if (row === null) throw new ChartcastError('CHANNEL_NOT_FOUND', `channel "${request.params.name}" does not exist`)
    return { events: (await fastify.store.channelHistory(row.name)).map(presentChannelEvent) }
  })
}

export default channelsRoutes
