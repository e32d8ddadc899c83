import t from 'tap'
import { buildTestServer } from './helpers/server.js'
import { portOf, rawRequest } from './helpers/raw-http.js'

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

t.test('request log lines: one per request at debug, none below; never a license or token', async (t) => {
  const lines: string[] = []
  const s = await buildTestServer(t, { logLevel: 'debug', logStream: { write: (line) => lines.push(line) } })
  await s.putChannel('stable')
  await s.publish('1.0.0')
  await s.promote('stable', '1.0.0')
  const license = await s.license()
  t.equal((await s.app.inject({ url: '/channels/stable/spec', headers: { authorization: `Bearer ${license}` } })).statusCode, 200)
  const completed = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request completed')
  t.match(completed.at(-1), { level: 20, method: 'GET', url: '/channels/:name/spec', status: 200 }, 'the pull is logged at debug with its route')
  t.equal(completed.length, 4, 'one line per request (channel, publish, promote, pull)')
  const text = lines.join('')
  t.notOk(text.includes(license), 'the license is not in the log')
  t.notOk(text.includes(s.tokens.publisher) || text.includes(s.tokens.admin), 'no publisher token in the log')

  const quiet: string[] = []
  const q = await buildTestServer(t, { logLevel: 'info', logStream: { write: (line) => quiet.push(line) } })
  await q.app.inject({ url: '/livez' })
  t.notOk(quiet.some((l) => l.includes('request completed')), 'at info no per-request line')
})

t.test('an HTTP/1.1 request without a Host header gets a 400 problem over a raw socket, not an empty 400', async (t) => {
  const s = await buildTestServer(t)
  const port = portOf(await s.listen())
  const res = await rawRequest(port, 'GET /livez HTTP/1.1\r\n\r\n', true)
  t.equal(res.status, 400)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.match(res.json(), { code: 'MALFORMED_REQUEST', status: 400, detail: /Host/ })
  t.ok(res.closed)
  const http10 = await rawRequest(port, 'GET /livez HTTP/1.0\r\n\r\n', true)
  t.equal(http10.status, 200, 'HTTP/1.0 needs no Host')
})
