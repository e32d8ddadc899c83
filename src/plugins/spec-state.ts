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
import type { SpecSigning } from '../services/spec-signer.js'
import { logSafeReason } from './problems.js'

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
  /** SPEC_SIGNING_KEYS + SPEC_KEYSET loaded; null: spec answers are not signed. */
  signing: SpecSigning | null
}

/**
 * The re-sign timer: signatures are renewed once less than half their TTL is left, checked
 * every quarter TTL (at most hourly), so an agent never sees one with less than a quarter left.
 */
export function resignSchedule (ttlMs: number): { everyMs: number, renewBeforeMs: number } {
  return { everyMs: Math.min(Math.floor(ttlMs / 4), 3_600_000), renewBeforeMs: Math.floor(ttlMs / 2) }
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
  const cache = new SpecCache(fastify.store, opts.signing?.signer ?? null)
  const licenses = new LicenseRegistry(new LicenseVerifier(opts.keys), opts.policy, fastify.store, opts.now)
  fastify.decorate('specCache', cache)
  fastify.decorate('licenses', licenses)
  const tokenRevocations = new PublisherTokenRevocations(fastify.store)
  fastify.decorate('publisherTokenRevocations', tokenRevocations)
  const changeNotices = new EventEmitter<{ notice: [ChangeNotice] }>()
  fastify.decorate('changeNotices', changeNotices)

  // What the revocation lists held when last loaded, by fingerprint (taken before the load, so
  // a change committed during a load is seen as new by the next resync).
  let loadedRevocations = { licenses: '', tokens: '' }
  const loadLicenseRevocations = async (fingerprint?: string): Promise<void> => {
    const taken = fingerprint ?? (await fastify.store.revocationFingerprints()).licenses
    await licenses.loadRevocations()
    loadedRevocations = { ...loadedRevocations, licenses: taken }
  }
  const loadTokenRevocations = async (fingerprint?: string): Promise<void> => {
    const taken = fingerprint ?? (await fastify.store.revocationFingerprints()).tokens
    await tokenRevocations.load()
    loadedRevocations = { ...loadedRevocations, tokens: taken }
  }

  const apply = async (notice: ChangeNotice): Promise<void> => {
    try {
      if (notice.kind === 'revocation' || notice.kind === 'all') await loadLicenseRevocations()
      if (notice.kind === 'token-revocation' || notice.kind === 'all') await loadTokenRevocations()
      await cache.applyNotice(notice)
    } catch (error) {
      // The previous state keeps being served; the next notice or resync repairs it.
      fastify.log.warn({ notice, reason: logSafeReason(error) }, 'reloading after a change failed; serving the previous state')
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
  // the old state until the channel next changes, and, for a revocation, let a revoked license
  // or token in until the next revocation.
  const reloadStaleRevocations = async (): Promise<void> => {
    const current = await fastify.store.revocationFingerprints()
    const missed: Array<'revocation' | 'token-revocation'> = []
    if (current.licenses !== loadedRevocations.licenses) {
      await loadLicenseRevocations(current.licenses)
      missed.push('revocation')
    }
    if (current.tokens !== loadedRevocations.tokens) {
      await loadTokenRevocations(current.tokens)
      missed.push('token-revocation')
    }
    if (missed.length === 0) return
    fastify.log.info({ lists: missed }, 'resync reloaded revocation lists whose change notice never arrived')
    for (const kind of missed) changeNotices.emit('notice', { kind })
  }
  let resyncing = false
  const resync = async (): Promise<void> => {
    if (resyncing || closing || !cache.loaded) return
    resyncing = true
    try {
      const reloaded = await cache.resync()
      if (reloaded.length > 0) fastify.log.info({ channels: reloaded }, 'resync reloaded channels whose revision differed')
      await reloadStaleRevocations()
    } catch (error) {
      fastify.log.warn({ reason: logSafeReason(error) }, 'checking the channel revisions or the revocation lists failed; trying again at the next resync')
    } finally {
      resyncing = false
    }
  }
  const resyncTimer = setInterval(() => { void resync() }, opts.resyncIntervalMs)
  resyncTimer.unref()

  // Signatures are made when a spec is compiled; this renews them before they expire, so no
  // request ever signs.
  let resignTimer: NodeJS.Timeout | null = null
  if (opts.signing !== null) {
    const { everyMs, renewBeforeMs } = resignSchedule(opts.signing.signer.ttlMs)
    const clock = opts.now ?? Date.now
    let resigning = false
    resignTimer = setInterval(() => {
      if (resigning || closing) return
      resigning = true
      cache.resignExpiring(clock(), renewBeforeMs).then(
        (count) => { if (count > 0) fastify.log.debug({ specs: count }, 'spec signatures renewed') },
        (error: unknown) => { fastify.log.warn({ reason: logSafeReason(error) }, 'renewing spec signatures failed; trying again at the next tick') }
      ).finally(() => { resigning = false })
    }, everyMs)
    resignTimer.unref()
  }
  fastify.addHook('onClose', async () => {
    closing = true
    clearInterval(resyncTimer)
    if (resignTimer !== null) clearInterval(resignTimer)
    await unlisten()
  })
  const atStart = await fastify.store.revocationFingerprints()
  await loadLicenseRevocations(atStart.licenses)
  await loadTokenRevocations(atStart.tokens)
  await cache.loadAll()
  fastify.log.info({ channels: cache.channelNames().length, licenseKeys: opts.keys.length }, 'spec cache loaded')
  if (opts.signing === null) fastify.log.warn('spec signing is off: answers carry no Chartcast-Signature and GET /keys answers 404 (set SPEC_SIGNING_KEYS and SPEC_KEYSET; see docs/signing.md)')
  else fastify.log.info({ kid: opts.signing.signer.kid, keysetVersion: opts.signing.chain[opts.signing.chain.length - 1]!.signed.version, ttlSeconds: opts.signing.signer.ttlMs / 1000 }, 'spec answers are signed')
}, { name: 'chartcast-spec-state', dependencies: ['chartcast-database'] })
