/**
 * Wires the fleet: the check-in recorder the spec path writes to, the flusher that carries its
 * records to the database, and the fleet repository the publisher routes read.
 */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Gauge } from 'prom-client'
import { DEFAULT_STALE_AFTER_SECONDS, staleAfterSeconds } from '../domain/fleet.js'
import { createFleetStore, type FleetStore } from '../db/store.js'
import { logSafeReason } from './problems.js'
import { CheckinFlusher, CheckinRecorder } from '../services/checkin-recorder.js'
import { ServedVersions } from '../services/served-versions.js'
import { AutoPauser } from '../services/auto-pause.js'

declare module 'fastify' {
  interface FastifyInstance {
    checkins: CheckinRecorder
    checkinFlusher: CheckinFlusher
    fleetStore: FleetStore
    /** The version last served to each deployment that sends no Chartcast-Applied (the spec path's stand-in). */
    servedVersions: ServedVersions
    autoPauser: AutoPauser
  }
}

export interface FleetPluginOptions {
  flushIntervalMs: number
  maxPending: number
  /** Batches written at once on PostgreSQL (PGlite has one connection: always one). */
  flushConcurrency?: number
  reportRetentionSeconds: number
  now?: () => number
  /** Bench only (AppOptions.recordCheckins): false turns record() into a no-op. */
  recordCheckins?: boolean
}

/**
 * Deployments per channel and applied version, and stale per channel, counted in the database
 * when /metrics is scraped (one grouped query per scrape, shared by both gauges). While the
 * database is away the gauges keep their last values rather than failing the scrape.
 */
function registerFleetGauges (fastify: FastifyInstance, fleetStore: FleetStore, now: () => number): void {
  let inFlight: ReturnType<FleetStore['fleetCounts']> | null = null
  const counts = async () => {
    inFlight ??= (async () => {
      const byChannel = new Map<string, number>()
      for (const name of fastify.specCache.channelNames()) {
        const state = fastify.specCache.get(name)
        if (state !== undefined) byChannel.set(name, staleAfterSeconds(state.row.pollInterval))
      }
      return await fleetStore.fleetCounts({ now: now(), staleAfter: { byChannel, fallback: DEFAULT_STALE_AFTER_SECONDS } })
    })().finally(() => { inFlight = null })
    return await inFlight
  }
  const registers = [fastify.metrics.registry]
  void new Gauge({
    name: 'chartcast_deployments',
    help: 'Deployments by the channel they pulled last and their applied version ("unknown": never said)',
    labelNames: ['channel', 'version'],
    registers,
    async collect () {
      try {
        const rows = await counts()
        this.reset()
        for (const row of rows) this.set({ channel: row.channel, version: row.version }, row.deployments)
      } catch (error) {
        fastify.log.debug({ reason: logSafeReason(error) }, 'deployment gauges not refreshed')
      }
    }
  })
  void new Gauge({
    name: 'chartcast_deployments_stale',
    help: 'Deployments not seen for longer than 3x their channel\'s poll interval (24 h without one), by channel',
    labelNames: ['channel'],
    registers,
    async collect () {
      try {
        const rows = await counts()
        this.reset()
        const byChannel = new Map<string, number>()
        for (const row of rows) byChannel.set(row.channel, (byChannel.get(row.channel) ?? 0) + row.stale)
        for (const [channel, stale] of byChannel) this.set({ channel }, stale)
      } catch (error) {
        fastify.log.debug({ reason: logSafeReason(error) }, 'stale gauges not refreshed')
      }
    }
  })
}

/** Pruning is a cheap indexed delete, but there is no need to run it every few seconds. */
const PRUNE_EVERY_MS = 3_600_000

/** How often a replica on PostgreSQL reads the served versions other replicas wrote (at least). */
const SERVED_REFRESH_MIN_MS = 15_000
/** Clock differences between replicas that a refresh tolerates. */
const REPLICA_CLOCK_SKEW_MS = 5_000

export default fp<FleetPluginOptions>(async (fastify, opts) => {
  const now = opts.now ?? Date.now
  const fleetStore = createFleetStore(fastify.database.db)
  const { metrics } = fastify
  const autoPauser = new AutoPauser(fastify.store, {
    rolloutOf: (channel, version) => fastify.specCache.get(channel)?.rollouts.get(version),
    now,
    onPaused: async (channel, version, reason) => {
      metrics.mutations.inc({ action: 'rollout.pause' })
      fastify.log.warn({ channel, version, reason }, 'rollout paused automatically')
      // Read-your-writes here; the NOTIFY brings the other replicas along.
      await fastify.specCache.refreshChannel(channel).catch(() => {})
    }
  })
  // Which written reports can pause a rollout is noted as they are written (in memory only);
  // the counting happens after the flush, off the batch's clock.
  const writer = {
    writeFleet: async (checkins: Parameters<FleetStore['writeFleet']>[0], reports: Parameters<FleetStore['writeFleet']>[1]) => {
      await fleetStore.writeFleet(checkins, reports)
      if (reports.length > 0) autoPauser.noteWritten(reports)
    }
  }
  const recorder = new CheckinRecorder(writer, {
    maxPending: opts.maxPending,
    // One by default: on the 2-core bench machine two batches at once flushed 1,000,000 changed
    // rows in 21 s instead of 30 s, but pulls served during the flush fell to 0.66 of their rate
    // instead of 0.81 (bench/README.md). Serving comes first; a bigger database host may take 2.
    concurrency: fastify.database.driver === 'postgres' ? (opts.flushConcurrency ?? 1) : 1,
    // A large flush (a fleet of 1,000,000 after a database outage, say) must not starve the pulls
    // it is recording: while they arrive, each batch is followed by a pause as long as it took.
    yieldToPulls: 1,
    now,
    onDrop: (kind) => { metrics.checkinsDropped.inc({ kind }) },
    onBatch: (_rows, seconds) => {
      metrics.fleetFlushBatches.inc({ result: 'ok' })
      metrics.fleetFlushDuration.observe(seconds)
    }
  })
  // A replica flushes a check-in at most one flush interval after the pull: a refresh reads
  // that far (and the clock skew) behind the newest check-in it saw.
  const servedVersions = new ServedVersions(fleetStore, { lagMs: opts.flushIntervalMs + REPLICA_CLOCK_SKEW_MS, isPending: (id) => recorder.isPending(id) })
  // Embedded PGlite has one process (DATA_DIR is locked): nobody else writes check-ins.
  const sharedDatabase = fastify.database.driver === 'postgres'
  const servedRefreshMs = Math.max(opts.flushIntervalMs, SERVED_REFRESH_MIN_MS)
  let lastServedRefresh = now()
  // An own property shadowing the method: the spec route's call stays, and does nothing.
  if (opts.recordCheckins === false) recorder.record = () => {}
  let lastPrune = 0
  const flusher = new CheckinFlusher(recorder, opts.flushIntervalMs, (error) => {
    metrics.fleetFlushBatches.inc({ result: 'error' })
    // The records stay pending and the next tick tries again; only the reason is logged.
    fastify.log.warn({ reason: logSafeReason(error), pending: recorder.pendingCount, pendingReports: recorder.pendingReportCount }, 'writing check-ins failed; they are kept and retried')
  }, async () => {
    if (sharedDatabase && now() - lastServedRefresh >= servedRefreshMs) {
      lastServedRefresh = now()
      try {
        await servedVersions.refresh()
      } catch (error) {
        // The versions held keep standing in; the next refresh reads from the same watermark.
        fastify.log.warn({ reason: logSafeReason(error) }, 'reading the served versions other replicas wrote failed')
      }
    }
    try {
      await autoPauser.evaluate()
    } catch (error) {
      // The releases stay noted and are evaluated again after the next flush.
      fastify.log.warn({ reason: logSafeReason(error), pending: autoPauser.pendingCount }, 'checking rollouts for an automatic pause failed; trying again after the next flush')
    }
    if (now() - lastPrune < PRUNE_EVERY_MS) return
    lastPrune = now()
    await fleetStore.pruneReports(opts.reportRetentionSeconds, now())
  })
  fastify.decorate('checkins', recorder)
  registerFleetGauges(fastify, fleetStore, now)
  fastify.decorate('checkinFlusher', flusher)
  fastify.decorate('fleetStore', fleetStore)
  fastify.decorate('servedVersions', servedVersions)
  // Before the first pull: a restart must not take every W&B operator for a fresh install.
  await servedVersions.load()
  fastify.decorate('autoPauser', autoPauser)
  fastify.addHook('onReady', async () => { flusher.start() })
  // Added after the database plugin's close hook is registered: fastify runs onClose hooks
  // of one instance in reverse order, so this last flush happens before the database closes.
  fastify.addHook('onClose', async () => {
    try {
      await flusher.stop()
    } catch (error) {
      fastify.log.warn({ reason: logSafeReason(error), pending: recorder.pendingCount }, 'the last check-in flush failed; unwritten check-ins are lost')
    }
  })
}, { name: 'chartcast-fleet', dependencies: ['chartcast-database', 'chartcast-metrics', 'chartcast-spec-state'] })
