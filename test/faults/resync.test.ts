/**
 * Replicas heal themselves. A notice that never arrives is made up for by the periodic
 * revision check (RESYNC_INTERVAL); a listening connection that goes half-open (a proxy that
 * stops forwarding, no FIN or RST) is noticed by its heartbeat, reported by /readyz until it is
 * back, and followed by a full resync once it is.
 */
import t, { type Test } from 'tap'
import { LISTENER_APPLICATION_NAME, openDatabase, type Database } from '../../src/db/index.js'
import { buildTestServer, createThrowawayDatabase, testDrivers, type Driver, type TestServer } from '../helpers/server.js'
import { startTcpProxy, targetOf } from '../helpers/tcp-proxy.js'
import { auth } from '../helpers/problem.js'
import { issuePublisherToken } from '../../src/token-tools.js'
import { Closers, NEEDS_POSTGRES, pollUntil, postgresUrl, pull, served } from './support.js'

/** A deadline for the polls only (never asserted on): generous for a loaded machine. */
const HEAL_DEADLINE_MS = 20_000

/** The same database, but its change notifications never reach the caller (a NOTIFY lost on the way). */
function deaf (database: Database): Database {
  return { ...database, listen: async () => async () => {} }
}

/** Replica A hears no notices and resyncs every 200 ms; replica B is an ordinary replica on the same database. */
async function deafAndHearing (t: Test, driver: Driver): Promise<{ a: TestServer, b: TestServer }> {
  const env = { RESYNC_INTERVAL: '200ms' }
  if (driver === 'pglite') {
    const b = await buildTestServer(t)
    const a = await buildTestServer(t, { database: deaf(b.database), keyPair: b.keyPair, authSecret: b.authSecret, env })
    return { a, b }
  }
  const throwaway = await createThrowawayDatabase()
  const closers = new Closers()
  const dbA = await openDatabase({ databaseUrl: throwaway.url, dataDir: '/nonexistent' })
  const dbB = await openDatabase({ databaseUrl: throwaway.url, dataDir: '/nonexistent' })
  t.teardown(async () => {
    await closers.closeAll()
    await dbA.close()
    await dbB.close()
    await throwaway.drop()
  })
  const b = await buildTestServer(closers, { database: dbB })
  const a = await buildTestServer(closers, { database: deaf(dbA), keyPair: b.keyPair, authSecret: b.authSecret, env })
  return { a, b }
}

async function revisionOn (s: TestServer, channel: string): Promise<string> {
  return String((await s.app.inject({ url: `/channels/${channel}`, headers: auth(s.tokens.reader) })).json().revision)
}

for (const driver of testDrivers()) {
  t.test(`${driver}: the periodic resync serves changes whose notice never arrived`, async (t) => {
    const { a, b } = await deafAndHearing(t, driver)
    const license = await b.license({ channels: ['stable'] })
    t.equal((await b.putChannel('stable', { values: { tier: 'one' } })).statusCode, 201)
    for (const v of ['1.0.0', '1.1.0']) t.equal((await b.publish(v)).statusCode, 201)
    t.equal((await b.promote('stable', '1.0.0')).statusCode, 201)

    t.not(await pollUntil(async () => await served(a, 'stable', license) === '1.0.0', HEAL_DEADLINE_MS), null, 'A serves the channel created on B')
    t.equal((await pull(a, 'stable', license)).headers['chartcast-revision'], await revisionOn(b, 'stable'))

    t.equal((await b.promote('stable', '1.1.0')).statusCode, 201)
    t.not(await pollUntil(async () => await served(a, 'stable', license) === '1.1.0', HEAL_DEADLINE_MS), null, 'A serves the promotion made on B')
    const res = await pull(a, 'stable', license)
    t.equal(res.headers['chartcast-revision'], await revisionOn(b, 'stable'), 'at the revision B committed')
    t.equal(res.headers.etag, (await pull(b, 'stable', license)).headers.etag, 'the same body as B')

    t.equal((await b.putChannel('stable', { values: { tier: 'two' } })).statusCode, 200)
    t.not(await pollUntil(async () => (await pull(a, 'stable', license)).json().values.tier === 'two', HEAL_DEADLINE_MS), null, 'A serves the settings changed on B')
  })
}

for (const driver of testDrivers()) {
  t.test(`${driver}: the periodic resync applies license and token revocations whose notice never arrived`, async (t) => {
    const { a, b } = await deafAndHearing(t, driver)
    const license = await b.license({ sub: 'cluster-7', channels: ['stable'] })
    t.equal((await b.putChannel('stable')).statusCode, 201)
    t.equal((await b.publish('1.0.0')).statusCode, 201)
    t.equal((await b.promote('stable', '1.0.0')).statusCode, 201)
    t.not(await pollUntil(async () => (await pull(a, 'stable', license)).statusCode === 200, HEAL_DEADLINE_MS), null, 'A serves the license (verified and cached there)')

    const revoked = await b.app.inject({ method: 'POST', url: '/licenses/revocations', headers: auth(b.tokens.admin), payload: { sub: 'cluster-7', reason: 'contract ended' } })
    t.equal(revoked.statusCode, 201, revoked.body)
    t.not(await pollUntil(async () => (await pull(a, 'stable', license)).statusCode === 403, HEAL_DEADLINE_MS), null, 'A refuses the revoked license')
    t.equal((await pull(a, 'stable', license)).json().code, 'LICENSE_REVOKED')

    const lifted = await b.app.inject({ method: 'POST', url: `/licenses/revocations/${revoked.json().id as number}/lift`, headers: auth(b.tokens.admin), payload: { reason: 'renewed' } })
    t.equal(lifted.statusCode, 201, lifted.body)
    t.not(await pollUntil(async () => (await pull(a, 'stable', license)).statusCode === 200, HEAL_DEADLINE_MS), null, 'A serves the license again after the lift')

    const ci = await issuePublisherToken(b.authSecret, { sub: 'ci-bot', role: 'publisher', expiresIn: 3600 })
    t.equal((await a.app.inject({ url: '/releases', headers: auth(ci.token) })).statusCode, 200, 'the token works on A before')
    t.equal((await b.app.inject({ method: 'POST', url: '/tokens/revocations', headers: auth(b.tokens.admin), payload: { jti: ci.jti, reason: 'leaked' } })).statusCode, 201)
    t.not(await pollUntil(async () => (await a.app.inject({ url: '/releases', headers: auth(ci.token) })).statusCode === 401, HEAL_DEADLINE_MS), null, 'A refuses the revoked publisher token')
    t.equal((await a.app.inject({ url: '/releases', headers: auth(ci.token) })).json().code, 'TOKEN_REVOKED')
  })
}

t.test('a blackholed listening connection is detected, reported by /readyz, and healed', { skip: postgresUrl() === null ? NEEDS_POSTGRES : false }, async (t) => {
  const throwaway = await createThrowawayDatabase()
  const proxy = await startTcpProxy(targetOf(postgresUrl()!))
  const closers = new Closers()
  const dbA = await openDatabase({ databaseUrl: proxy.rewrite(throwaway.url), dataDir: '/nonexistent' })
  const dbB = await openDatabase({ databaseUrl: throwaway.url, dataDir: '/nonexistent' })
  t.teardown(async () => {
    proxy.restore()
    await closers.closeAll()
    await dbA.close()
    await dbB.close()
    await proxy.close()
    await throwaway.drop()
  })
  // A resync interval far beyond the test: what heals A here is the reconnect and its full reload.
  const a = await buildTestServer(closers, { database: dbA, env: { LISTEN_HEARTBEAT_INTERVAL: '200ms', RESYNC_INTERVAL: '1d' } })
  const b = await buildTestServer(closers, { database: dbB, keyPair: a.keyPair, authSecret: a.authSecret })
  const license = await a.license({ channels: ['stable'] })
  t.equal((await b.putChannel('stable')).statusCode, 201)
  for (const v of ['1.0.0', '1.1.0']) t.equal((await b.publish(v)).statusCode, 201)
  t.equal((await b.promote('stable', '1.0.0')).statusCode, 201)
  t.not(await pollUntil(async () => await served(a, 'stable', license) === '1.0.0', HEAL_DEADLINE_MS), null, 'A hears B through its listener')
  t.equal((await a.app.inject({ url: '/readyz' })).statusCode, 200)

  // Only the listening connection goes half-open; A's pool still reaches the database.
  proxy.blackholeMatching(LISTENER_APPLICATION_NAME)
  t.equal((await b.promote('stable', '1.1.0')).statusCode, 201)

  let notReady: Record<string, unknown> | null = null
  t.not(await pollUntil(async () => {
    const res = await a.app.inject({ url: '/readyz' })
    if (res.statusCode !== 503) return false
    notReady = res.json()
    return true
  }, HEAL_DEADLINE_MS), null, '/readyz turns 503')
  t.match(notReady, { status: 503, code: 'NOT_READY', changeListener: false, database: true, channelsLoaded: true, detail: /change listener is down/ })
  t.equal(await served(a, 'stable', license), '1.0.0', 'meanwhile A serves what it has')

  proxy.restore()
  t.not(await pollUntil(async () => (await a.app.inject({ url: '/readyz' })).statusCode === 200, HEAL_DEADLINE_MS), null, '/readyz is 200 again')
  t.not(await pollUntil(async () => await served(a, 'stable', license) === '1.1.0', HEAL_DEADLINE_MS), null, 'the full resync after the reconnect serves the missed promotion')
  t.same((await a.app.inject({ url: '/readyz' })).json(), { status: 'ready', database: true, channelsLoaded: true, changeListener: true, driver: 'postgres' })
})
