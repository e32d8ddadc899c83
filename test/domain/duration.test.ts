import t from 'tap'
import { parseDuration, isDuration } from '../../src/domain/duration.js'

t.test('parseDuration reads single and compound units', async (t) => {
  t.equal(parseDuration('90s'), 90_000)
  t.equal(parseDuration('1h30m'), 5_400_000)
  t.equal(parseDuration('7d'), 604_800_000)
  t.equal(parseDuration('250ms'), 250)
})

t.test('parseDuration refuses text that is not a duration', async (t) => {
  for (const bad of ['', '1', 'h', '1 h', '-1h', '1.5h', '1y']) {
    t.equal(parseDuration(bad), null, bad)
    t.notOk(isDuration(bad), bad)
  }
})
