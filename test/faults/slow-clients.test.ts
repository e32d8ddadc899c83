/**
 * Slow and greedy clients over real sockets: stalled requests are cut off by the configured
 * timeouts, connections past the caps are refused, and close() neither waits for a stalled
 * client nor skips closing the database.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Socket } from 'node:net'
import Fastify from 'fastify'
import app, { fastifyOptions } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { buildTestServer, createThrowawayDatabase, testDrivers, type ThrowawayDatabase } from '../helpers/server.js'
import { openSocket, portOf, rawRequest, readResponse } from '../helpers/raw-http.js'
import { issuePublisherToken } from '../../src/token-tools.js'
import { emptyChannelsDir } from '../helpers/cli.js'

const SHORT_TIMEOUTS = { REQUEST_TIMEOUT: '600ms', HEADERS_TIMEOUT: '300ms' }

/** Resolves when the server closes the socket (or it errors). */
async function closedByServer (socket: Socket): Promise<void> {
  if (socket.destroyed) return
  await new Promise<void>((resolve) => { socket.once('close', () => { resolve() }) })
}

function stalledPublish (token: string): string {
  return `POST /releases HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"version":`
}

t.test('a body that stops arriving is cut off with a 408 problem and the connection closed', async (t) => {
  const s = await buildTestServer(t, { env: SHORT_TIMEOUTS })
  const port = portOf(await s.listen())
  const res = await rawRequest(port, stalledPublish(s.tokens.publisher), true)
  t.equal(res.status, 408)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.equal(res.json().code, 'REQUEST_TIMEOUT')
  t.ok(res.closed)
  t.same((await s.app.inject({ url: '/releases', headers: { authorization: `Bearer ${s.tokens.reader}` } })).json().releases, [], 'nothing was stored')
})

t.test('headers that stop arriving are cut off with a 408 problem', async (t) => {
  const s = await buildTestServer(t, { env: SHORT_TIMEOUTS })
  const port = portOf(await s.listen())
  const res = await rawRequest(port, 'GET /livez HTTP/1.1\r\nHost: localhost\r\nX-Slow: ', true)
  t.equal(res.status, 408)
  t.equal(res.json().code, 'REQUEST_TIMEOUT')
  t.ok(res.closed)
})

t.test('connections past MAX_CONNECTIONS_PER_ADDRESS are refused; once they go, a pull succeeds', async (t) => {
  const s = await buildTestServer(t, { env: { MAX_CONNECTIONS_PER_ADDRESS: '3' } })
  await s.putChannel('stable')
  await s.publish('1.0.0')
  await s.promote('stable', '1.0.0')
  const license = await s.license()
  const port = portOf(await s.listen())
  const held = [await openSocket(port), await openSocket(port), await openSocket(port)]
  const extra = await openSocket(port)
  await closedByServer(extra)
  t.pass('the fourth connection from the same address was closed by the server')
  const refusedPull = await rawRequest(port, `GET /channels/stable/spec HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${license}\r\n\r\n`)
  t.equal(refusedPull.status, 0, 'a pull over a new connection is refused while the cap is used up')
  for (const socket of held) socket.destroy()
  await Promise.all(held.map(closedByServer))
  // The server sees the closes a moment after the client; a pull may need a second try.
  let pull = await rawRequest(port, `GET /channels/stable/spec HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${license}\r\n\r\n`)
  for (let i = 0; pull.status === 0 && i < 20; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    pull = await rawRequest(port, `GET /channels/stable/spec HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${license}\r\n\r\n`)
  }
  t.equal(pull.status, 200)
  t.equal(pull.json().version, '1.0.0')
})

t.test('connections past MAX_CONNECTIONS are refused', async (t) => {
  const s = await buildTestServer(t, { env: { MAX_CONNECTIONS: '2', MAX_CONNECTIONS_PER_ADDRESS: '0' } })
  const port = portOf(await s.listen())
  const held = [await openSocket(port), await openSocket(port)]
  const extra = await openSocket(port)
  await closedByServer(extra)
  t.pass('the third connection was closed by the server')
  for (const socket of held) socket.destroy()
})

t.test('behind TRUST_PROXY the per-address cap counts the forwarded address\'s requests in progress', async (t) => {
  const s = await buildTestServer(t, { env: { TRUST_PROXY: 'true', MAX_CONNECTIONS_PER_ADDRESS: '2' } })
  const port = portOf(await s.listen())
  const stalled = (address: string): string => stalledPublish(s.tokens.publisher).replace('Host: localhost\r\n', `Host: localhost\r\nX-Forwarded-For: ${address}\r\n`)
  const held = [await openSocket(port), await openSocket(port)]
  for (const socket of held) socket.write(stalled('203.0.113.7'))
  const livez = (address: string): string => `GET /livez HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: ${address}\r\n\r\n`
  let third = await rawRequest(port, livez('203.0.113.7'))
  // The two stalled requests reach onRequest shortly after their bytes are written.
  for (let i = 0; third.status === 200 && i < 20; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    third = await rawRequest(port, livez('203.0.113.7'))
  }
  t.equal(third.status, 429)
  t.equal(third.json().code, 'RATE_LIMITED')
  t.equal((await rawRequest(port, livez('198.51.100.1'))).status, 200, 'another client behind the same proxy is not affected')
  for (const socket of held) socket.destroy()
})

for (const driver of testDrivers()) {
  t.test(`${driver}: close() with stalled and idle connections open closes them and the database`, async (t) => {
    const scratch = mkdtempSync(path.join(tmpdir(), 'chartcast-close-'))
    let throwaway: ThrowawayDatabase | null = null
    t.teardown(async () => {
      rmSync(scratch, { recursive: true, force: true })
      if (throwaway !== null) await throwaway.drop()
    })
    if (driver === 'postgres') throwaway = await createThrowawayDatabase()
    const authSecret = randomBytes(32).toString('hex')
    // Timeouts far beyond the test's own, so only close() can end the stalled connections.
    const config = loadConfig({
      REQUEST_TIMEOUT: '1h',
      HEADERS_TIMEOUT: '1h',
      DATA_DIR: scratch,
      CHANNELS_DIR: emptyChannelsDir(path.join(scratch, 'no-channels')),
      AUTH_SECRET: authSecret,
      LOG_LEVEL: 'silent',
      ...(throwaway !== null && { DATABASE_URL: throwaway.url })
    })
    const fastify = Fastify(fastifyOptions(config))
    let arrived = (): void => {}
    const requestArrived = new Promise<void>((resolve) => { arrived = resolve })
    fastify.addHook('onRequest', (request, _reply, done) => { if (request.method === 'POST') arrived(); done() })
    await fastify.register(app, { config, licenseKeys: [], authSecret })
    const database = fastify.database
    let databaseClosed = false
    const close = database.close.bind(database)
    database.close = async () => { databaseClosed = true; await close() }
    await fastify.listen({ port: 0, host: '127.0.0.1' })
    const port = (fastify.server.address() as { port: number }).port
    const token = (await issuePublisherToken(authSecret, { sub: 'rita-release', role: 'publisher', expiresIn: 3600 })).token

    const stalledBody = await openSocket(port)
    const stalledAnswer = readResponse(stalledBody, true)
    stalledBody.write(stalledPublish(token))
    await requestArrived
    const stalledHeaders = await openSocket(port)
    stalledHeaders.write('GET /livez HTTP/1.1\r\nHost: local')
    const idle = await openSocket(port)
    const idleAnswer = readResponse(idle)
    idle.write('GET /livez HTTP/1.1\r\nHost: localhost\r\n\r\n')
    t.equal((await idleAnswer).status, 200, 'the keep-alive connection served a request and is now idle')

    await fastify.close()
    t.ok(databaseClosed, 'close() closed the database')
    await t.rejects(database.db.execute('SELECT 1'), { cause: { message: /PGlite is closed|after calling end|terminated/i } }, 'the database refuses queries after close')
    const stalled = await stalledAnswer
    t.ok(stalled.closed, 'the stalled upload was closed')
    t.equal(stalled.status, 0, 'closed by close(), not answered by a timeout')
    await Promise.all([closedByServer(stalledHeaders), closedByServer(idle)])
    t.pass('the stalled-headers and idle connections were closed')
  })
}
