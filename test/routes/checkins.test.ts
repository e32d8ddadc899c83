/**
 * Check-ins: every authorized pull (200 or 304, either endpoint) reaches the deployments table
 * through the recorder's flush, coalesced per deployment; replicas keep the newest lastSeenAt.
 * The flusher's interval is an hour here: each test drives flush() itself.
 */
import t, { type Test } from 'tap'
import { eq, sql } from 'drizzle-orm'
import { deployments } from '../../src/db/schema.js'
import { buildTestServer, testDrivers, type TestServer } from '../helpers/server.js'
import { twoReplicas } from '../helpers/replicas.js'

const QUIET = { CHECKIN_FLUSH_INTERVAL: '1h' }

async function row (server: TestServer, id: string) {
  const [found] = await server.database.db.select().from(deployments).where(eq(deployments.id, id))
  return found ?? null
}

async function setUp (t: Test, server: TestServer): Promise<void> {
  t.equal((await server.putChannel('stable', { pollInterval: '1m' })).statusCode, 201)
  for (const v of ['1.0.0', '1.1.0']) t.equal((await server.publish(v)).statusCode, 201)
  t.equal((await server.promote('stable', '1.0.0')).statusCode, 201)
}

for (const driver of testDrivers()) {
  t.test(`${driver}: a spec pull is a check-in with applied version, served version, agent and address`, async (t) => {
    const server = await buildTestServer(t, { driver, env: QUIET })
    await setUp(t, server)
    const license = await server.license({ sub: 'cluster-7', channels: ['stable'] })
    const res = await server.app.inject({ url: '/channels/stable/spec', headers: { authorization: `Bearer ${license}`, 'chartcast-applied': '0.9.0', 'user-agent': 'chartcast-agent/1.0' }, remoteAddress: '192.0.2.7' })
    t.equal(res.statusCode, 200)
    t.equal(await row(server, 'cluster-7'), null, 'nothing written before the flush')
    await server.app.checkins.flush()
    const written = await row(server, 'cluster-7')
    t.match(written, { id: 'cluster-7', channel: 'stable', appliedVersion: '0.9.0', servedVersion: '1.0.0', agent: 'chartcast-agent/1.0', address: '192.0.2.7', lastReportOutcome: null })
    t.ok(written?.lastSeenAt instanceof Date)
  })

  t.test(`${driver}: a 304 and an operator pull are check-ins; refusals and anonymous pulls are not`, async (t) => {
    let now = Date.now()
    const server = await buildTestServer(t, { driver, env: { ...QUIET, ANONYMOUS_CHANNEL: 'stable' }, now: () => now })
    await setUp(t, server)
    const license = await server.license({ sub: 'cluster-8', channels: ['stable'] })
    const first = await server.app.inject({ url: '/channels/stable/spec', headers: { authorization: `Bearer ${license}` } })
    await server.app.checkins.flush()
    const seen = (await row(server, 'cluster-8'))?.lastSeenAt.getTime()
    now += 60_000
    const notModified = await server.app.inject({ url: '/channels/stable/spec', headers: { authorization: `Bearer ${license}`, 'if-none-match': first.headers.etag as string, 'chartcast-applied': '1.0.0' } })
    t.equal(notModified.statusCode, 304)
    await server.app.checkins.flush()
    const after304 = await row(server, 'cluster-8')
    t.equal(after304?.lastSeenAt.getTime(), (seen ?? 0) + 60_000, 'the 304 moved lastSeenAt')
    t.equal(after304?.appliedVersion, '1.0.0')

    const operatorLicense = await server.license({ sub: 'wandb-1', channels: ['stable'] })
    const basic = Buffer.from(`license:${operatorLicense}`).toString('base64')
    t.equal((await server.app.inject({ url: '/api/v1/operator/channel', headers: { authorization: `Basic ${basic}` } })).statusCode, 200)
    t.equal((await server.app.inject({ url: '/api/v1/operator/channel' })).statusCode, 200, 'anonymous pull served')
    const other = await server.license({ sub: 'not-entitled', channels: ['beta'] })
    t.equal((await server.app.inject({ url: '/channels/stable/spec', headers: { authorization: `Bearer ${other}` } })).statusCode, 403)
    await server.app.checkins.flush()
    t.match(await row(server, 'wandb-1'), { channel: 'stable', appliedVersion: null, servedVersion: '1.0.0' })
    t.equal(await row(server, 'not-entitled'), null, 'a refused pull is no check-in')
    const { rows } = await server.database.db.execute(sql`select count(*)::int as n from deployments`) as unknown as { rows: Array<{ n: number }> }
    t.equal(Number(rows[0]?.n), 2, 'the anonymous pull left no row')
  })

  t.test(`${driver}: many pulls of one deployment between flushes are one row with the latest`, async (t) => {
    const server = await buildTestServer(t, { driver, env: QUIET })
    await setUp(t, server)
    const license = await server.license({ sub: 'cluster-9', channels: ['*'] })
    for (const applied of ['0.1.0', '0.2.0', '1.0.0']) {
      t.equal((await server.app.inject({ url: '/channels/stable/spec', headers: { authorization: `Bearer ${license}`, 'chartcast-applied': applied } })).statusCode, 200)
    }
    t.equal((await server.app.inject({ url: '/channels/stable/spec?version=1.1.0', headers: { authorization: `Bearer ${license}`, 'chartcast-applied': '1.0.0' } })).statusCode, 404, '1.1.0 is not in the channel')
    t.equal(server.app.checkins.pendingCount, 1)
    await server.app.checkins.flush()
    t.match(await row(server, 'cluster-9'), { appliedVersion: '1.0.0', servedVersion: '1.0.0' })
  })

  t.test(`${driver}: a deployment that switches channels moves`, async (t) => {
    const server = await buildTestServer(t, { driver, env: QUIET })
    await setUp(t, server)
    t.equal((await server.putChannel('beta')).statusCode, 201)
    t.equal((await server.promote('beta', '1.1.0')).statusCode, 201)
    const license = await server.license({ sub: 'mover', channels: ['*'] })
    await server.app.inject({ url: '/channels/stable/spec', headers: { authorization: `Bearer ${license}` } })
    await server.app.checkins.flush()
    await server.app.inject({ url: '/channels/beta/spec', headers: { authorization: `Bearer ${license}` } })
    await server.app.checkins.flush()
    t.match(await row(server, 'mover'), { channel: 'beta', servedVersion: '1.1.0' })
  })

  t.test(`${driver}: two replicas flushing one deployment keep the newest lastSeenAt, whichever flushes last`, async (t) => {
    const { a, b } = await twoReplicas(t, driver)
    await setUp(t, a)
    t.equal((await b.putChannel('beta')).statusCode, 201)
    t.equal((await b.promote('beta', '1.1.0')).statusCode, 201)
    const checkin = (channel: string, served: string, at: number) => ({ id: 'shared', channel, applied: null, served, at, agent: null, address: '10.0.0.1' })
    const base = Date.now()
    // Each replica's recorder holds one check-in of the deployment; B's is the later pull.
    await b.app.fleetStore.writeFleet([checkin('beta', '1.1.0', base + 1000)], [])
    await a.app.fleetStore.writeFleet([checkin('stable', '1.0.0', base)], [])
    t.match(await row(a, 'shared'), { channel: 'beta', servedVersion: '1.1.0' }, 'B\'s newer check-in survives A\'s later flush')
    t.equal((await row(a, 'shared'))?.lastSeenAt.getTime(), base + 1000)
    await a.app.fleetStore.writeFleet([checkin('stable', '1.0.0', base + 2000)], [])
    t.match(await row(b, 'shared'), { channel: 'stable', servedVersion: '1.0.0' }, 'a newer one replaces it')
  })

  t.test(`${driver}: a batch mixing newer and staler check-ins moves only the rows it is newer for, texts intact`, async (t) => {
    const server = await buildTestServer(t, { driver, env: QUIET })
    await setUp(t, server)
    const base = Date.now()
    // Texts the array literals must escape: quotes, backslashes, braces, commas, the word NULL, empty.
    const agents = ['say "hi", {ok}', 'back\\slash', 'NULL', '']
    const checkin = (id: string, served: string, at: number, agent: string | null) => ({ id, channel: 'stable', applied: null, served, at, agent, address: '10.0.0.1' })
    await server.app.fleetStore.writeFleet([checkin('d1', '1.0.0', base + 1000, null), checkin('d2', '1.0.0', base, 'first')], [])
    // Another replica's batch: stale for d1, newer for d2, and two deployments it introduces.
    await server.app.fleetStore.writeFleet([
      checkin('d3', '1.1.0', base + 5, agents[2]!), checkin('d1', '1.1.0', base + 500, agents[0]!),
      checkin('d2', '1.1.0', base + 2000, agents[1]!), checkin('d0', '1.1.0', base + 5, agents[3]!)
    ], [])
    t.match(await row(server, 'd1'), { servedVersion: '1.0.0', agent: null }, 'the stale row left the newer one alone')
    t.equal((await row(server, 'd1'))?.lastSeenAt.getTime(), base + 1000)
    t.match(await row(server, 'd2'), { servedVersion: '1.1.0', agent: agents[1] }, 'the newer row replaced the older one')
    t.equal((await row(server, 'd2'))?.lastSeenAt.getTime(), base + 2000)
    t.equal((await row(server, 'd3'))?.agent, 'NULL', 'the text NULL is not a null')
    t.equal((await row(server, 'd0'))?.agent, '')
  })

  t.test(`${driver}: two replicas flushing the same deployments in opposite orders at once both commit`, async (t) => {
    const { a, b } = await twoReplicas(t, driver)
    await setUp(t, a)
    const base = Date.now()
    const ids = Array.from({ length: 2_000 }, (_, i) => `shared-${i}`)
    const batch = (order: string[], at: number) => order.map((id) => ({ id, channel: 'stable', applied: null, served: '1.0.0', at, agent: null, address: '10.0.0.1' }))
    await a.app.fleetStore.writeFleet(batch(ids, base), [])
    // Each upsert locks its rows one by one; in opposite orders two transactions would each
    // hold what the other waits for (a deadlock aborts one of them), unless rows are taken in
    // one order.
    for (let round = 1; round <= 5; round++) {
      await Promise.all([
        a.app.fleetStore.writeFleet(batch(ids, base + round * 10), []),
        b.app.fleetStore.writeFleet(batch([...ids].reverse(), base + round * 10 + 5), [])
      ])
    }
    const [newest] = await a.database.db.select({ count: sql<number>`count(*)::int` }).from(deployments).where(sql`${deployments.lastSeenAt} = ${new Date(base + 55).toISOString()}::timestamptz`)
    t.equal(Number(newest?.count), ids.length, 'every row holds the newest check-in')
  })

  t.test(`${driver}: closing the app writes what is pending`, async (t) => {
    const server = await buildTestServer(t, { driver, env: QUIET })
    await setUp(t, server)
    const license = await server.license({ sub: 'last-words', channels: ['stable'] })
    t.equal((await server.app.inject({ url: '/channels/stable/spec', headers: { authorization: `Bearer ${license}` } })).statusCode, 200)
    const database = server.database
    await server.app.close()
    const [found] = await database.db.select().from(deployments).where(eq(deployments.id, 'last-words'))
    t.equal(found?.servedVersion, '1.0.0')
  })
}
