/**
 * Check-ins while the database is away: the replica reaches PostgreSQL through a TCP proxy
 * that refuses connections (test/helpers/tcp-proxy.ts). Pulls keep being answered and
 * recorded, failed flushes keep every record, and the first flush after the database is back
 * writes them all.
 */
import t from 'tap'
import { openDatabase } from '../../src/db/index.js'
import { deployments } from '../../src/db/schema.js'
import { buildTestServer, createThrowawayDatabase } from '../helpers/server.js'
import { startTcpProxy, targetOf } from '../helpers/tcp-proxy.js'
import { Closers, NEEDS_POSTGRES, pollUntil, postgresUrl, pull } from './support.js'

const RECOVERY_MS = 20_000

t.test('check-ins accumulate during an outage and are written when the database returns', { skip: postgresUrl() === null ? NEEDS_POSTGRES : false }, async (t) => {
  const throwaway = await createThrowawayDatabase()
  const proxy = await startTcpProxy(targetOf(postgresUrl()!))
  const closers = new Closers()
  const viaProxy = await openDatabase({ databaseUrl: proxy.rewrite(throwaway.url), dataDir: '/nonexistent' })
  const direct = await openDatabase({ databaseUrl: throwaway.url, dataDir: '/nonexistent' })
  t.teardown(async () => {
    proxy.restore()
    await closers.closeAll()
    await viaProxy.close()
    await direct.close()
    await proxy.close()
    await throwaway.drop()
  })
  const server = await buildTestServer(closers, { database: viaProxy, env: { CHECKIN_FLUSH_INTERVAL: '1h', CHECKIN_MAX_PENDING: '3' } })
  t.equal((await server.putChannel('stable')).statusCode, 201)
  t.equal((await server.publish('1.0.0')).statusCode, 201)
  t.equal((await server.promote('stable', '1.0.0')).statusCode, 201)
  const licenses = await Promise.all(['d1', 'd2', 'd3', 'd4'].map(async (sub) => await server.license({ sub, channels: ['stable'] })))

  proxy.cut('refuse')
  for (const license of licenses.slice(0, 3)) t.equal((await pull(server, 'stable', license)).statusCode, 200, 'served from memory')
  // The connection's own error (refused connections are reset by the proxy).
  await t.rejects(server.app.checkins.flush(), { code: /^ECONN/ }, 'the flush fails while cut off')
  t.equal(server.app.checkins.pendingCount, 3, 'every record kept')
  // A fourth deployment past CHECKIN_MAX_PENDING=3: the one waiting longest is dropped and counted.
  t.equal((await pull(server, 'stable', licenses[3]!)).statusCode, 200)
  t.equal(server.app.checkins.dropped, 1)
  const metrics = await server.app.inject({ url: '/metrics' })
  t.match(metrics.body, /chartcast_checkins_dropped_total\{kind="checkin"\} 1/)

  proxy.restore()
  const recovered = await pollUntil(async () => {
    try {
      await server.app.checkins.flush()
      return true
    } catch {
      return false
    }
  }, RECOVERY_MS, 100)
  t.not(recovered, null, 'a flush succeeded after the database returned')
  const rows = await direct.db.select().from(deployments)
  t.same(rows.map((r) => r.id).sort(), ['d2', 'd3', 'd4'])
  t.equal(server.app.checkins.pendingCount, 0)
})
