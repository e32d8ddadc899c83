/** /metrics shows event-loop stalls (prom-client's nodejs_eventloop_lag_* gauges). */
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildTestServer } from '../helpers/server.js'

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
