/**
 * POST /channels/:name/reports: licensed like the spec pull (same codes, same rate window),
 * bad input refused with nothing stored, good reports written by the flush into the append-only
 * reports table and onto the deployment's record.
 */
import t, { type Test } from 'tap'
import { eq, sql } from 'drizzle-orm'
import { deployments, reports } from '../../src/db/schema.js'
import { buildTestServer, testDrivers, type TestServer } from '../helpers/server.js'
import { assertProblem, auth } from '../helpers/problem.js'

const QUIET = { CHECKIN_FLUSH_INTERVAL: '1h' }
const APPEND_ONLY = { cause: { code: '23001', message: /append-only/ } }

async function setUp (t: Test, server: TestServer): Promise<void> {
  t.equal((await server.putChannel('stable')).statusCode, 201)
  t.equal((await server.publish('1.0.0')).statusCode, 201)
  t.equal((await server.promote('stable', '1.0.0')).statusCode, 201)
}

async function report (server: TestServer, license: string, body: unknown, channel = 'stable') {
  return await server.app.inject({ method: 'POST', url: `/channels/${channel}/reports`, headers: auth(license), payload: body as Record<string, unknown> })
}

async function storedReports (server: TestServer) {
  return await server.database.db.select().from(reports).orderBy(reports.id)
}

for (const driver of testDrivers()) {
  t.test(`${driver}: a report is accepted (202), written by the flush, and is the deployment's latest`, async (t) => {
    const server = await buildTestServer(t, { driver, env: QUIET })
    await setUp(t, server)
    const license = await server.license({ sub: 'cluster-1', channels: ['stable'] })
    t.equal((await server.app.inject({ url: '/channels/stable/spec', headers: { ...auth(license), 'chartcast-applied': '0.9.0' } })).statusCode, 200)
    const failed = await report(server, license, { version: '1.0.0', outcome: 'failed', detail: 'helm: timed out waiting for the condition' })
    t.equal(failed.statusCode, 202)
    t.same(failed.json(), { accepted: true })
    t.equal((await storedReports(server)).length, 0, 'not written before the flush')
    await server.app.checkins.flush()
    t.match(await storedReports(server), [{ deploymentId: 'cluster-1', channel: 'stable', version: '1.0.0', outcome: 'failed', detail: 'helm: timed out waiting for the condition', digest: null }])
    const [row] = await server.database.db.select().from(deployments).where(eq(deployments.id, 'cluster-1'))
    t.match(row, { appliedVersion: '0.9.0', servedVersion: '1.0.0', lastReportVersion: '1.0.0', lastReportOutcome: 'failed' })

    t.equal((await report(server, license, { version: '1.0.0', outcome: 'applied', digest: 'sha256:abc' })).statusCode, 202)
    await server.app.checkins.flush()
    t.equal((await storedReports(server)).length, 2, 'reports are appended, not replaced')
    const [after] = await server.database.db.select().from(deployments).where(eq(deployments.id, 'cluster-1'))
    t.match(after, { lastReportOutcome: 'applied', lastReportDetail: null })
    const metrics = await server.app.inject({ url: '/metrics' })
    t.match(metrics.body, /chartcast_reports_total\{channel="stable",outcome="failed"\} 1/)
    t.match(metrics.body, /chartcast_reports_total\{channel="stable",outcome="applied"\} 1/)
  })

  t.test(`${driver}: bad reports are 400 VALIDATION_FAILED and nothing is stored`, async (t) => {
    const server = await buildTestServer(t, { driver, env: QUIET })
    await setUp(t, server)
    const license = await server.license({ channels: ['stable'] })
    const bad: Array<[string, unknown]> = [
      ['not semver', { version: 'v1.0', outcome: 'applied' }],
      ['build metadata', { version: '1.0.0+build.1', outcome: 'applied' }],
      ['unknown outcome', { version: '1.0.0', outcome: 'succeeded' }],
      ['no outcome', { version: '1.0.0' }],
      ['detail too long', { version: '1.0.0', outcome: 'failed', detail: 'x'.repeat(4097) }],
      ['unknown key', { version: '1.0.0', outcome: 'applied', values: { password: 'x' } }],
      ['NUL in detail', { version: '1.0.0', outcome: 'failed', detail: 'a\u0000b' }]
    ]
    for (const [what, body] of bad) {
      const res = await report(server, license, body)
      t.equal(res.statusCode, 400, what)
      t.equal((res.json() as { code: string }).code, 'VALIDATION_FAILED', what)
    }
    t.equal((await report(server, license, { version: '1.0.0', outcome: 'failed', detail: 'x'.repeat(4096) })).statusCode, 202, '4,096 characters are fine')
    t.equal(server.app.checkins.pendingReportCount, 1, 'only the good one is held')
    await server.app.checkins.flush()
    t.equal((await storedReports(server)).length, 1)
  })

  t.test(`${driver}: unknown channel 404; refused licenses get the spec endpoint's codes`, async (t) => {
    const server = await buildTestServer(t, { driver, env: QUIET })
    await setUp(t, server)
    const body = { version: '1.0.0', outcome: 'applied' }
    const everything = await server.license({ channels: ['*'] })
    assertProblem(t, await report(server, everything, body, 'nope'), 404, 'CHANNEL_NOT_FOUND')
    assertProblem(t, await server.app.inject({ method: 'POST', url: '/channels/stable/reports', payload: body }), 401, 'LICENSE_MISSING')
    assertProblem(t, await report(server, 'not.a.jwt', body), 401, 'LICENSE_INVALID')
    assertProblem(t, await report(server, await server.license({ channels: ['beta'] }), body), 403, 'CHANNEL_NOT_ENTITLED')
    assertProblem(t, await report(server, await server.license({ expiresIn: -10 }), body), 401, 'LICENSE_EXPIRED')
    const revoked = await server.license({ sub: 'gone', channels: ['stable'] })
    t.equal((await server.app.inject({ method: 'POST', url: '/licenses/revocations', headers: auth(server.tokens.admin), payload: { sub: 'gone', reason: 'test' } })).statusCode, 201)
    assertProblem(t, await report(server, revoked, body), 403, 'LICENSE_REVOKED')
    // A refused license is refused before its body is looked at.
    assertProblem(t, await report(server, await server.license({ channels: ['beta'] }), { version: 'bad' }), 403, 'CHANNEL_NOT_ENTITLED')
    t.equal(server.app.checkins.pendingReportCount, 0)
  })

  t.test(`${driver}: reports and spec pulls share the license's rate window`, async (t) => {
    const server = await buildTestServer(t, { driver, env: { ...QUIET, RATE_LIMIT_SPEC: '2' } })
    await setUp(t, server)
    const license = await server.license({ channels: ['stable'] })
    t.equal((await server.app.inject({ url: '/channels/stable/spec', headers: auth(license) })).statusCode, 200)
    t.equal((await report(server, license, { version: '1.0.0', outcome: 'applied' })).statusCode, 202)
    const limited = await report(server, license, { version: '1.0.0', outcome: 'applied' })
    assertProblem(t, limited, 429, 'RATE_LIMITED')
    t.ok(Number(limited.headers['retry-after']) > 0)
    assertProblem(t, await server.app.inject({ url: '/channels/stable/spec', headers: auth(license) }), 429, 'RATE_LIMITED')
    t.equal(server.app.checkins.pendingReportCount, 1)
  })

  t.test(`${driver}: the reports table refuses changes; only reports past the retention can be pruned`, async (t) => {
    let now = Date.now() - 31 * 86_400_000
    const server = await buildTestServer(t, { driver, env: QUIET, now: () => now })
    await setUp(t, server)
    const license = await server.license({ channels: ['stable'] }, Math.floor(now / 1000))
    t.equal((await report(server, license, { version: '1.0.0', outcome: 'applied' })).statusCode, 202)
    await server.app.checkins.flush()
    now = Date.now()
    const fresh = await server.license({ channels: ['stable'] })
    t.equal((await report(server, fresh, { version: '1.0.0', outcome: 'skipped', detail: 'outside the maintenance window' })).statusCode, 202)
    await server.app.checkins.flush()
    const { db } = server.database
    await t.rejects(db.update(reports).set({ outcome: 'failed' }), APPEND_ONLY)
    await t.rejects(db.delete(reports), APPEND_ONLY, 'a DELETE without the pruning setting')
    await t.rejects(db.execute(sql`TRUNCATE reports`), APPEND_ONLY)
    t.equal(await server.app.fleetStore.pruneReports(30 * 86_400, now), 1)
    t.same((await storedReports(server)).map((r) => r.outcome), ['skipped'], 'the month-old report is gone, the fresh one stays')
    // Even a pruning transaction that declares a tiny retention cannot delete a fresh report.
    await t.rejects(server.app.fleetStore.pruneReports(1, now + 2000), APPEND_ONLY)
    t.equal((await storedReports(server)).length, 1)
  })
}
