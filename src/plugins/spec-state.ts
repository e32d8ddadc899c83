/**
 * Loads the in-memory state the hot path serves from (channel heads, revocations), and the
 * revoked publisher token ids, and keeps it current from change notifications, whichever
 * replica made the change.
 */
import { EventEmitter } from 'node:events'
import fp from 'fastify-plugin'
import type { ChangeNotice } from '../db/store.js'
import type { LicensePolicy } from '../domain/license.js'
import { LicenseRegistry } from '../services/license-registry.js'
import { LicenseVerifier, type LicenseKey } from '../services/license-verifier.js'
import { SpecCache } from '../services/spec-cache.js'
import { PublisherTokenRevocations } from '../services/publisher-token-revocations.js'

declare module 'fastify' {
  interface FastifyInstance {
    specCache: SpecCache
    licenses: LicenseRegistry
    publisherTokenRevocations: PublisherTokenRevocations
    /**
     * Emits 'notice' (a ChangeNotice) for every change notification, after this replica has
     * applied it (so the spec cache already holds the change): the dashboard's events
     * (src/plugins/events.ts) fan out from here.
     */
    changeNotices: EventEmitter<{ notice: [ChangeNotice] }>
  }
}

export interface SpecStateOptions {
  keys: LicenseKey[]
  policy: LicensePolicy
  now?: () => number
  /** RESYNC_INTERVAL: how often every channel's revision is compared with what is served. */
  resyncIntervalMs: number
  /** LISTEN_HEARTBEAT_INTERVAL (PostgreSQL's listening connection). */
  listenHeartbeatMs: number
}

function parseNotice (payload: string): ChangeNotice {
  try {
    const notice = JSON.parse(payload) as ChangeNotice
    if (typeof notice === 'object' && notice !== null && typeof notice.kind === 'string') return notice
  } catch {
    // An unreadable notice still says something changed: reload everything.
  }
  return { kind: 'all' }
}

export default fp<SpecStateOptions>(async (fastify, opts) => {
  const cache = new SpecCache(fastify.store)
  const licenses = new LicenseRegistry(new LicenseVerifier(opts.keys), opts.policy, fastify.store, opts.now)
  fastify.decorate('specCache', cache)
  fastify.decorate('licenses', licenses)
  const tokenRevocations = new PublisherTokenRevocations(fastify.store)
  fastify.decorate('publisherTokenRevocations', tokenRevocations)
  const changeNotices = new EventEmitter<{ notice: [ChangeNotice] }>()
  fastify.decorate('changeNotices', changeNotices)

  const apply = async (notice: ChangeNotice): Promise<void> => {
    try {
      if (notice.kind === 'revocation' || notice.kind === 'all') await licenses.loadRevocations()
      if (notice.kind === 'token-revocation' || notice.kind === 'all') await tokenRevocations.load()
      await cache.applyNotice(notice)
    } catch (error) {
      // The previous state keeps being served; the next notice or resync repairs it.
      fastify.log.warn({ notice, reason: (error as Error).message }, 'reloading after a change failed; serving the previous state')
    }
    changeNotices.emit('notice', notice)
  }
  let closing = false
  const unlisten = await fastify.database.listen(
    (payload) => { if (!closing) void apply(parseNotice(payload)) },
    () => { if (!closing) void apply({ kind: 'all' }) },
    { heartbeatMs: opts.listenHeartbeatMs }
  )

  // A notice lost on the way, or a reload that failed, would otherwise leave this replica on
  // the old state until the channel next changes.
  let resyncing = false
  const resync = async (): Promise<void> => {
    if (resyncing || closing || !cache.loaded) return
    resyncing = true
    try {
      const reloaded = await cache.resync()
      if (reloaded.length > 0) fastify.log.info({ channels: reloaded }, 'resync reloaded channels whose revision differed')
    } catch (error) {
      fastify.log.warn({ reason: (error as Error).message }, 'checking the channel revisions failed; trying again at the next resync')
    } finally {
      resyncing = false
    }
  }
  const resyncTimer = setInterval(() => { void resync() }, opts.resyncIntervalMs)
  resyncTimer.unref()
  fastify.addHook('onClose', async () => {
    closing = true
    clearInterval(resyncTimer)
    await unlisten()
  })
  await licenses.loadRevocations()
  await tokenRevocations.load()
  await cache.loadAll()
  fastify.log.info({ channels: cache.channelNames().length, licenseKeys: opts.keys.length }, 'spec cache loaded')
}, { name: 'chartcast-spec-state', dependencies: ['chartcast-database'] })
