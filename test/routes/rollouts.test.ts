/**
 * Staged rollouts through the API, on both databases: promotion with a rollout, cohorts on the
 * spec path as the (test-moved) clock advances, pause/resume/complete with their codes and
 * audit rows, withdrawal ending a rollout, bad plans refused with nothing stored.
 */
import t, { type Test } from 'tap'
import { eq } from 'drizzle-orm'
import { channelReleases, rollouts } from '../../src/db/schema.js'
import { buildTestServer, testDrivers, type TestServer } from '../helpers/server.js'
import { assertProblem, auth } from '../helpers/problem.js'

const H = 3_600_000
const T0 = Date.UTC(2026, 11, 1, 9, 0, 0)
const STEPS = [{ percent: 1, after: '0s' }, { percent: 10, after: '1h' }, { percent: 100, after: '24h' }]
const QUIET = { CHECKIN_FLUSH_INTERVAL: '1h' }

interface Clocked { server: TestServer, clock: { now: number } }

async function setUp (t: Test, driver: 'pglite' | 'postgres'): Promise<Clocked> {
  const clock = { now: T0 }
  const server = await buildTestServer(t, { driver, env: QUIET, now: () => clock.now })
  t.equal((await server.putChannel('stable')).statusCode, 201)
  for (const v of ['1.0.0', '1.1.0', '1.2.0']) t.equal((await server.publish(v)).statusCode, 201)
  t.equal((await server.promote('stable', '1.0.0')).statusCode, 201)
  return { server, clock }
}

async function promote (s: TestServer, version: string, rollout?: unknown) {
  return await s.app.inject({ method: 'POST', url: '/channels/stable/releases', headers: auth(s.tokens.publisher), payload: { version, ...(rollout !== undefined && { rollout }) } })
}

async function listRollouts (s: TestServer) {
  const res = await s.app.inject({ url: '/channels/stable/rollouts', headers: auth(s.tokens.reader) })
  if (res.statusCode !== 200) throw new Error(`GET /channels/stable/rollouts answered ${res.statusCode}: ${res.body}`)
  return res.json() as Array<Record<string, unknown>>
}

async function action (s: TestServer, version: string, verb: 'pause' | 'resume' | 'complete', reason?: string) {
  return await s.app.inject({
    method: 'POST',
    url: `/channels/stable/rollouts/${version}/${verb}`,
    headers: auth(s.tokens.publisher),
    ...(reason !== undefined && { payload: { reason } })
  })
}

/** A license that outlives the moved clock (30 days), with a wariness claim when given. */
async function lic (s: TestServer, sub: string, wariness?: number): Promise<string> {
  return await s.license({ sub, expiresIn: 30 * 86_400, ...(wariness !== undefined && { extra: { wariness } }) })
}

async function served (s: TestServer, license: string, applied?: string): Promise<string> {
  const res = await s.app.inject({ url: '/channels/stable/spec', headers: { ...auth(license), ...(applied !== undefined && { 'chartcast-applied': applied }) } })
  if (res.statusCode !== 200) throw new Error(`spec answered ${res.statusCode}: ${res.body}`)
  return res.json().version as string
}

async function auditActions (s: TestServer): Promise<Array<{ action: string, actor: string, detail: Record<string, unknown> }>> {
  return (await s.app.inject({ url: '/audit', headers: auth(s.tokens.admin) })).json().entries
}

for (const driver of testDrivers()) {
  t.test(`${driver}: a promotion with a rollout starts at its first step; GET /channels/:name/rollouts and /channels/:name show it`, async (t) => {
    const { server } = await setUp(t, driver)
    const res = await promote(server, '1.1.0', { steps: STEPS, autoPause: { maxFailures: 3 } })
    t.equal(res.statusCode, 201, res.body)
    const expected = {
      version: '1.1.0',
      state: 'rolling',
      percent: 1,
      steps: STEPS,
      startedAt: new Date(T0).toISOString(),
      nextStepAt: new Date(T0 + H).toISOString(),
      pausedAt: null,
      pausedReason: null,
      autoPause: { maxFailures: 3, maxFailureRate: 0.05, minReports: 20 },
      reports: { applied: 0, failed: 0 }
    }
    t.same(await listRollouts(server), [expected])
    const channel = (await server.app.inject({ url: '/channels/stable', headers: auth(server.tokens.reader) })).json()
    t.same(channel.rollouts, [expected])
    t.equal(channel.freeze, null)
    t.match((await auditActions(server))[0], { action: 'channel.promote', actor: 'rita-release', detail: { version: '1.1.0', rollout: { steps: STEPS } } })

    // autoPause: null turns it off; a promotion without rollout has none.
    t.equal((await promote(server, '1.2.0', { steps: STEPS, autoPause: null })).statusCode, 201)
    t.same((await listRollouts(server)).map((r) => [r.version, r.autoPause]), [['1.1.0', expected.autoPause], ['1.2.0', null]])
  })

  t.test(`${driver}: bad rollouts are 400 VALIDATION_FAILED and nothing is stored`, async (t) => {
    const { server } = await setUp(t, driver)
    const before = (await auditActions(server)).length
    const bad: Array<[string, unknown]> = [
      ['no steps', { steps: [] }],
      ['first after not 0s', { steps: [{ percent: 10, after: '1h' }, { percent: 100, after: '2h' }] }],
      ['falling percents', { steps: [{ percent: 50, after: '0s' }, { percent: 20, after: '1h' }, { percent: 100, after: '2h' }] }],
      ['last not 100', { steps: [{ percent: 1, after: '0s' }, { percent: 50, after: '1h' }] }],
      ['bad duration', { steps: [{ percent: 1, after: '0s' }, { percent: 100, after: 'tomorrow' }] }],
      ['percent as text', { steps: [{ percent: '1', after: '0s' }, { percent: 100, after: '1h' }] }],
      ['unknown step key', { steps: [{ percent: 100, after: '0s', cohort: 'a' }] }],
      ['unknown autoPause key', { steps: STEPS, autoPause: { maxFailures: 3, failures: 2 } }],
      ['maxFailureRate above 1', { steps: STEPS, autoPause: { maxFailureRate: 2 } }],
      ['maxFailures 0', { steps: STEPS, autoPause: { maxFailures: 0 } }],
      ['rollout not an object', 'slowly']
    ]
    for (const [what, rollout] of bad) {
      const res = await promote(server, '1.1.0', rollout)
      assertProblem(t, res, 400, 'VALIDATION_FAILED')
      t.comment(what)
    }
    t.equal((await server.database.db.select().from(rollouts)).length, 0, 'no rollout row')
    t.same((await server.database.db.select().from(channelReleases).where(eq(channelReleases.version, '1.1.0'))), [], 'not promoted')
    t.equal((await auditActions(server)).length, before, 'no audit row')
  })

  t.test(`${driver}: cohorts follow the steps as time passes; wariness places a deployment; Chartcast-Applied keeps what runs`, async (t) => {
    const { server, clock } = await setUp(t, driver)
    t.equal((await promote(server, '1.1.0', { steps: STEPS })).statusCode, 201)
    const early = await lic(server, 'early', 0.05)
    const first0 = await lic(server, 'first', 0)
    const last = await lic(server, 'careful', 1)
    // bucket('stable', 'cluster-1') = 0.119...: outside 10%, inside 100%.
    const plain = await lic(server, 'cluster-1')
    t.equal(await served(server, first0), '1.1.0', 'wariness 0 is in from 1%')
    t.equal(await served(server, early), '1.0.0', '0.05 is not in 1%')
    t.equal(await served(server, plain), '1.0.0')
    clock.now = T0 + H
    t.equal(await served(server, early), '1.1.0', '0.05 is in 10%')
    t.equal(await served(server, plain), '1.0.0', '0.119 is not in 10%')
    t.equal(await served(server, plain, '1.1.0'), '1.1.0', 'a deployment that runs 1.1.0 keeps it')
    t.equal((await listRollouts(server))[0]?.percent, 10)
    clock.now = T0 + 24 * H
    t.equal(await served(server, plain), '1.1.0')
    t.equal(await served(server, last), '1.1.0', 'wariness 1 goes last, and goes')
    t.match(await listRollouts(server), [{ version: '1.1.0', state: 'complete', percent: 100, nextStepAt: null }])
  })

  t.test(`${driver}: pause, resume and complete: state, codes and audit rows`, async (t) => {
    const { server, clock } = await setUp(t, driver)
    t.equal((await promote(server, '1.1.0', { steps: STEPS })).statusCode, 201)
    const early = await lic(server, 'early', 0.05)
    clock.now = T0 + H / 2
    const paused = await action(server, '1.1.0', 'pause', 'error rate up in EU')
    t.equal(paused.statusCode, 200, paused.body)
    t.match(paused.json(), { version: '1.1.0', state: 'paused', percent: 1, pausedAt: new Date(T0 + H / 2).toISOString(), pausedReason: 'error rate up in EU', nextStepAt: null })
    assertProblem(t, await action(server, '1.1.0', 'pause', 'again'), 409, 'ROLLOUT_STATE')
    assertProblem(t, await action(server, '1.1.0', 'pause'), 400, 'VALIDATION_FAILED')
    clock.now = T0 + 5 * H
    t.equal(await served(server, early), '1.0.0', 'the 10% step does not come while paused')
    t.equal(await served(server, early, '1.1.0'), '1.1.0', 'who runs it keeps it')

    const resumed = await action(server, '1.1.0', 'resume')
    t.equal(resumed.statusCode, 200, resumed.body)
    // Paused 4.5 h: the 1h step is reached at 5:30.
    t.match(resumed.json(), { state: 'rolling', percent: 1, pausedAt: null, pausedReason: null, nextStepAt: new Date(T0 + 5.5 * H).toISOString() })
    assertProblem(t, await action(server, '1.1.0', 'resume'), 409, 'ROLLOUT_STATE')
    clock.now = T0 + 5.5 * H
    t.equal(await served(server, early), '1.1.0')

    const completed = await action(server, '1.1.0', 'complete')
    t.equal(completed.statusCode, 200, completed.body)
    t.match(completed.json(), { state: 'complete', percent: 100, nextStepAt: null })
    t.equal(await served(server, await lic(server, 'x', 1)), '1.1.0', 'everyone')
    assertProblem(t, await action(server, '1.1.0', 'complete'), 409, 'ROLLOUT_STATE')
    assertProblem(t, await action(server, '1.1.0', 'pause', 'late'), 409, 'ROLLOUT_STATE')

    const audit = await auditActions(server)
    t.match(audit.slice(0, 3), [
      { action: 'rollout.complete', actor: 'rita-release', detail: { version: '1.1.0' } },
      { action: 'rollout.resume', actor: 'rita-release', detail: { version: '1.1.0' } },
      { action: 'rollout.pause', actor: 'rita-release', detail: { version: '1.1.0', reason: 'error rate up in EU' } }
    ])
  })

  t.test(`${driver}: ROLLOUT_NOT_FOUND for a release without a rollout, one not in the channel, and after a withdrawal`, async (t) => {
    const { server } = await setUp(t, driver)
    assertProblem(t, await action(server, '1.0.0', 'pause', 'x'), 404, 'ROLLOUT_NOT_FOUND')
    assertProblem(t, await action(server, '9.9.9', 'resume'), 404, 'ROLLOUT_NOT_FOUND')
    const missing = await server.app.inject({ method: 'POST', url: '/channels/nope/rollouts/1.0.0/complete', headers: auth(server.tokens.publisher) })
    assertProblem(t, missing, 404, 'CHANNEL_NOT_FOUND')
    assertProblem(t, await server.app.inject({ url: '/channels/nope/rollouts', headers: auth(server.tokens.reader) }), 404, 'CHANNEL_NOT_FOUND')
    assertProblem(t, await server.app.inject({ method: 'POST', url: '/channels/stable/rollouts/1.0.0/pause', headers: auth(server.tokens.reader), payload: { reason: 'x' } }), 403, 'FORBIDDEN')

    t.equal((await promote(server, '1.1.0', { steps: STEPS })).statusCode, 201)
    t.equal((await action(server, '1.1.0', 'pause', 'bad')).statusCode, 200)
    const withdrawn = await server.app.inject({ method: 'DELETE', url: '/channels/stable/releases/1.1.0?reason=broken', headers: auth(server.tokens.publisher) })
    t.equal(withdrawn.statusCode, 204)
    t.same(await listRollouts(server), [], 'the withdrawal ended the rollout')
    assertProblem(t, await action(server, '1.1.0', 'resume'), 404, 'ROLLOUT_NOT_FOUND')
    t.match((await auditActions(server))[0], { action: 'channel.withdraw', detail: { version: '1.1.0', rolloutEnded: true } })

    // Promoted again: a new rollout of its own (or none).
    t.equal((await promote(server, '1.1.0', { steps: [{ percent: 50, after: '0s' }, { percent: 100, after: '1h' }] })).statusCode, 201)
    t.match(await listRollouts(server), [{ version: '1.1.0', state: 'rolling', percent: 50, pausedReason: null }])
  })

  t.test(`${driver}: several rollouts run in one channel, each with its own state`, async (t) => {
    const { server, clock } = await setUp(t, driver)
    t.equal((await promote(server, '1.1.0', { steps: STEPS })).statusCode, 201)
    clock.now = T0 + H
    t.equal((await promote(server, '1.2.0', { steps: STEPS })).statusCode, 201)
    t.equal((await action(server, '1.2.0', 'pause', 'hold on')).statusCode, 200)
    t.match(await listRollouts(server), [{ version: '1.1.0', state: 'rolling', percent: 10 }, { version: '1.2.0', state: 'paused', percent: 1 }])
    const w05 = await lic(server, 'a', 0.05)
    const w0 = await lic(server, 'b', 0)
    t.equal(await served(server, w05), '1.1.0')
    t.equal(await served(server, w0), '1.1.0', 'paused 1.2.0 admits nobody new, 1.1.0 still admits')
    t.equal(await served(server, w0, '1.2.0'), '1.2.0')
  })
}
