/** /metrics shows event-loop stalls (prom-client's nodejs_eventloop_lag_* gauges). */
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildTestServer } from '../helpers/server.js'
import { createMetrics } from '../../src/plugins/metrics.js'

function lagMaxSeconds (text: string): number {
  const match = /^nodejs_eventloop_lag_max_seconds ([\d.e+-]+)$/m.exec(text)
  return match === null ? Number.NaN : Number(match[1])
}

t.test('an event-loop stall shows as nodejs_eventloop_lag_max_seconds on the next scrape', async (t) => {
  const s = await buildTestServer(t)
  const scrape = async (): Promise<string> => (await s.app.inject({ url: '/metrics' })).body
  t.match(await scrape(), /^nodejs_eventloop_lag_p99_seconds /m, 'the lag percentiles are exported')
  await sleep(100) // the monitor samples while the loop runs
  await scrape() // the gauges reset at each scrape
  // After a reset the monitor's first interval is not recorded (it only sets the start time).
  await sleep(50)
  const started = performance.now()
  while (performance.now() - started < 300) { /* block the event loop */ }
  const stalledMs = performance.now() - started
  await sleep(50)
  // A lower bound only: however slow the machine, the recorded delay covers the stall.
  t.ok(lagMaxSeconds(await scrape()) * 1000 >= stalledMs / 2, 'the stall is visible in the max lag')
})

t.test('chartcast_spec_pull_duration_seconds is a Prometheus histogram per endpoint, counted outside prom-client', async (t) => {
  const metrics = createMetrics()
  const spec = metrics.pullDuration.forEndpoint('spec')
  t.equal(metrics.pullDuration.forEndpoint('spec'), spec, 'one counts object per endpoint')
  // Bounds are inclusive (le): 0.0005 falls in the first bucket, 0.7 only in +Inf.
  for (const seconds of [0.0001, 0.0005, 0.002, 0.7]) spec.observe(seconds)
  metrics.pullDuration.forEndpoint('operator').observe(0.03)
  const text = await metrics.registry.metrics()
  const lines = text.split('\n').filter((l) => l.startsWith('chartcast_spec_pull_duration_seconds'))
  t.same(lines, [
    'chartcast_spec_pull_duration_seconds_bucket{le="0.0005",endpoint="spec"} 2',
    'chartcast_spec_pull_duration_seconds_bucket{le="0.001",endpoint="spec"} 2',
    'chartcast_spec_pull_duration_seconds_bucket{le="0.0025",endpoint="spec"} 3',
    'chartcast_spec_pull_duration_seconds_bucket{le="0.005",endpoint="spec"} 3',
    'chartcast_spec_pull_duration_seconds_bucket{le="0.01",endpoint="spec"} 3',
    'chartcast_spec_pull_duration_seconds_bucket{le="0.025",endpoint="spec"} 3',
    'chartcast_spec_pull_duration_seconds_bucket{le="0.05",endpoint="spec"} 3',
    'chartcast_spec_pull_duration_seconds_bucket{le="0.1",endpoint="spec"} 3',
    'chartcast_spec_pull_duration_seconds_bucket{le="0.5",endpoint="spec"} 3',
    'chartcast_spec_pull_duration_seconds_bucket{le="+Inf",endpoint="spec"} 4',
    `chartcast_spec_pull_duration_seconds_sum{endpoint="spec"} ${0.0001 + 0.0005 + 0.002 + 0.7}`,
    'chartcast_spec_pull_duration_seconds_count{endpoint="spec"} 4',
    'chartcast_spec_pull_duration_seconds_bucket{le="0.0005",endpoint="operator"} 0',
    'chartcast_spec_pull_duration_seconds_bucket{le="0.001",endpoint="operator"} 0',
    'chartcast_spec_pull_duration_seconds_bucket{le="0.0025",endpoint="operator"} 0',
    'chartcast_spec_pull_duration_seconds_bucket{le="0.005",endpoint="operator"} 0',
    'chartcast_spec_pull_duration_seconds_bucket{le="0.01",endpoint="operator"} 0',
    'chartcast_spec_pull_duration_seconds_bucket{le="0.025",endpoint="operator"} 0',
    'chartcast_spec_pull_duration_seconds_bucket{le="0.05",endpoint="operator"} 1',
    'chartcast_spec_pull_duration_seconds_bucket{le="0.1",endpoint="operator"} 1',
    'chartcast_spec_pull_duration_seconds_bucket{le="0.5",endpoint="operator"} 1',
    'chartcast_spec_pull_duration_seconds_bucket{le="+Inf",endpoint="operator"} 1',
    'chartcast_spec_pull_duration_seconds_sum{endpoint="operator"} 0.03',
    'chartcast_spec_pull_duration_seconds_count{endpoint="operator"} 1'
  ])
  t.match(text, /# TYPE chartcast_spec_pull_duration_seconds histogram/)
  const json = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'chartcast_spec_pull_duration_seconds')
  t.same(json?.values.at(-1), { value: 1, metricName: 'chartcast_spec_pull_duration_seconds_count', labels: { endpoint: 'operator' }, sharedLabels: {} })
})
