/** Prometheus metrics, one registry per app so tests and replicas in one process do not collide. */
import fp from 'fastify-plugin'
import { Counter, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client'

/**
 * Spec pull counts by endpoint, channel and outcome, kept as plain integers: prom-client builds
 * and hashes a label string on every inc, which showed in the hot path's profile. The counters
 * below copy these into prom-client when /metrics is scraped.
 */
export class PullCounts {
  private readonly counts = new Map<string, Map<string, Map<string, number>>>()

  add (endpoint: string, channel: string, outcome: string): void {
    let byChannel = this.counts.get(endpoint)
    if (byChannel === undefined) {
      byChannel = new Map()
      this.counts.set(endpoint, byChannel)
    }
    let byOutcome = byChannel.get(channel)
    if (byOutcome === undefined) {
      byOutcome = new Map()
      byChannel.set(channel, byOutcome)
    }
    byOutcome.set(outcome, (byOutcome.get(outcome) ?? 0) + 1)
  }

  * entries (): Generator<[{ endpoint: string, channel: string, outcome: string }, number]> {
    for (const [endpoint, byChannel] of this.counts) {
      for (const [channel, byOutcome] of byChannel) {
        for (const [outcome, count] of byOutcome) yield [{ endpoint, channel, outcome }, count]
      }
    }
  }
}

/** The pull-duration histogram's upper bounds, seconds. */
const PULL_DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5] as const

/** One endpoint's histogram: counts per bucket (the last one is +Inf), sum and count. */
export class DurationCounts {
  readonly buckets = new Float64Array(PULL_DURATION_BUCKETS.length + 1)
  sum = 0
  count = 0

  observe (seconds: number): void {
    let i = 0
    while (i < PULL_DURATION_BUCKETS.length && seconds > PULL_DURATION_BUCKETS[i]!) i++
    this.buckets[i]!++
    this.sum += seconds
    this.count++
  }
}

/**
 * `chartcast_spec_pull_duration_seconds`, a histogram per endpoint, counted in plain numbers:
 * prom-client's Histogram#observe builds a closure, a label object and a label hash and looks
 * a bucket up by its number as a string, on every pull. The route observes into a
 * DurationCounts it holds per endpoint (`forEndpoint`); a scrape reads them in prom-client's
 * histogram shape (`_bucket{le}` cumulative, `_sum`, `_count`), so /metrics is unchanged.
 */
export class PullDurations {
  readonly name = 'chartcast_spec_pull_duration_seconds'
  readonly help = 'Time from receiving a spec pull to its answer being handed to Node (the socket write is not included)'
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  private readonly byEndpoint = new Map<string, DurationCounts>()

  forEndpoint (endpoint: string): DurationCounts {
    let counts = this.byEndpoint.get(endpoint)
    if (counts === undefined) {
      counts = new DurationCounts()
      this.byEndpoint.set(endpoint, counts)
    }
    return counts
  }

  /** The registry's text exposition reads this (the shape prom-client's Histogram gives it). */
  getForPromString (): { name: string, help: string, type: string, aggregator: string, values: Array<{ labels: Record<string, string | number>, sharedLabels: Record<string, string>, value: number, metricName: string }> } {
    const values = []
    for (const [endpoint, counts] of this.byEndpoint) {
      // Endpoints never observed are not shown, as prom-client shows no label set it never saw.
      if (counts.count === 0) continue
      const sharedLabels = { endpoint }
      let cumulative = 0
      for (const [i, bound] of PULL_DURATION_BUCKETS.entries()) {
        cumulative += counts.buckets[i]!
        values.push({ labels: { le: bound }, sharedLabels, value: cumulative, metricName: `${this.name}_bucket` })
      }
      values.push({ labels: { le: '+Inf' }, sharedLabels, value: counts.count, metricName: `${this.name}_bucket` })
      values.push({ labels: {}, sharedLabels, value: counts.sum, metricName: `${this.name}_sum` })
      values.push({ labels: {}, sharedLabels, value: counts.count, metricName: `${this.name}_count` })
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  /** The JSON form (Registry#getMetricsAsJSON): the shared labels merged into each value's. */
  get (): ReturnType<PullDurations['getForPromString']> {
    const data = this.getForPromString()
    return { ...data, values: data.values.map(({ labels, sharedLabels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels }, sharedLabels: {} })) }
  }

  reset (): void {
    this.byEndpoint.clear()
  }
}

export interface Metrics {
  registry: Registry
  pulls: PullCounts
  pullDuration: PullDurations
  publishes: Counter<'result'>
  mutations: Counter<'action'>
  checkinsDropped: Counter<'kind'>
  fleetFlushBatches: Counter<'result'>
  fleetFlushDuration: Histogram
  reports: Counter<'channel' | 'outcome'>
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

export function createMetrics (): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const pulls = new PullCounts()
  // Counters only ever grow, so setting them to the running totals at each scrape is exact.
  void new Counter({
    name: 'chartcast_spec_pulls_total',
    help: 'Spec pulls by endpoint, channel and outcome (ok, not_modified or an error code)',
    labelNames: ['endpoint', 'channel', 'outcome'],
    registers: [registry],
    collect () {
      this.reset()
      for (const [labels, count] of pulls.entries()) this.inc(labels, count)
    }
  })
  const pullDuration = new PullDurations()
  // Registry reads only name, type, help, get/getForPromString and reset of a metric.
  registry.registerMetric(pullDuration as unknown as Metric)
  return {
    registry,
    pulls,
    pullDuration,
    publishes: new Counter({ name: 'chartcast_publishes_total', help: 'Release publishes by result (created, identical, conflict, invalid)', labelNames: ['result'], registers: [registry] }),
    mutations: new Counter({ name: 'chartcast_mutations_total', help: 'Acknowledged mutations by action', labelNames: ['action'], registers: [registry] }),
    checkinsDropped: new Counter({ name: 'chartcast_checkins_dropped_total', help: 'Check-ins (kind checkin) and apply reports (kind report) dropped unwritten because CHECKIN_MAX_PENDING was reached', labelNames: ['kind'], registers: [registry] }),
    fleetFlushBatches: new Counter({ name: 'chartcast_fleet_flush_batches_total', help: 'Batches of check-ins and reports written to the database (result ok) or failed (result error)', labelNames: ['result'], registers: [registry] }),
    fleetFlushDuration: new Histogram({ name: 'chartcast_fleet_flush_batch_duration_seconds', help: 'Time to write one batch of check-ins and reports', buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30], registers: [registry] }),
    reports: new Counter({ name: 'chartcast_reports_total', help: 'Apply reports accepted, by channel and outcome', labelNames: ['channel', 'outcome'], registers: [registry] })
  }
}

export default fp(async (fastify) => {
  const metrics = createMetrics()
  fastify.decorate('metrics', metrics)
  fastify.get('/metrics', {
    schema: {
      summary: 'Prometheus metrics (text exposition format 0.0.4)',
      tags: ['health'],
      response: { 200: { description: 'Metrics in the Prometheus text format', content: { 'text/plain; version=0.0.4': { schema: { type: 'string' } } } } }
    }
  }, async (_request, reply) => {
    reply.type(metrics.registry.contentType)
    return await metrics.registry.metrics()
  })
}, { name: 'chartcast-metrics' })
