/**
 * The fleet, for the vendor (reader role): which deployment runs what, who is stale, which
 * applies failed. Read from the deployments table, so a pull shows here after the next
 * check-in flush (CHECKIN_FLUSH_INTERVAL).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { DeploymentRow, ReportRow } from '../db/schema.js'
import { DEFAULT_STALE_AFTER_SECONDS, fleetByVersion, staleAfterSeconds } from '../domain/fleet.js'
import { ChartcastError } from '../errors.js'
import { ChannelFleet, ChannelName, DeploymentDetail, DeploymentList, DeploymentQuery } from '../schemas.js'
import { pageLimit, publisherRoute } from './common.js'

const DEFAULT_PAGE = 50
const MAX_PAGE = 500
const DETAIL_REPORTS = 50

function presentDeployment (row: DeploymentRow, stale: boolean) {
  return {
    id: row.id,
    channel: row.channel,
    appliedVersion: row.appliedVersion,
    servedVersion: row.servedVersion,
    lastSeenAt: row.lastSeenAt.toISOString(),
    agent: row.agent,
    stale,
    lastReport: row.lastReportVersion === null || row.lastReportOutcome === null || row.lastReportAt === null
      ? null
      : { version: row.lastReportVersion, outcome: row.lastReportOutcome, detail: row.lastReportDetail, at: row.lastReportAt.toISOString() }
  }
}

function presentReport (row: ReportRow) {
  return { channel: row.channel, version: row.version, outcome: row.outcome, detail: row.detail, digest: row.digest, at: row.at.toISOString() }
}

/** `nextBefore`: the last row's lastSeenAt (ms) and id, the listing's sort key. */
function cursorOf (row: DeploymentRow): string {
  return `${row.lastSeenAt.getTime()}:${row.id}`
}

function parseCursor (text: string): { at: number, id: string } {
  const colon = text.indexOf(':')
  const at = Number(text.slice(0, colon))
  if (colon < 1 || !Number.isSafeInteger(at)) throw new ChartcastError('VALIDATION_FAILED', 'before must be the nextBefore of a previous page')
  return { at, id: text.slice(colon + 1) }
}

const fleetRoutes: FastifyPluginAsyncTypebox<{ apiRateLimit: object | false, now?: () => number }> = async (fastify, opts) => {
  const { fleetStore, specCache } = fastify
  const now = opts.now ?? Date.now

  /** Each channel's stale threshold, from the settings the spec cache holds. */
  function staleAfter () {
    const byChannel = new Map<string, number>()
    for (const name of specCache.channelNames()) {
      const state = specCache.get(name)
      if (state !== undefined) byChannel.set(name, staleAfterSeconds(state.row.pollInterval))
    }
    return { byChannel, fallback: DEFAULT_STALE_AFTER_SECONDS }
  }

  fastify.get('/deployments', {
    onRequest: fastify.requireRole('reader'),
    config: { rateLimit: opts.apiRateLimit },
    schema: {
      summary: 'Deployments (one per license sub), newest check-in first. Page with ?before=<nextBefore>.',
      description: 'status: failed (latest report failed), stale (not seen for longer than 3x its channel\'s poll interval, 24 h without one), ok (the rest, including those that never reported).',
      tags: ['fleet'],
      querystring: DeploymentQuery,
      ...publisherRoute({ 200: DeploymentList }, { problems: ['VALIDATION_FAILED'] })
    }
  }, async (request) => {
    const { channel, version, status, before } = request.query
    const limit = pageLimit(request.query.limit, DEFAULT_PAGE, MAX_PAGE)
    const rows = await fleetStore.listDeployments({
      ...(channel !== undefined && { channel }),
      ...(version !== undefined && { version }),
      ...(status !== undefined && { status }),
      ...(before !== undefined && { before: parseCursor(before) }),
      limit,
      now: now(),
      staleAfter: staleAfter()
    })
    const last = rows.at(-1)
    return { items: rows.map(({ row, stale }) => presentDeployment(row, stale)), nextBefore: rows.length === limit && last !== undefined ? cursorOf(last.row) : null }
  })

  fastify.get('/deployments/:id', {
    onRequest: fastify.requireRole('reader'),
    config: { rateLimit: opts.apiRateLimit },
    schema: {
      summary: 'One deployment with its 50 latest apply reports',
      tags: ['fleet'],
      params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 256 }) }),
      ...publisherRoute({ 200: DeploymentDetail }, { problems: ['DEPLOYMENT_NOT_FOUND'] })
    }
  }, async (request) => {
    const found = await fleetStore.getDeployment(request.params.id, DETAIL_REPORTS)
    if (found === null) throw new ChartcastError('DEPLOYMENT_NOT_FOUND', 'no deployment with this id has checked in')
    const threshold = staleAfter()
    const seconds = threshold.byChannel.get(found.row.channel) ?? threshold.fallback
    const stale = now() - found.row.lastSeenAt.getTime() > seconds * 1000
    return { ...presentDeployment(found.row, stale), reports: found.reports.map(presentReport) }
  })

  fastify.get('/channels/:name/fleet', {
    onRequest: fastify.requireRole('reader'),
    config: { rateLimit: opts.apiRateLimit },
    schema: {
      summary: 'What the channel\'s deployments run: per version, deployments running it and latest reports applying or failing it',
      tags: ['fleet'],
      params: Type.Object({ name: ChannelName }),
      ...publisherRoute({ 200: ChannelFleet }, { problems: ['CHANNEL_NOT_FOUND'] })
    }
  }, async (request) => {
    const channel = await fastify.store.getChannel(request.params.name)
    if (channel === null) throw new ChartcastError('CHANNEL_NOT_FOUND', `channel "${request.params.name}" does not exist`)
    const seconds = staleAfterSeconds(channel.pollInterval)
    const counts = await fleetStore.channelFleet(channel.name, { now: now(), staleAfter: { byChannel: new Map([[channel.name, seconds]]), fallback: seconds } })
    const byVersion = fleetByVersion(counts)
    return { channel: channel.name, total: counts.total, stale: counts.stale, staleAfterSeconds: seconds, byVersion }
  })
}

export default fleetRoutes
