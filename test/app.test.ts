import t from 'tap'
import { buildTestServer } from './helpers/server.js'

t.test('headers over 16 kB (a 100 kB token) get a 431 problem over real HTTP, not fastify\'s plain JSON', async (t) => {
  const s = await buildTestServer(t)
  const base = await s.listen()
  const res = await fetch(`${base}/channels/stable/spec`, { headers: { authorization: 'Bearer ' + 'a'.repeat(100_000) } })
  t.equal(res.status, 431)
  t.match(res.headers.get('content-type'), /^application\/problem\+json/)
  const body = await res.json() as Record<string, unknown>
  t.equal(body.code, 'HEADERS_TOO_LARGE')
  t.equal(body.status, 431)
})
