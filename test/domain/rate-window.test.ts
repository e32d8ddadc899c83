import t from 'tap'
import { countRequest, openWindow, windowExpired } from '../../src/domain/rate-window.js'

const policy = { limit: 3, windowMs: 60_000 }

t.test('allows the limit, then refuses with the seconds left in the window', async (t) => {
  const window = openWindow(1_000_000)
  t.same([0, 1, 2].map((i) => countRequest(window, policy, 1_000_000 + i * 1000)), [0, 0, 0], 'the first three pass')
  t.equal(countRequest(window, policy, 1_000_000 + 10_000), 50, '4th, 10 s into the window: retry in 50 s')
  t.equal(countRequest(window, policy, 1_000_000 + 59_500), 1, 'half a second before the end rounds up to 1 s')
  t.equal(window.count, 5, 'refused requests are counted too')
})

t.test('a new window opens when the old one has passed', async (t) => {
  const window = openWindow(0)
  for (let i = 0; i < 4; i++) countRequest(window, policy, i)
  t.notOk(windowExpired(window, policy, 59_999))
  t.ok(windowExpired(window, policy, 60_000))
  t.equal(countRequest(window, policy, 60_000), 0, 'passes again at the window boundary')
  t.same(window, { start: 60_000, count: 1 })
})
