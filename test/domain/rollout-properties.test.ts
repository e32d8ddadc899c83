/** Property-based tests (fast-check) of rollout selection. */
import t from 'tap'
import fc from 'fast-check'
import semver from 'semver'
import { selectSpec, type ChannelVersions, type Deployment } from '../../src/domain/select-spec.js'
import { compileRollout, DEFAULT_AUTO_PAUSE, type RolloutRecord } from '../../src/domain/rollout.js'

const H = 3_600_000
const T0 = Date.UTC(2026, 11, 1, 9, 0, 0)
const STEPS = [{ percent: 1, after: '0s' }, { percent: 10, after: '1h' }, { percent: 50, after: '6h' }, { percent: 100, after: '24h' }]

const version = fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 4 })).map(([major, minor]) => `${major}.${minor}.0`)

/** A channel: a few versions, some of them rolling (started at various times), maybe paused. */
const channelArb = fc.uniqueArray(version, { minLength: 1, maxLength: 6 }).chain((versions) => {
  const active = [...versions].sort(semver.rcompare)
  return fc.tuple(
    fc.constant(active),
    fc.array(fc.record({ rolling: fc.boolean(), startedAgo: fc.integer({ min: 0, max: 30 * H }), pausedAgo: fc.option(fc.integer({ min: 0, max: 30 * H })) }), { minLength: active.length, maxLength: active.length })
  )
})

function record (version: string, startedAgo: number, pausedAgo: number | null, now: number): RolloutRecord {
  const paused = pausedAgo !== null && pausedAgo <= startedAgo
  return {
    version, steps: STEPS, autoPause: DEFAULT_AUTO_PAUSE, startedAt: now - startedAgo,
    state: paused ? 'paused' : 'rolling', pauses: paused ? [{ from: now - pausedAgo, to: null }] : [], pausedReason: paused ? 'x' : null
  }
}

function answer (channel: ChannelVersions, deployment: Deployment, now: number): string | null {
  try {
    return selectSpec(channel, deployment, now)
  } catch {
    return null
  }
}

t.test('a pause never changes the answer for a deployment that runs the paused version', async () => {
  fc.assert(fc.property(
    channelArb, fc.nat(), fc.option(fc.double({ min: 0, max: 1, noNaN: true })), fc.string({ minLength: 1, maxLength: 8 }), fc.integer({ min: 0, max: 40 * H }),
    ([active, plans], pick, wariness, sub, later) => {
      const now = T0
      const rolling = active.filter((_, i) => plans[i]!.rolling)
      if (rolling.length === 0) return
      const paused = rolling[pick % rolling.length]!
      const records = new Map(active.flatMap((v, i) => plans[i]!.rolling ? [[v, record(v, plans[i]!.startedAgo, plans[i]!.pausedAgo, now)] as const] : []))
      const build = (rs: Map<string, RolloutRecord>): ChannelVersions => ({
        name: 'stable', active, head: { version: active[0]! }, rollouts: new Map([...rs].map(([v, r]) => [v, compileRollout(r, [])]))
      })
      const before = build(records)
      const pausedRecord = records.get(paused)!
      const pauseAt = now
      const afterPause = build(new Map(records).set(paused, pausedRecord.state === 'paused' ? pausedRecord : { ...pausedRecord, state: 'paused', pauses: [{ from: pauseAt, to: null }], pausedReason: 'by hand' }))
      const license = { sub, exp: 0, channels: ['*'], ...(wariness !== null && { wariness }) }
      const deployment: Deployment = { id: sub, license, channel: 'stable', applied: paused, pinned: null }
      // At the moment of the pause and at any time after it (other rollouts keep moving).
      for (const t of [pauseAt, pauseAt + later]) {
        if (answer(before, deployment, t) !== answer(afterPause, deployment, t)) throw new Error(`answer changed at +${t - now} ms`)
      }
    }
  ), { numRuns: 500 })
})

t.test('the answer is never lower than the release a deployment runs while that release is in the channel', async () => {
  fc.assert(fc.property(channelArb, fc.nat(), fc.double({ min: 0, max: 1, noNaN: true }), ([active, plans], pick, wariness) => {
    const records = active.flatMap((v, i) => plans[i]!.rolling ? [[v, compileRollout(record(v, plans[i]!.startedAgo, plans[i]!.pausedAgo, T0), [])] as const] : [])
    const channel: ChannelVersions = { name: 'stable', active, head: { version: active[0]! }, rollouts: new Map(records) }
    const applied = active[pick % active.length]!
    const got = selectSpec(channel, { id: 'x', license: { sub: 'x', exp: 0, channels: ['*'], wariness }, channel: 'stable', applied, pinned: null }, T0)
    return semver.gte(got, applied)
  }), { numRuns: 500 })
})
