import t from 'tap'
import Fastify from 'fastify'
import { explainStartupError, fastifyOptions } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import type { Database } from '../src/db/index.js'
import databasePlugin from '../src/plugins/database.js'
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

t.test('STARTUP_TIMEOUT is fastify\'s plugin timeout: 5 minutes by default, far above fastify\'s 10 s', async (t) => {
  t.equal(fastifyOptions(loadConfig({})).pluginTimeout, 300_000)
  t.equal(fastifyOptions(loadConfig({ STARTUP_TIMEOUT: '20m' })).pluginTimeout, 1_200_000)
})

t.test('a database start that never ends fails after STARTUP_TIMEOUT with a message naming the step and the setting', async (t) => {
  const config = loadConfig({ STARTUP_TIMEOUT: '1s', CHANNELS_DIR: t.testdir() })
  const fastify = Fastify({ ...fastifyOptions(config), logger: false })
  t.teardown(async () => { await fastify.close().catch(() => {}) })
  // The step is stuck for good, so it is the timeout, not the clock of a busy machine, that ends it.
  const stuck = { migrate: async () => await new Promise<never>(() => {}), close: async () => {} } as unknown as Database
  let failure: unknown = null
  try {
    await fastify.register(databasePlugin, { config, database: stuck })
  } catch (error) {
    failure = explainStartupError(error, config)
  }
  t.match(failure, { message: /start-up step "chartcast-database" did not finish within STARTUP_TIMEOUT \(1s\).*raise STARTUP_TIMEOUT/ })
  t.match((failure as Error).cause, { code: 'AVV_ERR_PLUGIN_EXEC_TIMEOUT' })
  const other = new Error('boom')
  t.equal(explainStartupError(other, config), other, 'any other start-up error is passed on as it is')
})
