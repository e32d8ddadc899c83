import t from 'tap'
import fc from 'fast-check'
import { formatDuration, parseDuration, isDuration } from '../../src/domain/duration.js'

t.test('parseDuration reads single and compound units', async (t) => {
  t.equal(parseDuration('90s'), 90_000)
  t.equal(parseDuration('1h30m'), 5_400_000)
  t.equal(parseDuration('7d'), 604_800_000)
  t.equal(parseDuration('250ms'), 250)
})

t.test('parseDuration reads years as 365 days', async (t) => {
  t.equal(parseDuration('1y'), 365 * 86_400_000)
  t.equal(parseDuration('2y30d'), (2 * 365 + 30) * 86_400_000)
  t.ok(isDuration('1y'))
})

t.test('parseDuration refuses text that is not a duration', async (t) => {
  for (const bad of ['', '1', 'h', '1 h', '-1h', '1.5h', '1yr', 'y1']) {
    t.equal(parseDuration(bad), null, bad)
    t.notOk(isDuration(bad), bad)
  }
})

t.test('formatDuration writes the largest units first', async (t) => {
  t.equal(formatDuration(30 * 86_400_000), '30d')
  t.equal(formatDuration(90 * 86_400_000), '90d')
  t.equal(formatDuration(365 * 86_400_000), '1y')
  t.equal(formatDuration(5_400_000), '1h30m')
  t.equal(formatDuration(1_500), '1s500ms')
  t.equal(formatDuration(0), '0s')
})

t.test('formatDuration refuses what is not a whole number of milliseconds', async (t) => {
  for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) t.throws(() => formatDuration(bad), RangeError, String(bad))
})

t.test('parseDuration reads back whatever formatDuration writes', async () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 1000 * 31_536_000_000 }), (ms) => parseDuration(formatDuration(ms)) === ms))
})
