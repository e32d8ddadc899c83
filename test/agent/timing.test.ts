import t from 'tap'
import { abortableSleep, BACKOFF_CAP_MS, backoffDelay, pollDelay, RETRY_AFTER_CAP_MS } from '../../src/agent/timing.js'

t.test('backoff ceiling doubles from 1s and caps at 5min; full jitter scales it', async (t) => {
  const top = () => 0.999999
  const ceilings = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 50].map((n) => Math.round(backoffDelay(n, top) / 1000))
  t.same(ceilings, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300])
  t.equal(backoffDelay(3, () => 0), 0)
  t.equal(backoffDelay(3, () => 0.25), 1000)
  t.ok(backoffDelay(1000, top) <= BACKOFF_CAP_MS)
})

t.test('Retry-After is a floor, itself capped', async (t) => {
  t.equal(backoffDelay(1, () => 0.5, 30_000), 30_000)
  t.equal(backoffDelay(10, () => 0.5, 1000), 150_000, 'a larger jittered delay wins')
  t.equal(backoffDelay(1, () => 0.5, 10 * 24 * 3_600_000), RETRY_AFTER_CAP_MS)
})

t.test('poll delay is the interval ±10%', async (t) => {
  t.equal(pollDelay(100_000, () => 0), 90_000)
  t.equal(pollDelay(100_000, () => 0.5), 100_000)
  t.equal(pollDelay(100_000, () => 1), 110_000)
})

t.test('abortable sleep ends on abort', async (t) => {
  const controller = new AbortController()
  const sleeping = abortableSleep(3_600_000, controller.signal)
  controller.abort()
  await sleeping // would hang (and time the test out) if the abort were ignored
  t.pass('returned after abort')
  const already = new AbortController()
  already.abort()
  await abortableSleep(3_600_000, already.signal)
  t.pass('returns at once when already aborted')
})
