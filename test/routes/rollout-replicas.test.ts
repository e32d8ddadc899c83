/**
 * Rollouts across two replicas on one database, on both drivers: every deployment gets the same
 * answer from either (the cohort is the documented bucket, the same everywhere), and failure
 * reports sent to one replica pause the rollout for both, once, as actor `system`.
 */
import t, { type Test } from 'tap'
import { bucket } from '../../src/domain/rollout.js'
import { testDrivers, type TestServer } from '../helpers/server.js'
import { twoReplicas } from '../helpers/replicas.js'
import { auth } from '../helpers/problem.js'

const H = 3_600_000
const T0 = Date.UTC(2026, 11, 1, 9, 0, 0)
const STEPS = [{ percent: 1, after: '0s' }, { percent: 10, after: '1h' }, { percent: 50, after: '6h' }, { percent: 100, after: '24h' }]
const QUIET = { CHECKIN_FLUSH_INTERVAL: '1h' }
/** How long a replica may take to hear a change notice here; a bound, not a measurement. */
const NOTICE_BOUND_MS = 10_000

async function pull (s: TestServer, license: string, applied?: string) {
  return await s.app.inject({ url: '/channels/stable/spec', headers: { ...auth(license), ...(applied !== undefined && { 'chartcast-applied': applied }) } })
}

/** Waits until `b` serves the channel at the revision `a` serves (the change notice arrived). */
async function sameRevision (t: Test, a: TestServer, b: TestServer, license: string): Promise<void> {
  const target = (await pull(a, license)).headers['chartcast-revision']
  const deadline = Date.now() + NOTICE_BOUND_MS
  while ((await pull(b, license)).headers['chartcast-revision'] !== target) {
    if (Date.now() > deadline) throw new Error(`replica B never reached revision ${String(target)}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.pass(`both replicas serve revision ${String(target)}`)
}

async function setUp (t: Test, driver: 'pglite' | 'postgres', env: Record<string, string> = QUIET) {
  const clock = { now: T0 }
  const { a, b } = await twoReplicas(t, driver, { env, now: () => clock.now })
  t.equal((await a.putChannel('stable')).statusCode, 201)
  for (const v of ['1.0.0', '1.1.0']) t.equal((await a.publish(v)).statusCode, 201)
  t.equal((await a.promote('stable', '1.0.0')).statusCode, 201)
  const probe = await a.license({ sub: 'probe', expiresIn: 30 * 86_400 })
  return { a, b, clock, probe }
}

async function promoteRollout (s: TestServer, autoPause?: unknown) {
  return await s.app.inject({
    method: 'POST',
    url: '/channels/stable/releases',
    headers: auth(s.tokens.publisher),
    payload: { version: '1.1.0', rollout: { steps: STEPS, ...(autoPause !== undefined && { autoPause }) } }
  })
}

async function report (s: TestServer, license: string, outcome: 'applied' | 'failed') {
  const res = await s.app.inject({ method: 'POST', url: '/channels/stable/reports', headers: auth(license), payload: { version: '1.1.0', outcome, ...(outcome === 'failed' && { detail: 'helm: timed out' }) } })
  if (res.statusCode !== 202) throw new Error(`report answered ${res.statusCode}: ${res.body}`)
}

/** What the flusher does on its tick: write, then evaluate the noted rollouts. */
async function flush (s: TestServer): Promise<void> {
  await s.app.checkins.flush()
  await s.app.autoPauser.evaluate()
}

async function rolloutOn (s: TestServer) {
  const res = await s.app.inject({ url: '/channels/stable/rollouts', headers: auth(s.tokens.reader) })
  return (res.json() as Array<Record<string, unknown>>)[0]
}

async function pauses (s: TestServer) {
  const entries = (await s.app.inject({ url: '/audit', headers: auth(s.tokens.admin) })).json().entries as Array<{ action: string, actor: string, detail: Record<string, unknown> }>
  return entries.filter((e) => e.action === 'rollout.pause')
}

for (const driver of testDrivers()) {
  t.test(`${driver}: two replicas give every deployment the same answer, the one its bucket says`, async (t) => {
    const { a, b, clock, probe } = await setUp(t, driver)
    t.equal((await promoteRollout(a)).statusCode, 201)
    await sameRevision(t, a, b, probe)
    const subs = Array.from({ length: 120 }, (_, i) => `deployment-${i}`)
    const licenses = await Promise.all(subs.map(async (sub) => await a.license({ sub, expiresIn: 30 * 86_400 })))
    for (const [at, percent] of [[T0, 1], [T0 + H, 10], [T0 + 6 * H, 50], [T0 + 24 * H, 100]] as const) {
      clock.now = at
      const mismatches: string[] = []
      let inRollout = 0
      for (const [i, sub] of subs.entries()) {
        const [fromA, fromB] = [(await pull(a, licenses[i]!)).json().version, (await pull(b, licenses[i]!)).json().version]
        const expected = percent === 100 || bucket('stable', sub) < percent / 100 ? '1.1.0' : '1.0.0'
        if (fromA !== fromB || fromA !== expected) mismatches.push(`${sub}: A ${String(fromA)}, B ${String(fromB)}, bucket says ${expected}`)
        if (fromA === '1.1.0') inRollout++
      }
      t.same(mismatches, [], `at ${percent}%: A and B agree with the bucket for all 120 (${inRollout} in the rollout)`)
    }
  })

  t.test(`${driver}: failure reports sent to replica B pause the rollout for A too, as system, naming the numbers`, async (t) => {
    const { a, b, clock, probe } = await setUp(t, driver)
    t.equal((await promoteRollout(a, { maxFailures: 3 })).statusCode, 201)
    await sameRevision(t, a, b, probe)
    clock.now = T0 + H
    // wariness 0: in the rollout; each pulls 1.1.0 from A and reports to B.
    const movers = await Promise.all([1, 2, 3, 4].map(async (i) => await a.license({ sub: `mover-${i}`, expiresIn: 30 * 86_400, extra: { wariness: 0 } })))
    for (const license of movers) t.equal((await pull(a, license)).json().version, '1.1.0')

    await report(b, movers[0]!, 'failed')
    await report(b, movers[1]!, 'failed')
    await report(b, movers[2]!, 'applied')
    await flush(b)
    t.match(await rolloutOn(a), { state: 'rolling', reports: { applied: 1, failed: 2 } }, 'two failures: below maxFailures 3')

    // mover-3 first failed, then applied (written in one flush): its latest report counts, not its first.
    await report(b, movers[3]!, 'failed')
    await report(b, movers[3]!, 'applied')
    await flush(b)
    t.match(await rolloutOn(a), { state: 'rolling', reports: { applied: 2, failed: 2 } })

    await report(b, movers[2]!, 'failed')
    await flush(b)
    t.match(await rolloutOn(a), { state: 'paused', pausedReason: '3 of 4 deployments failed to apply 1.1.0', reports: { applied: 1, failed: 3 } })
    t.match(await pauses(a), [{ actor: 'system', detail: { version: '1.1.0', reason: '3 of 4 deployments failed to apply 1.1.0', automatic: true, applied: 1, failed: 3 } }])

    await sameRevision(t, b, a, probe)
    const newcomer = await a.license({ sub: 'newcomer', expiresIn: 30 * 86_400, extra: { wariness: 0 } })
    t.equal((await pull(a, newcomer)).json().version, '1.0.0', 'A admits nobody new')
    t.equal((await pull(a, movers[0]!, '1.1.0')).json().version, '1.1.0', 'A keeps those who run it')
  })

  t.test(`${driver}: a resumed rollout counts only the reports after the resume: the failures that paused it do not pause it again`, async (t) => {
    const { a, b, clock, probe } = await setUp(t, driver)
    t.equal((await promoteRollout(a, { maxFailures: 3 })).statusCode, 201)
    await sameRevision(t, a, b, probe)
    clock.now = T0 + H
    const movers = await Promise.all([1, 2, 3, 4].map(async (i) => await a.license({ sub: `mover-${i}`, expiresIn: 30 * 86_400, extra: { wariness: 0 } })))
    for (const license of movers.slice(0, 3)) {
      t.equal((await pull(a, license)).json().version, '1.1.0')
      await report(b, license, 'failed')
    }
    await flush(b)
    t.match(await rolloutOn(a), { state: 'paused', reports: { applied: 0, failed: 3 } })

    clock.now = T0 + 2 * H
    const resumed = await a.app.inject({ method: 'POST', url: '/channels/stable/rollouts/1.1.0/resume', headers: auth(a.tokens.publisher) })
    t.equal(resumed.statusCode, 200, resumed.body)
    t.match(resumed.json(), { state: 'rolling', reports: { applied: 0, failed: 0 } }, 'the count starts again at the resume')

    // Any report makes the flusher evaluate the rollout; the old failures must not weigh in.
    clock.now = T0 + 3 * H
    t.equal((await pull(a, movers[3]!)).json().version, '1.1.0')
    await report(b, movers[3]!, 'applied')
    await flush(b)
    t.match(await rolloutOn(a), { state: 'rolling', reports: { applied: 1, failed: 0 } }, 'one applied report after the resume, and the rollout rolls on')

    // Failures after the resume count as before.
    for (const license of movers.slice(0, 3)) await report(b, license, 'failed')
    await flush(b)
    t.match(await rolloutOn(a), { state: 'paused', pausedReason: '3 of 4 deployments failed to apply 1.1.0', reports: { applied: 1, failed: 3 } })
    t.equal((await pauses(a)).length, 2, 'paused twice, each time by fresh failures')
  })

  t.test(`${driver}: the rate line pauses too; both replicas evaluating at once pause once`, async (t) => {
    const { a, b, clock, probe } = await setUp(t, driver)
    t.equal((await promoteRollout(a, { maxFailures: 100, minReports: 4, maxFailureRate: 0.5 })).statusCode, 201)
    await sameRevision(t, a, b, probe)
    clock.now = T0 + H
    const licenses = await Promise.all([1, 2, 3, 4].map(async (i) => await a.license({ sub: `d-${i}`, expiresIn: 30 * 86_400, extra: { wariness: 0 } })))
    await report(a, licenses[0]!, 'applied')
    await report(b, licenses[1]!, 'applied')
    await report(a, licenses[2]!, 'failed')
    await report(b, licenses[3]!, 'failed')
    await Promise.all([a.app.checkins.flush(), b.app.checkins.flush()])
    await Promise.all([a.app.autoPauser.evaluate(), b.app.autoPauser.evaluate()])
    t.match(await rolloutOn(b), { state: 'paused', pausedReason: '2 of 4 deployments failed to apply 1.1.0' })
    t.equal((await pauses(a)).length, 1, 'one pause, one audit row')
  })

  t.test(`${driver}: the flusher pauses by itself within 10 s of the crossing report`, async (t) => {
    const { a, b, probe } = await setUp(t, driver, { CHECKIN_FLUSH_INTERVAL: '100ms' })
    t.equal((await promoteRollout(a, { maxFailures: 1 })).statusCode, 201)
    await sameRevision(t, a, b, probe)
    const license = await a.license({ sub: 'first', expiresIn: 30 * 86_400, extra: { wariness: 0 } })
    await report(b, license, 'failed')
    const deadline = Date.now() + 10_000
    while ((await rolloutOn(a))?.state !== 'paused' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
    t.match(await rolloutOn(a), { state: 'paused', pausedReason: '1 of 1 deployments failed to apply 1.1.0' })
  })
}
