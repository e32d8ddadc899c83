/**
 * Channel freezes through the API, on both databases: promotions refused with 423 while frozen,
 * rollout steps held, withdrawals and pauses still open, the freeze ending at `until` by itself.
 */
import t, { type Test } from 'tap'
import { channelFreezes, channelReleases } from '../../src/db/schema.js'
import { buildTestServer, testDrivers, type TestServer } from '../helpers/server.js'
import { assertProblem, auth } from '../helpers/problem.js'

const H = 3_600_000
const T0 = Date.UTC(2026, 11, 1, 9, 0, 0)
const STEPS = [{ percent: 1, after: '0s' }, { percent: 10, after: '1h' }, { percent: 100, after: '24h' }]
const iso = (ms: number): string => new Date(ms).toISOString()

async function setUp (t: Test, driver: 'pglite' | 'postgres') {
  const clock = { now: T0 }
  const server = await buildTestServer(t, { driver, env: { CHECKIN_FLUSH_INTERVAL: '1h' }, now: () => clock.now })
  t.equal((await server.putChannel('stable')).statusCode, 201)
  for (const v of ['1.0.0', '1.1.0', '1.2.0']) t.equal((await server.publish(v)).statusCode, 201)
  t.equal((await server.promote('stable', '1.0.0')).statusCode, 201)
  return { server, clock }
}

async function freeze (s: TestServer, body: unknown) {
  return await s.app.inject({ method: 'POST', url: '/channels/stable/freeze', headers: auth(s.tokens.publisher), payload: body as Record<string, unknown> })
}

async function unfreeze (s: TestServer, query = '') {
  return await s.app.inject({ method: 'DELETE', url: `/channels/stable/freeze${query}`, headers: auth(s.tokens.publisher) })
}

async function channelFreeze (s: TestServer): Promise<unknown> {
  return (await s.app.inject({ url: '/channels/stable', headers: auth(s.tokens.reader) })).json().freeze
}

async function promote (s: TestServer, version: string, rollout?: unknown) {
  return await s.app.inject({ method: 'POST', url: '/channels/stable/releases', headers: auth(s.tokens.publisher), payload: { version, ...(rollout !== undefined && { rollout }) } })
}

async function percent (s: TestServer): Promise<unknown> {
  return ((await s.app.inject({ url: '/channels/stable/rollouts', headers: auth(s.tokens.reader) })).json() as Array<{ percent: number }>)[0]?.percent
}

async function audit (s: TestServer): Promise<Array<{ action: string, actor: string, detail: Record<string, unknown> }>> {
  return (await s.app.inject({ url: '/audit', headers: auth(s.tokens.admin) })).json().entries
}

for (const driver of testDrivers()) {
  t.test(`${driver}: a frozen channel refuses promotions with 423 CHANNEL_FROZEN naming the reason and until`, async (t) => {
    const { server } = await setUp(t, driver)
    const res = await freeze(server, { reason: 'year-end change freeze', until: iso(T0 + 48 * H) })
    t.equal(res.statusCode, 201, res.body)
    const shown = { reason: 'year-end change freeze', until: iso(T0 + 48 * H), at: iso(T0), by: 'rita-release' }
    t.same(res.json(), shown)
    t.same(await channelFreeze(server), shown)
    t.match((await audit(server))[0], { action: 'channel.freeze', actor: 'rita-release', detail: { reason: 'year-end change freeze', until: iso(T0 + 48 * H) } })

    const refused = assertProblem(t, await promote(server, '1.1.0'), 423, 'CHANNEL_FROZEN')
    t.match(refused.detail, /year-end change freeze/)
    t.match(refused.detail, new RegExp(iso(T0 + 48 * H).replace(/[.]/g, '\\.')))
    assertProblem(t, await promote(server, '1.1.0', { steps: STEPS }), 423, 'CHANNEL_FROZEN')
    t.equal((await server.database.db.select().from(channelReleases)).length, 1, 'nothing promoted')

    // A second freeze replaces the first: the latest reason and until.
    t.equal((await freeze(server, { reason: 'open-ended' })).statusCode, 201)
    t.match(await channelFreeze(server), { reason: 'open-ended', until: null })
    t.equal((await unfreeze(server, '?reason=shipped')).statusCode, 204)
    t.equal(await channelFreeze(server), null)
    t.match((await audit(server))[0], { action: 'channel.unfreeze', detail: { reason: 'shipped' } })
    t.equal((await promote(server, '1.1.0')).statusCode, 201, 'promotions open again')

    const before = (await audit(server)).length
    t.equal((await unfreeze(server)).statusCode, 204, 'unfreezing a channel that is not frozen is a no-op')
    t.equal((await audit(server)).length, before, 'and writes no audit row')
  })

  t.test(`${driver}: a freeze ends at until by itself`, async (t) => {
    const { server, clock } = await setUp(t, driver)
    t.equal((await freeze(server, { reason: 'release night', until: iso(T0 + 2 * H) })).statusCode, 201)
    clock.now = T0 + 2 * H - 1
    assertProblem(t, await promote(server, '1.1.0'), 423, 'CHANNEL_FROZEN')
    clock.now = T0 + 2 * H
    t.equal(await channelFreeze(server), null)
    t.equal((await promote(server, '1.1.0')).statusCode, 201)
  })

  t.test(`${driver}: rollout steps do not advance while frozen; withdrawals and pauses still work`, async (t) => {
    const { server, clock } = await setUp(t, driver)
    t.equal((await promote(server, '1.1.0', { steps: STEPS })).statusCode, 201)
    t.equal((await promote(server, '1.2.0', { steps: STEPS })).statusCode, 201)
    clock.now = T0 + H / 2
    t.equal((await freeze(server, { reason: 'incident', until: iso(T0 + 2.5 * H) })).statusCode, 201)
    clock.now = T0 + 2 * H
    t.equal(await percent(server), 1, 'the 1h step waits while frozen')
    const rollouts = (await server.app.inject({ url: '/channels/stable/rollouts', headers: auth(server.tokens.reader) })).json()
    t.equal(rollouts[0].nextStepAt, iso(T0 + 3 * H), 'projected past the freeze: 30 min before it, 30 min after')

    const paused = await server.app.inject({ method: 'POST', url: '/channels/stable/rollouts/1.1.0/pause', headers: auth(server.tokens.publisher), payload: { reason: 'emergency stop' } })
    t.equal(paused.statusCode, 200, paused.body)
    const withdrawn = await server.app.inject({ method: 'DELETE', url: '/channels/stable/releases/1.2.0?reason=bad', headers: auth(server.tokens.publisher) })
    t.equal(withdrawn.statusCode, 204)
    const license = await server.license({ sub: 'w', expiresIn: 30 * 86_400, extra: { wariness: 0 } })
    t.equal((await server.app.inject({ url: '/channels/stable/spec', headers: auth(license) })).json().version, '1.0.0', '1.2.0 withdrawn, 1.1.0 paused')

    // Resumed, the rollout would admit its cohort again while frozen: that waits for the freeze's end.
    assertProblem(t, await server.app.inject({ method: 'POST', url: '/channels/stable/rollouts/1.1.0/resume', headers: auth(server.tokens.publisher) }), 423, 'CHANNEL_FROZEN')
    clock.now = T0 + 2.5 * H
    t.equal((await server.app.inject({ method: 'POST', url: '/channels/stable/rollouts/1.1.0/resume', headers: auth(server.tokens.publisher) })).statusCode, 200)
    clock.now = T0 + 3 * H
    // Counted: 0:00-0:30 (30 min) and 2:30-3:00 (30 min): 1 h; the pause 2:00-2:30 lay inside the freeze.
    t.equal(await percent(server), 10, 'counted time resumes after until')
  })

  t.test(`${driver}: a freeze refuses every route that changes what the channel serves with 423 CHANNEL_FROZEN, and stores nothing`, async (t) => {
    const { server } = await setUp(t, driver)
    const put = async (body: Record<string, unknown>) => await server.app.inject({ method: 'PUT', url: '/channels/stable', headers: auth(server.tokens.admin), payload: body })
    t.equal((await put({ values: { replicas: 2 }, accepts: '>=1.0.0', pollInterval: '5m' })).statusCode, 200)
    t.equal((await promote(server, '1.1.0', { steps: STEPS })).statusCode, 201)
    t.equal((await promote(server, '1.2.0', { steps: STEPS })).statusCode, 201)
    t.equal((await server.app.inject({ method: 'POST', url: '/channels/stable/rollouts/1.2.0/pause', headers: auth(server.tokens.publisher), payload: { reason: 'look first' } })).statusCode, 200)
    const license = await server.license({ sub: 'early', expiresIn: 30 * 86_400, extra: { wariness: 0 } })
    const served = async (): Promise<unknown> => (await server.app.inject({ url: '/channels/stable/spec', headers: auth(license) })).body
    const channel = async (): Promise<unknown> => (await server.app.inject({ url: '/channels/stable', headers: auth(server.tokens.reader) })).json()
    t.equal((await freeze(server, { reason: 'quarter close' })).statusCode, 201)
    const servedBefore = await served()
    const channelBefore = await channel()
    const auditBefore = (await audit(server)).length

    const refusals: Array<[string, Promise<import('fastify').LightMyRequestResponse>]> = [
      ['PUT values', put({ values: { replicas: 3 } })],
      ['PUT accepts', put({ accepts: '>=1.1.0' })],
      ['PUT pollInterval', put({ pollInterval: '1m' })],
      ['PATCH required', server.app.inject({ method: 'PATCH', url: '/channels/stable/releases/1.0.0', headers: auth(server.tokens.publisher), payload: { required: true } })],
      ['resume', server.app.inject({ method: 'POST', url: '/channels/stable/rollouts/1.2.0/resume', headers: auth(server.tokens.publisher) })],
      ['complete a rolling rollout', server.app.inject({ method: 'POST', url: '/channels/stable/rollouts/1.1.0/complete', headers: auth(server.tokens.publisher) })],
      ['complete a paused rollout', server.app.inject({ method: 'POST', url: '/channels/stable/rollouts/1.2.0/complete', headers: auth(server.tokens.publisher) })]
    ]
    for (const [what, pending] of refusals) {
      const problem = assertProblem(t, await pending, 423, 'CHANNEL_FROZEN')
      t.match(problem.detail, /quarter close/, what)
    }
    t.same(await channel(), channelBefore, 'settings, required marks and rollouts are as they were')
    t.equal(await served(), servedBefore, 'the answer is the same')
    t.equal((await audit(server)).length, auditBefore, 'no audit row for a refusal')

    // What changes no answer, or stops a release, stays open; each writes its audit row.
    t.equal((await put({ description: 'the stable channel' })).statusCode, 200, 'the description alone')
    t.equal((await put({ values: { replicas: 2 } })).statusCode, 200, 'a PUT that changes nothing')
    t.equal((await server.app.inject({ method: 'PATCH', url: '/channels/stable/releases/1.0.0', headers: auth(server.tokens.publisher), payload: { required: false } })).statusCode, 200, 'a required mark as it is')
    t.equal((await server.app.inject({ method: 'POST', url: '/channels/stable/rollouts/1.1.0/pause', headers: auth(server.tokens.publisher), payload: { reason: 'stop' } })).statusCode, 200)
    t.equal((await server.app.inject({ method: 'DELETE', url: '/channels/stable/releases/1.1.0?reason=bad', headers: auth(server.tokens.publisher) })).statusCode, 204)
    t.same((await audit(server)).slice(0, 3).map((e) => e.action), ['channel.withdraw', 'rollout.pause', 'channel.upsert'])

    t.equal((await unfreeze(server)).statusCode, 204)
    t.equal((await put({ values: { replicas: 3 } })).statusCode, 200, 'open again after the unfreeze')
    t.equal((await server.app.inject({ method: 'PATCH', url: '/channels/stable/releases/1.0.0', headers: auth(server.tokens.publisher), payload: { required: true } })).statusCode, 200)
    t.equal((await server.app.inject({ method: 'POST', url: '/channels/stable/rollouts/1.2.0/resume', headers: auth(server.tokens.publisher) })).statusCode, 200)
    t.equal((await server.app.inject({ method: 'POST', url: '/channels/stable/rollouts/1.2.0/complete', headers: auth(server.tokens.publisher) })).statusCode, 200)
  })

  t.test(`${driver}: bad freezes are 400 VALIDATION_FAILED and nothing is stored`, async (t) => {
    const { server } = await setUp(t, driver)
    const before = (await audit(server)).length
    for (const [what, body] of [
      ['no reason', { until: iso(T0 + H) }],
      ['empty reason', { reason: '' }],
      ['until in the past', { reason: 'x', until: iso(T0 - 1) }],
      ['until now', { reason: 'x', until: iso(T0) }],
      ['until without a zone', { reason: 'x', until: '2026-12-02T09:00:00' }],
      ['until not a date', { reason: 'x', until: 'next week' }],
      ['unknown key', { reason: 'x', scope: 'all' }]
    ] as const) {
      assertProblem(t, await freeze(server, body), 400, 'VALIDATION_FAILED')
      t.comment(what)
    }
    t.equal((await server.database.db.select().from(channelFreezes)).length, 0)
    t.equal((await audit(server)).length, before)
    const missing = await server.app.inject({ method: 'POST', url: '/channels/nope/freeze', headers: auth(server.tokens.publisher), payload: { reason: 'x' } })
    assertProblem(t, missing, 404, 'CHANNEL_NOT_FOUND')
    const reader = await server.app.inject({ method: 'POST', url: '/channels/stable/freeze', headers: auth(server.tokens.reader), payload: { reason: 'x' } })
    assertProblem(t, reader, 403, 'FORBIDDEN')
  })
}
