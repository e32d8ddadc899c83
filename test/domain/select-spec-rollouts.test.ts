/** selectSpec with staged rollouts: eligibility, stickiness, pauses, sanctioned rollbacks. */
import t from 'tap'
import { eligibleVersions, highestEligible, isSanctionedRollback, selectSpec, type ChannelVersions, type Deployment } from '../../src/domain/select-spec.js'
import { bucket, compileRollout, DEFAULT_AUTO_PAUSE, type RolloutRecord, type RolloutState } from '../../src/domain/rollout.js'
import type { LicenseClaims } from '../../src/domain/license.js'

const H = 3_600_000
const T0 = Date.UTC(2026, 11, 1, 9, 0, 0)
const STEPS = [{ percent: 1, after: '0s' }, { percent: 10, after: '1h' }, { percent: 100, after: '24h' }]

function rollout (version: string, extra: Partial<RolloutRecord> = {}): RolloutState {
  return compileRollout({ version, steps: STEPS, autoPause: DEFAULT_AUTO_PAUSE, startedAt: T0, state: 'rolling', pauses: [], pausedReason: null, ...extra }, [])
}

function channel (rollouts: RolloutState[], rollbacks: string[] = []): ChannelVersions {
  return {
    name: 'stable',
    active: ['1.3.0', '1.2.0', '1.1.0'],
    head: { version: '1.3.0' },
    rollouts: new Map(rollouts.map((r) => [r.version, r])),
    rollbacks: new Set(rollbacks)
  }
}

function license (sub: string, wariness?: number): LicenseClaims {
  return { sub, exp: 0, channels: ['*'], ...(wariness !== undefined && { wariness }) }
}

function deployment (claims: LicenseClaims | null, applied: string | null = null): Deployment {
  return { id: claims?.sub ?? null, license: claims, channel: 'stable', applied, pinned: null }
}

// bucket('stable', 'cluster-1') is 0.119..., bucket('stable', 'acme-prod') 0.473...
const early = license('early', 0)
const cluster1 = license('cluster-1')
const acme = license('acme-prod')

t.test('without rollouts every deployment gets the head', async (t) => {
  t.equal(selectSpec(channel([]), deployment(acme), T0), '1.3.0')
  t.same(eligibleVersions(channel([]), deployment(acme), T0), ['1.3.0', '1.2.0', '1.1.0'])
})

t.test('a rolling release goes to the cohorts below its percent; the others get the highest release without one', async (t) => {
  const ch = channel([rollout('1.3.0')])
  t.equal(selectSpec(ch, deployment(early), T0), '1.3.0', 'wariness 0 is in from 1%')
  t.equal(selectSpec(ch, deployment(cluster1), T0), '1.2.0', '0.119 is outside 1%')
  t.equal(selectSpec(ch, deployment(cluster1), T0 + H), '1.2.0', '0.119 is outside 10%')
  t.equal(selectSpec(ch, deployment(license('cluster-1', 0.05)), T0 + H), '1.3.0', 'wariness 0.05 is inside 10%')
  t.equal(selectSpec(ch, deployment(cluster1), T0 + 24 * H), '1.3.0', 'everyone at 100%')
  t.equal(selectSpec(ch, deployment(null), T0 + H), '1.2.0', 'an anonymous operator pull stands last')
  t.same(eligibleVersions(ch, deployment(cluster1), T0), ['1.2.0', '1.1.0'])
  t.ok(bucket('stable', 'cluster-1') > 0.1, 'the vector this test relies on')
})

t.test('several rollouts in one channel: each release has its own', async (t) => {
  const ch = channel([rollout('1.3.0'), rollout('1.2.0', { startedAt: T0 - 2 * H })])
  // 1.2.0 started two hours earlier: at T0 it is at 10%; 1.3.0 at 1%.
  t.equal(selectSpec(ch, deployment(license('x', 0.05)), T0), '1.2.0')
  t.equal(selectSpec(ch, deployment(license('x', 0.005)), T0), '1.3.0')
  t.equal(selectSpec(ch, deployment(cluster1), T0), '1.1.0')
  t.same(eligibleVersions(ch, deployment(license('x', 0.05)), T0), ['1.2.0', '1.1.0'])
})

t.test('Chartcast-Applied keeps the release a deployment runs eligible while it is in the channel', async (t) => {
  const ch = channel([rollout('1.3.0')])
  t.equal(selectSpec(ch, deployment(cluster1, '1.3.0'), T0), '1.3.0', 'outside the cohort, but it runs 1.3.0')
  const paused = channel([rollout('1.3.0', { state: 'paused', pauses: [{ from: T0 + H, to: null }] })])
  t.equal(selectSpec(paused, deployment(early, '1.3.0'), T0 + 2 * H), '1.3.0', 'a pause does not send back those who moved')
  t.equal(selectSpec(paused, deployment(early, '1.2.0'), T0 + 2 * H), '1.2.0', 'a paused rollout admits nobody new')
  t.equal(selectSpec(paused, deployment(early), T0 + 2 * H), '1.2.0', 'not a fresh install either')
  const withdrawn: ChannelVersions = { ...channel([]), active: ['1.2.0', '1.1.0'], head: { version: '1.2.0' } }
  t.equal(selectSpec(withdrawn, deployment(early, '1.3.0'), T0), '1.2.0', 'a withdrawn release is not kept')
})

t.test('a channel whose only releases roll past a deployment is CHANNEL_EMPTY for it', async (t) => {
  const ch: ChannelVersions = { name: 'stable', active: ['1.0.0'], head: { version: '1.0.0' }, rollouts: new Map([['1.0.0', rollout('1.0.0')]]) }
  t.throws(() => selectSpec(ch, deployment(cluster1), T0), { code: 'CHANNEL_EMPTY', message: /staged rollout/ })
  t.equal(highestEligible(ch, deployment(cluster1), T0), null)
  t.equal(selectSpec(ch, deployment(early), T0), '1.0.0')
})

t.test('a pinned version is served whatever its rollout says', async (t) => {
  const ch = channel([rollout('1.3.0', { state: 'paused', pauses: [{ from: T0, to: null }] })])
  t.equal(selectSpec(ch, { ...deployment(cluster1), pinned: '1.3.0' }, T0), '1.3.0')
})

t.test('isSanctionedRollback: a deployment that runs a version withdrawn with rollback=true, given a lower one', async (t) => {
  const ch: ChannelVersions = { ...channel([], ['1.4.0']) }
  t.ok(isSanctionedRollback(ch, deployment(acme, '1.4.0'), '1.3.0'))
  t.notOk(isSanctionedRollback(ch, deployment(acme, '1.3.0'), '1.3.0'), 'it does not run the withdrawn version')
  t.notOk(isSanctionedRollback(ch, deployment(acme), '1.3.0'), 'no applied version')
  t.notOk(isSanctionedRollback(channel([]), deployment(acme, '1.4.0'), '1.3.0'), 'withdrawn without rollback=true')
  t.notOk(isSanctionedRollback({ ...ch, active: ['1.5.0', '1.3.0'] }, deployment(acme, '1.4.0'), '1.5.0'), 'an upgrade is not a rollback')
})
