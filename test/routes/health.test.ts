import t from 'tap'
import { buildTestServer, testDrivers } from '../helpers/server.js'

for (const driver of testDrivers()) {
  t.test(driver, async (t) => {
    t.test('/livez answers 200 ok without auth', async (t) => {
      const s = await buildTestServer(t, { driver })
      const res = await s.app.inject({ url: '/livez' })
      t.equal(res.statusCode, 200)
      t.same(res.json(), { status: 'ok' })
    })

    t.test('/readyz is 200 with the database reachable and channels loaded', async (t) => {
      const s = await buildTestServer(t, { driver })
      const res = await s.app.inject({ url: '/readyz' })
      t.equal(res.statusCode, 200, res.body)
      t.same(res.json(), { status: 'ready', database: true, channelsLoaded: true, changeListener: true, driver: driver === 'postgres' ? 'postgres' : 'pglite' })
    })

    t.test('/readyz is a 503 NOT_READY problem naming the database when its ping fails', async (t) => {
      const s = await buildTestServer(t, { driver })
      const ping = s.database.ping
      t.teardown(() => { s.database.ping = ping })
      s.database.ping = async () => { throw new Error('connection refused') }
      const res = await s.app.inject({ url: '/readyz' })
      t.equal(res.statusCode, 503)
      t.match(res.headers['content-type'], /^application\/problem\+json/)
      t.match(res.json(), { status: 503, code: 'NOT_READY', detail: /database is unreachable/, database: false, channelsLoaded: true })
      t.notMatch(res.body, /connection refused/, 'the driver\'s message stays out')
    })

    t.test('/metrics is Prometheus text with chartcast_spec_pulls_total after a pull', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable')
      await s.publish('1.0.0')
      await s.promote('stable', '1.0.0')
      t.equal((await s.app.inject({ url: '/channels/stable/spec', headers: { authorization: `Bearer ${await s.license()}` } })).statusCode, 200)
      const res = await s.app.inject({ url: '/metrics' })
      t.equal(res.statusCode, 200)
      t.match(res.headers['content-type'], /^text\/plain/)
      t.match(res.body, /# TYPE chartcast_spec_pulls_total counter/)
      t.match(res.body, /chartcast_spec_pulls_total\{endpoint="spec",channel="stable",outcome="ok"\} 1/)
      t.match(res.body, /chartcast_spec_pull_duration_seconds_count\{endpoint="spec"\} 1/)
      t.match(res.body, /chartcast_mutations_total\{action="release.publish"\} 1/)
      t.match(res.body, /process_resident_memory_bytes/)
    })

    t.test('an unknown route is a 404 NOT_FOUND problem', async (t) => {
      const s = await buildTestServer(t, { driver })
      const res = await s.app.inject({ url: '/nope' })
      t.equal(res.statusCode, 404)
      t.match(res.headers['content-type'], /^application\/problem\+json/)
      t.equal(res.json().code, 'NOT_FOUND')
    })
  })
}
