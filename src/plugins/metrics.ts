/** Prometheus metrics, one registry per app so tests and replicas in one process do not collide. */
import fp from 'fastify-plugin'
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export interface Metrics {
  registry: Registry
  pulls: Counter<'endpoint' | 'channel' | 'outcome'>
  notModified: Counter<'endpoint' | 'channel'>
  pullDuration: Histogram<'endpoint'>
  publishes: Counter<'result'>
  mutations: Counter<'action'>
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

export function createMetrics (): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  return {
    registry,
    pulls: new Counter({ name: 'chartcast_spec_pulls_total', help: 'Spec pulls by endpoint, channel and outcome (ok, not_modified or an error code)', labelNames: ['endpoint', 'channel', 'outcome'], registers: [registry] }),
    notModified: new Counter({ name: 'chartcast_spec_not_modified_total', help: 'Spec pulls answered 304', labelNames: ['endpoint', 'channel'], registers: [registry] }),
    pullDuration: new Histogram({ name: 'chartcast_spec_pull_duration_seconds', help: 'Time to answer a spec pull', labelNames: ['endpoint'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5], registers: [registry] }),
    publishes: new Counter({ name: 'chartcast_publishes_total', help: 'Release publishes by result (created, identical, conflict, invalid)', labelNames: ['result'], registers: [registry] }),
    mutations: new Counter({ name: 'chartcast_mutations_total', help: 'Acknowledged mutations by action', labelNames: ['action'], registers: [registry] })
  }
}

export default fp(async (fastify) => {
  const metrics = createMetrics()
  fastify.decorate('metrics', metrics)
  fastify.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    reply.type(metrics.registry.contentType)
    return await metrics.registry.metrics()
  })
}, { name: 'chartcast-metrics' })
