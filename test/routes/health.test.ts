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
      t.same(res.json(), { status: 'ready', database: true, channelsLoaded: true, driver: driver === 'postgres' ? 'postgres' : 'pglite' })
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

    t.test('/docs/json is an OpenAPI 3 document listing the API paths', async (t) => {
      const s = await buildTestServer(t, { driver })
      const res = await s.app.inject({ url: '/docs/json' })
      t.equal(res.statusCode, 200)
      const doc = res.json()
      t.match(doc.openapi, /^3\./)
      t.equal(doc.info.title, 'chartcast')
      for (const path of [
        '/releases', '/releases/{version}', '/channels', '/channels/{name}', '/channels/{name}/releases',
        '/channels/{name}/releases/{version}', '/channels/{name}/spec', '/licenses/revocations', '/audit',
        '/api/v1/operator/channel', '/api/v1/operator/channel/release/{version}', '/livez', '/readyz'
      ]) t.ok(doc.paths[path], path)
      t.ok(doc.paths['/releases'].post)
      t.ok(doc.paths['/channels/{name}/releases/{version}'].delete)
      t.ok(doc.components.securitySchemes.operatorBasic)
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
