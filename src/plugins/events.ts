/**
 * The dashboard's live events, fanned out from the change notifications every replica already
 * listens to (src/plugins/spec-state.ts): a promotion, withdrawal, freeze or rollout change on
 * any replica is a `channel` notice there, and every check-in flush is a `fleet` notice. This
 * plugin turns them into events for the open GET /events streams:
 *
 * - `channel` `{ channel, head, revision }`: the channel changed (its releases, rollouts,
 *   freeze or settings); a page reloads what it shows of it.
 * - `rollouts` `{ channel, rollouts }`: the channel's rollouts (the body of GET
 *   /channels/:name/rollouts) after a change, when they differ from the last ones sent: a
 *   promotion with a rollout, a pause (by a person or automatic), resume, complete, withdrawal.
 * - `fleet` `{ channel, total, stale, staleAfterSeconds, byVersion }`: the channel's fleet
 *   summary (the body of GET /channels/:name/fleet), sent when it differs from the last one sent.
 * - `resync` `{}`: notices may have been missed (the listener reconnected); reload everything.
 */
import fp from 'fastify-plugin'
import type { ChangeNotice } from '../db/store.js'
import { fleetByVersion, staleAfterSeconds } from '../domain/fleet.js'
import { presentRollout } from '../routes/present.js'
import { EventHub, type EventHubOptions } from '../services/event-hub.js'
import { logSafeReason } from './problems.js'

declare module 'fastify' {
  interface FastifyInstance {
    events: EventHub
  }
}

export interface EventsPluginOptions extends Partial<EventHubOptions> {
  /** Fleet notices arriving within this long are summarised together (a burst of reports is one query per channel). */
  fleetDebounceMs?: number
  heartbeatMs?: number
  now?: () => number
}

export const EVENT_DEFAULTS = { maxPerKey: 10, maxClients: 1000, maxBuffered: 256, fleetDebounceMs: 500, heartbeatMs: 20_000 }

export default fp<EventsPluginOptions>(async (fastify, opts) => {
  const hub = new EventHub({
    maxPerKey: opts.maxPerKey ?? EVENT_DEFAULTS.maxPerKey,
    maxClients: opts.maxClients ?? EVENT_DEFAULTS.maxClients,
    maxBuffered: opts.maxBuffered ?? EVENT_DEFAULTS.maxBuffered
  })
  fastify.decorate('events', hub)
  const now = opts.now ?? Date.now
  const { specCache, fleetStore } = fastify

  /** The last fleet summary sent per channel, as JSON: an unchanged summary is not sent again. */
  const lastFleet = new Map<string, string>()
  let pendingFleet: Set<string> | 'all' = new Set()
  let fleetTimer: NodeJS.Timeout | null = null
  let closing = false

  async function publishFleet (channels: string[]): Promise<void> {
    for (const channel of channels) {
      const state = specCache.get(channel)
      if (state === undefined) continue
      const seconds = staleAfterSeconds(state.row.pollInterval)
      const counts = await fleetStore.channelFleet(channel, { now: now(), staleAfter: { byChannel: new Map([[channel, seconds]]), fallback: seconds } })
      const summary = { channel, total: counts.total, stale: counts.stale, staleAfterSeconds: seconds, byVersion: fleetByVersion(counts) }
      const text = JSON.stringify(summary)
      if (lastFleet.get(channel) === text) continue
      lastFleet.set(channel, text)
      hub.publish('fleet', summary)
    }
  }

  function scheduleFleet (channels: string[] | null): void {
    if (hub.size === 0) {
      // Nobody watches: what was last sent no longer describes what a new stream would see.
      lastFleet.clear()
      return
    }
    if (channels === null) pendingFleet = 'all'
    else if (pendingFleet !== 'all') for (const name of channels) pendingFleet.add(name)
    if (fleetTimer !== null) return
    fleetTimer = setTimeout(() => {
      fleetTimer = null
      const names = pendingFleet === 'all' ? specCache.channelNames() : [...pendingFleet]
      pendingFleet = new Set()
      if (closing) return
      publishFleet(names).catch((error: Error) => {
        fastify.log.warn({ reason: logSafeReason(error) }, 'fleet summary for the live events failed; the next check-in flush retries')
      })
    }, opts.fleetDebounceMs ?? EVENT_DEFAULTS.fleetDebounceMs)
    fleetTimer.unref()
  }

  /** The last rollouts sent per channel, as JSON; reads of one channel run one after another, so events keep their order. */
  const lastRollouts = new Map<string, string>()
  const rolloutReads = new Map<string, Promise<void>>()
  function publishRollouts (channel: string): void {
    if (hub.size === 0) {
      lastRollouts.clear()
      return
    }
    const previous = rolloutReads.get(channel) ?? Promise.resolve()
    const read = previous.then(async () => {
      if (closing) return
      const at = now()
      const list = (await fastify.store.listRollouts(channel)).map((view) => presentRollout(view, at))
      const text = JSON.stringify(list)
      if (lastRollouts.get(channel) === text) return
      lastRollouts.set(channel, text)
      hub.publish('rollouts', { channel, rollouts: list })
    }).catch((error: Error) => {
      fastify.log.warn({ channel, reason: logSafeReason(error) }, 'reading rollouts for the live events failed; the next change retries')
    }).finally(() => { if (rolloutReads.get(channel) === read) rolloutReads.delete(channel) })
    rolloutReads.set(channel, read)
  }

  const onNotice = (notice: ChangeNotice): void => {
    if (notice.kind === 'channel') {
      const state = specCache.get(notice.name)
      hub.publish('channel', { channel: notice.name, head: state?.head?.version ?? null, revision: state?.row.revision ?? null })
      publishRollouts(notice.name)
    } else if (notice.kind === 'fleet') {
      scheduleFleet(notice.channels)
    } else if (notice.kind === 'all') {
      lastFleet.clear()
      lastRollouts.clear()
      hub.publish('resync', {})
    }
    if (notice.kind === 'token-revocation' || notice.kind === 'all') {
      // Keys are token ids (Bearer) or session ids (cookie): a revoked token or a signed-out session.
      const { jtis, sessions } = fastify.publisherTokenRevocations
      hub.closeKeys((key) => jtis.has(key) || sessions.has(key))
    }
  }
  fastify.changeNotices.on('notice', onNotice)

  const heartbeat = setInterval(() => { hub.heartbeat() }, opts.heartbeatMs ?? EVENT_DEFAULTS.heartbeatMs)
  heartbeat.unref()
  // Before the server stops accepting: an open stream is a request in progress and would
  // otherwise hold up close() until the client goes away.
  fastify.addHook('preClose', (done) => {
    closing = true
    clearInterval(heartbeat)
    if (fleetTimer !== null) clearTimeout(fleetTimer)
    fastify.changeNotices.off('notice', onNotice)
    hub.closeAll()
    done()
  })
}, { name: 'chartcast-events', dependencies: ['chartcast-spec-state', 'chartcast-fleet'] })
