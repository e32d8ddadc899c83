/**
 * The fleet endpoints (reader role) over check-ins and reports written by the flush, with
 * an injected clock deciding staleness: 3x the channel's poll interval, 24 h without one.
 */
import t, { type Test } from 'tap'
import { buildTestServer, testDrivers, type TestServer } from '../helpers/server.js'
import { assertProblem, auth } from '../helpers/problem.js'

const T0 = Date.parse('2026-06-01T12:00:00.000Z')

async function fleet (t: Test, driver: 'pglite' | 'postgres') {
  let now = T0
  const server = await buildTestServer(t, { driver, env: { CHECKIN_FLUSH_INTERVAL: '1h' }, now: () => now })
  t.equal((await server.putChannel('stable', { pollInterval: '1m' })).statusCode, 201)
  t.equal((await server.putChannel('beta')).statusCode, 201)
  for (const v of ['1.0.0', '1.1.0']) t.equal((await server.publish(v)).statusCode, 201)
  t.equal((await server.promote('stable', '1.1.0')).statusCode, 201)
  t.equal((await server.promote('beta', '1.1.0')).statusCode, 201)
  const pullAs = async (sub: string, channel: string, applied?: string) => {
    const license = await server.license({ sub, channels: ['*'] })
    const res = await server.app.inject({ url: `/channels/${channel}/spec`, headers: { ...auth(license), 'user-agent': `agent-${sub}`, ...(applied !== undefined && { 'chartcast-applied': applied }) } })
    t.equal(res.statusCode, 200)
    return license
  }
  const d1 = await pullAs('d1', 'stable', '1.0.0')
  await pullAs('d4', 'beta')
  now = T0 + 10_000
  const d2 = await pullAs('d2', 'stable', '1.0.0')
  now = T0 + 20_000
  await pullAs('d3', 'stable')
  const reported = async (license: string, body: Record<string, unknown>) => {
    t.equal((await server.app.inject({ method: 'POST', url: '/channels/stable/reports', headers: auth(license), payload: body })).statusCode, 202)
  }
  await reported(d1, { version: '1.1.0', outcome: 'failed', detail: 'helm: UPGRADE FAILED' })
  await reported(d2, { version: '1.0.0', outcome: 'skipped', detail: 'outside the maintenance window' })
  await reported(d2, { version: '1.0.0', outcome: 'applied', digest: 'sha256:aa' })
  await server.app.checkins.flush()
  // stable: stale after 180 s. d1 (200 s) and d2 (190 s) are stale, d3 (180 s, not longer) is not;
  // beta has no poll interval, so d4 is stale only after 24 h.
  now = T0 + 200_000
  return { server, setNow: (ms: number) => { now = ms } }
}

async function list (server: TestServer, query = '') {
  const res = await server.app.inject({ url: `/deployments${query}`, headers: auth(server.tokens.reader) })
  return { res, body: res.json() as { items: Array<Record<string, unknown>>, nextBefore: string | null } }
}

const ids = (body: { items: Array<Record<string, unknown>> }) => body.items.map((i) => i.id)

for (const driver of testDrivers()) {
  t.test(`${driver}: GET /deployments lists newest first with stale and the latest report, and filters`, async (t) => {
    const { server } = await fleet(t, driver)
    const { res, body } = await list(server)
    t.equal(res.statusCode, 200)
    t.same(ids(body), ['d3', 'd2', 'd4', 'd1'], 'lastSeenAt descending, id breaking the tie')
    t.equal(body.nextBefore, null)
    t.same(body.items[3], {
      id: 'd1', channel: 'stable', appliedVersion: '1.0.0', servedVersion: '1.1.0', lastSeenAt: new Date(T0).toISOString(), agent: 'agent-d1', stale: true,
      lastReport: { version: '1.1.0', outcome: 'failed', detail: 'helm: UPGRADE FAILED', at: new Date(T0 + 20_000).toISOString() }
    })
    t.same(body.items.map((i) => [i.id, i.stale]), [['d3', false], ['d2', true], ['d4', false], ['d1', true]])
    t.equal((body.items[0] as { lastReport: unknown }).lastReport, null)
    t.same(ids((await list(server, '?status=stale')).body), ['d2', 'd1'])
    t.same(ids((await list(server, '?status=failed')).body), ['d1'])
    t.same(ids((await list(server, '?status=ok')).body), ['d3', 'd4'])
    t.same(ids((await list(server, '?channel=beta')).body), ['d4'])
    t.same(ids((await list(server, '?version=1.0.0')).body), ['d2', 'd1'])
    t.same(ids((await list(server, '?channel=stable&status=ok')).body), ['d3'])
  })

  t.test(`${driver}: staleness follows the clock`, async (t) => {
    const { server, setNow } = await fleet(t, driver)
    setNow(T0 + 20_000 + 180_000)
    t.same(ids((await list(server, '?status=stale')).body), ['d2', 'd1'], 'd3 at exactly 3x is not stale yet')
    setNow(T0 + 20_000 + 180_001)
    t.same(ids((await list(server, '?status=stale')).body), ['d3', 'd2', 'd1'])
    setNow(T0 + 86_400_000 + 1)
    t.same(ids((await list(server, '?status=stale&channel=beta')).body), ['d4'], 'beta: after 24 h')
  })

  t.test(`${driver}: GET /deployments pages with before=nextBefore`, async (t) => {
    const { server } = await fleet(t, driver)
    const first = await list(server, '?limit=3')
    t.same(ids(first.body), ['d3', 'd2', 'd4'])
    t.type(first.body.nextBefore, 'string')
    const second = await list(server, `?limit=3&before=${encodeURIComponent(first.body.nextBefore!)}`)
    t.same(ids(second.body), ['d1'])
    t.equal(second.body.nextBefore, null)
    assertProblem(t, (await list(server, '?before=garbage')).res, 400, 'VALIDATION_FAILED')
    assertProblem(t, (await list(server, '?limit=0')).res, 400, 'VALIDATION_FAILED')
    assertProblem(t, (await list(server, '?status=broken')).res, 400, 'VALIDATION_FAILED')
  })

  t.test(`${driver}: GET /deployments/:id has its reports, newest first; unknown is 404 DEPLOYMENT_NOT_FOUND`, async (t) => {
    const { server } = await fleet(t, driver)
    const res = await server.app.inject({ url: '/deployments/d2', headers: auth(server.tokens.reader) })
    t.equal(res.statusCode, 200)
    const body = res.json() as Record<string, unknown> & { reports: Array<Record<string, unknown>> }
    t.match(body, { id: 'd2', stale: true, lastReport: { outcome: 'applied', version: '1.0.0', detail: null } })
    t.same(body.reports.map((r) => [r.outcome, r.digest]), [['applied', 'sha256:aa'], ['skipped', null]])
    assertProblem(t, await server.app.inject({ url: '/deployments/nobody', headers: auth(server.tokens.reader) }), 404, 'DEPLOYMENT_NOT_FOUND')
  })

  t.test(`${driver}: GET /channels/:name/fleet counts per version`, async (t) => {
    const { server } = await fleet(t, driver)
    const res = await server.app.inject({ url: '/channels/stable/fleet', headers: auth(server.tokens.reader) })
    t.equal(res.statusCode, 200)
    t.same(res.json(), {
      channel: 'stable',
      total: 3,
      stale: 2,
      staleAfterSeconds: 180,
      byVersion: {
        // d1 runs 1.0.0 and failed to apply 1.1.0: counted in both.
        '1.0.0': { deployments: 2, applied: 1, failed: 0 },
        '1.1.0': { deployments: 0, applied: 0, failed: 1 },
        unknown: { deployments: 1, applied: 0, failed: 0 }
      }
    })
    const beta = await server.app.inject({ url: '/channels/beta/fleet', headers: auth(server.tokens.reader) })
    t.same(beta.json(), { channel: 'beta', total: 1, stale: 0, staleAfterSeconds: 86_400, byVersion: { unknown: { deployments: 1, applied: 0, failed: 0 } } })
    assertProblem(t, await server.app.inject({ url: '/channels/nope/fleet', headers: auth(server.tokens.reader) }), 404, 'CHANNEL_NOT_FOUND')
  })

  t.test(`${driver}: /metrics counts deployments per channel and version, stale per channel, and flush batches`, async (t) => {
    const { server } = await fleet(t, driver)
    const { body } = await server.app.inject({ url: '/metrics' })
    t.match(body, /chartcast_deployments\{channel="stable",version="1\.0\.0"\} 2\n/)
    t.match(body, /chartcast_deployments\{channel="stable",version="unknown"\} 1\n/)
    t.match(body, /chartcast_deployments\{channel="beta",version="unknown"\} 1\n/)
    t.match(body, /chartcast_deployments_stale\{channel="stable"\} 2\n/)
    t.match(body, /chartcast_deployments_stale\{channel="beta"\} 0\n/)
    t.match(body, /chartcast_fleet_flush_batches_total\{result="ok"\} 1\n/, 'the one flush was one batch')
    t.match(body, /chartcast_fleet_flush_batch_duration_seconds_count 1\n/)
  })

  t.test(`${driver}: the fleet endpoints need a publisher token`, async (t) => {
    const { server } = await fleet(t, driver)
    for (const url of ['/deployments', '/deployments/d1', '/channels/stable/fleet']) {
      assertProblem(t, await server.app.inject({ url }), 401, 'UNAUTHORIZED')
      const license = await server.license({ channels: ['*'] })
      assertProblem(t, await server.app.inject({ url, headers: auth(license) }), 401, 'UNAUTHORIZED')
    }
  })
}
