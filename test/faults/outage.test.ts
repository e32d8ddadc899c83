/**
 * A database outage under a running server. Replica A reaches PostgreSQL through a TCP proxy
 * (test/helpers/tcp-proxy.ts, the stand-in for the network; the machine's PostgreSQL is
 * shared with other tests and is never stopped); replica B connects directly and keeps
 * working, as another replica on the far side of the fault would.
 *
 * While A is cut off: every channel it has loaded is still served from memory (200 with the
 * same ETag, and 304), writes get 503 DATABASE_UNAVAILABLE with Retry-After, /readyz says not
 * ready. When the proxy lets connections through again, A recovers without a restart.
 */
import t, { type Test } from 'tap'
import { sql } from 'drizzle-orm'
import { openDatabase } from '../../src/db/index.js'
import { buildTestServer, createThrowawayDatabase, type TestServer } from '../helpers/server.js'
import { startTcpProxy, targetOf, type CutMode } from '../helpers/tcp-proxy.js'
import { Closers, CONVERGENCE_MS, NEEDS_POSTGRES, pollUntil, postgresUrl, pull, served } from './support.js'

/** Generous: the listener retries with a backoff capped at 5 s, the pool needs one good connect. */
const RECOVERY_MS = 20_000

function checkUnavailable (t: Test, res: { statusCode: number, headers: Record<string, unknown>, body: string }, what: string): void {
  t.equal(res.statusCode, 503, `${what}: 503`)
  t.match(String(res.headers['content-type']), /^application\/problem\+json/, `${what}: problem+json`)
  t.ok(Number(res.headers['retry-after']) > 0, `${what}: Retry-After`)
  const problem = JSON.parse(res.body) as Record<string, unknown>
  t.equal(problem.code, 'DATABASE_UNAVAILABLE', `${what}: code`)
  t.equal(problem.status, 503)
  t.same(Object.keys(problem).sort(), ['code', 'detail', 'status', 'title', 'type'], `${what}: only the problem fields`)
  t.notMatch(res.body, /select|insert|update|pg_notify|\bat .*\.(ts|js):\d+|Error:/i, `${what}: no SQL or stack in the body`)
}

async function outageScenario (t: Test, mode: CutMode): Promise<void> {
  const base = postgresUrl()!
  const throwaway = await createThrowawayDatabase()
  const proxy = await startTcpProxy(targetOf(base))
  const closers = new Closers()
  let dbAClosed = false
  const dbA = await openDatabase({ databaseUrl: proxy.rewrite(throwaway.url), dataDir: '/nonexistent' })
  const dbB = await openDatabase({ databaseUrl: throwaway.url, dataDir: '/nonexistent' })
  t.teardown(async () => {
    proxy.restore()
    await closers.closeAll()
    if (!dbAClosed) await dbA.close()
    await dbB.close()
    await proxy.close()
    await throwaway.drop()
  })
  const a: TestServer = await buildTestServer(closers, { database: dbA })
  const b: TestServer = await buildTestServer(closers, { database: dbB, keyPair: a.keyPair, authSecret: a.authSecret })
  const license = await a.license({ channels: ['*'] })
  const publishBody = (v: string) => ({ values: { build: v, nested: { list: [1, 2, 3] } }, notes: `release ${v}` })

  // Acknowledged before the cut: three channels, six releases, a pinned version.
  for (const name of ['stable', 'beta', 'dev']) t.equal((await a.putChannel(name, { values: { channel: name } })).statusCode, 201)
  const acknowledged: string[] = []
  for (const v of ['1.0.0', '1.1.0', '1.2.0', '2.0.0-rc.1', '2.0.0-rc.2', '3.0.0-dev.1']) {
    const res = await a.publish(v, publishBody(v))
    t.equal(res.statusCode, 201)
    acknowledged.push(v)
  }
  for (const [channel, version] of [['stable', '1.0.0'], ['stable', '1.1.0'], ['beta', '1.2.0'], ['beta', '2.0.0-rc.1'], ['dev', '3.0.0-dev.1']] as const) {
    t.equal((await a.promote(channel, version)).statusCode, 201)
  }
  const before = new Map<string, { etag: string, body: string }>()
  for (const channel of ['stable', 'beta', 'dev']) {
    const res = await pull(a, channel, license)
    t.equal(res.statusCode, 200)
    before.set(channel, { etag: res.headers.etag as string, body: res.body })
  }
  const pinnedBefore = await a.app.inject({ url: '/channels/stable/spec?version=1.0.0', headers: { authorization: `Bearer ${license}` } })
  t.equal(pinnedBefore.statusCode, 200)
  t.equal((await a.app.inject({ url: '/readyz' })).statusCode, 200)
  // Fill A's pool (10 connections, all idle now), so the cut catches pooled connections as
  // well as new ones: in a partition, a write on a pooled connection hangs in BEGIN.
  await Promise.all(Array.from({ length: 10 }, async () => await dbA.db.execute(sql`select pg_sleep(0.2)`)))

  proxy.cut(mode)

  t.test('while cut off: spec pulls are served from memory for every loaded channel', async (t) => {
    for (const [channel, { etag, body }] of before) {
      const res = await pull(a, channel, license)
      t.equal(res.statusCode, 200, `${channel}: 200`)
      t.equal(res.headers.etag, etag, `${channel}: same ETag`)
      t.equal(res.body, body, `${channel}: same body`)
      t.equal((await pull(a, channel, license, etag)).statusCode, 304, `${channel}: 304 on If-None-Match`)
    }
    const pinned = await a.app.inject({ url: '/channels/stable/spec?version=1.0.0', headers: { authorization: `Bearer ${license}` } })
    t.equal(pinned.statusCode, 200, 'a pinned version already compiled is served too')
    t.equal(pinned.body, pinnedBefore.body)
    // A license never seen before: verified in memory, no database needed.
    const fresh = await a.license({ sub: 'cluster-new', channels: ['beta'] })
    t.equal((await pull(a, 'beta', fresh)).statusCode, 200, 'a new license is verified without the database')
  })

  t.test('while cut off: writes get 503 DATABASE_UNAVAILABLE', async (t) => {
    // All at once, and more of them than the pool has connections (10): in a partition each
    // waits for a timeout, and every one that fails must give its pooled connection back.
    const extra = Array.from({ length: 12 }, (_, i) => a.publish(`5.0.${i}`, publishBody(`5.0.${i}`)))
    const [publish, promote, withdraw, put, revoke, read, ...rest] = await Promise.all([
      a.publish('4.0.0', publishBody('4.0.0')),
      a.promote('stable', '1.2.0'),
      a.app.inject({ method: 'DELETE', url: '/channels/stable/releases/1.1.0', headers: { authorization: `Bearer ${a.tokens.publisher}` } }),
      a.putChannel('stable', { values: { channel: 'changed' } }),
      a.app.inject({ method: 'POST', url: '/licenses/revocations', headers: { authorization: `Bearer ${a.tokens.admin}` }, payload: { sub: 'x', reason: 'y' } }),
      a.app.inject({ url: '/releases/1.0.0', headers: { authorization: `Bearer ${a.tokens.reader}` } }),
      ...extra
    ])
    checkUnavailable(t, publish!, 'publish')
    checkUnavailable(t, promote!, 'promote')
    checkUnavailable(t, withdraw!, 'withdraw')
    checkUnavailable(t, put!, 'channel PUT')
    checkUnavailable(t, revoke!, 'revocation')
    checkUnavailable(t, read!, 'read API')
    t.same(rest.map((r) => r.statusCode), rest.map(() => 503), 'every concurrent publish: 503')
    // Nothing of the refused writes leaked into memory either.
    t.equal(await served(a, 'stable', license), '1.1.0')
  })

  t.test('while cut off: /readyz is 503, /livez 200', async (t) => {
    const ready = await a.app.inject({ url: '/readyz' })
    t.equal(ready.statusCode, 503)
    t.match(ready.headers['content-type'], /^application\/problem\+json/)
    t.match(ready.json(), { code: 'NOT_READY', database: false })
    t.equal((await a.app.inject({ url: '/livez' })).statusCode, 200)
  })

  // Meanwhile, on the far side of the fault, replica B keeps changing things A cannot hear about.
  t.test('replica B promotes while A is cut off', async (t) => {
    t.equal((await b.promote('stable', '1.2.0')).statusCode, 201)
    t.equal(await served(a, 'stable', license), '1.1.0', 'A still serves what it had')
  })

  t.test('after the database returns: A recovers without a restart', async (t) => {
    proxy.restore()
    const readyMs = await pollUntil(async () => (await a.app.inject({ url: '/readyz' })).statusCode === 200, RECOVERY_MS, 100)
    t.not(readyMs, null, `/readyz is 200 again (after ${readyMs} ms)`)
    // The promotion A missed is picked up: the LISTEN connection came back and resynced.
    const resyncMs = await pollUntil(async () => await served(a, 'stable', license) === '1.2.0', RECOVERY_MS, 50)
    t.not(resyncMs, null, `A serves the promotion it missed (after ${resyncMs} ms)`)
    // And it hears new notices again: B's next promotion reaches A within the usual second.
    t.equal((await b.promote('beta', '2.0.0-rc.2')).statusCode, 201)
    const ms = await pollUntil(async () => await served(a, 'beta', license) === '2.0.0-rc.2', CONVERGENCE_MS)
    t.not(ms, null, `A serves B's next promotion within ${CONVERGENCE_MS} ms (took ${ms} ms)`)

    const pub = await a.publish('4.0.0', publishBody('4.0.0'))
    t.equal(pub.statusCode, 201, 'publish works again (the refused attempt stored nothing)')
    t.equal((await a.promote('dev', '4.0.0')).statusCode, 201, 'promote works again')
    // Every pooled connection the failed writes held came back: a burst wider than the pool works.
    const burst = await Promise.all(Array.from({ length: 30 }, async () => await a.app.inject({ url: '/releases', headers: { authorization: `Bearer ${a.tokens.reader}` } })))
    t.same(burst.map((r) => r.statusCode), burst.map(() => 200), 'no pooled connection was leaked by the outage')
    t.equal(await served(b, 'dev', license), '4.0.0')
  })

  t.test('nothing acknowledged before the cut is lost', async (t) => {
    for (const v of acknowledged) {
      const res = await a.app.inject({ url: `/releases/${v}`, headers: { authorization: `Bearer ${a.tokens.reader}` } })
      t.equal(res.statusCode, 200, `${v} is there`)
      t.same(res.json().values, publishBody(v).values)
    }
    const audit = await a.app.inject({ url: '/audit?limit=500', headers: { authorization: `Bearer ${a.tokens.admin}` } })
    const actions = (audit.json().entries as Array<{ action: string }>).map((e) => e.action)
    // 3 channels, 7 publishes (6 + 4.0.0), 8 promotions (5 before, B's 2, 4.0.0 to dev); the refused writes left none.
    t.equal(actions.filter((a) => a === 'channel.upsert').length, 3)
    t.equal(actions.filter((a) => a === 'release.publish').length, 7)
    t.equal(actions.filter((a) => a === 'channel.promote').length, 8)
    t.equal(actions.filter((a) => a === 'channel.withdraw' || a === 'license.revoke').length, 0)
  })

  t.test('A shuts down cleanly: no pooled connection is still held by a failed write', async (t) => {
    await closers.closeAll()
    // pool.end() waits for every checked-out connection; one leaked by a failed write would
    // hold it forever. The deadline is only there to fail rather than hang the suite.
    const closed = await Promise.race([
      dbA.close().then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), 15_000).unref())
    ])
    dbAClosed = true
    t.ok(closed, 'the pool closed')
  })
}

const skip = postgresUrl() === null ? NEEDS_POSTGRES : false

t.test('PostgreSQL goes away (connections refused) and comes back', { skip }, async (t) => {
  await outageScenario(t, 'refuse')
})

t.test('the network to PostgreSQL partitions (connections hang) and heals', { skip }, async (t) => {
  await outageScenario(t, 'blackhole')
})
