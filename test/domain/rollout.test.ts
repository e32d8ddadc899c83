/** Staged rollouts: the plan's rules, cohorts against fixed vectors, percent(t) across pauses and freezes. */
import t from 'tap'
import {
  autoPauseReason, bucket, checkRolloutPlan, cohortOf, compileRollout, DEFAULT_AUTO_PAUSE, nextStepAt,
  rolloutAdmits, rolloutPercent, rolloutPhase, shouldAutoPause, activeFreeze, checkFreezeUntil,
  type FreezeRecord, type RolloutRecord
} from '../../src/domain/rollout.js'
import type { LicenseClaims } from '../../src/domain/license.js'

const H = 3_600_000
const T0 = Date.UTC(2026, 11, 1, 9, 0, 0)
const STEPS = [{ percent: 1, after: '0s' }, { percent: 10, after: '1h' }, { percent: 100, after: '24h' }]

function record (extra: Partial<RolloutRecord> = {}): RolloutRecord {
  return { version: '1.3.0', steps: STEPS, autoPause: DEFAULT_AUTO_PAUSE, startedAt: T0, state: 'rolling', pauses: [], pausedReason: null, ...extra }
}

function freeze (from: number, to: number | null, endedAt: number | null = null): FreezeRecord {
  return { reason: 'holiday', at: from, until: to, by: 'rita', endedAt }
}

t.test('bucket: the README vectors (sha256 of channel + "\\n" + sub, first 8 hex digits / 2^32)', async (t) => {
  t.equal(bucket('stable', 'acme-prod'), 0x79391ee7 / 2 ** 32)
  t.equal(bucket('stable', 'acme-prod'), 0.47352784289978445)
  t.equal(bucket('stable', 'cluster-1'), 0.11937895370647311)
  t.equal(bucket('beta', 'acme-prod'), 0.11792508279904723, 'another channel places the same deployment elsewhere')
  t.equal(bucket('stable', 'globex-eu-1'), 0.17079761973582208)
})

t.test('cohortOf: the wariness claim replaces the bucket; anonymous stands last; memoised per license object', async (t) => {
  const license: LicenseClaims = { sub: 'acme-prod', exp: 0, channels: ['*'] }
  t.equal(cohortOf(license, 'stable'), bucket('stable', 'acme-prod'))
  t.equal(cohortOf(license, 'beta'), bucket('beta', 'acme-prod'))
  t.equal(cohortOf({ ...license, wariness: 0 }, 'stable'), 0)
  t.equal(cohortOf({ ...license, wariness: 1 }, 'stable'), 1)
  t.equal(cohortOf(null, 'stable'), 1)
  // The memo is keyed by the verified claims object: the same object answers from it.
  const mutated = { ...license }
  const first = cohortOf(mutated, 'stable')
  mutated.sub = 'someone-else'
  t.equal(cohortOf(mutated, 'stable'), first, 'not hashed again for the same license object')
})

t.test('checkRolloutPlan: the issue example is valid and fills autoPause defaults', async (t) => {
  t.same(checkRolloutPlan({ steps: STEPS }), { steps: STEPS, autoPause: DEFAULT_AUTO_PAUSE })
  t.same(checkRolloutPlan({ steps: STEPS, autoPause: { maxFailures: 3 } }).autoPause, { maxFailures: 3, maxFailureRate: 0.05, minReports: 20 })
  t.equal(checkRolloutPlan({ steps: STEPS, autoPause: null }).autoPause, null)
  t.same(checkRolloutPlan({ steps: [{ percent: 100, after: '0s' }] }).steps, [{ percent: 100, after: '0s' }])
})

t.test('checkRolloutPlan: bad plans are VALIDATION_FAILED naming the rule', async (t) => {
  const bad: Array<[string, Parameters<typeof checkRolloutPlan>[0], RegExp]> = [
    ['no steps', { steps: [] }, /must not be empty/],
    ['first after not 0s', { steps: [{ percent: 1, after: '1m' }, { percent: 100, after: '1h' }] }, /steps\[0\]\.after must be 0s/],
    ['percent falls', { steps: [{ percent: 10, after: '0s' }, { percent: 5, after: '1h' }, { percent: 100, after: '2h' }] }, /steps\[1\]\.percent/],
    ['percent repeats', { steps: [{ percent: 10, after: '0s' }, { percent: 10, after: '1h' }, { percent: 100, after: '2h' }] }, /steps\[1\]\.percent/],
    ['last not 100', { steps: [{ percent: 1, after: '0s' }, { percent: 50, after: '1h' }] }, /last step must be 100/],
    ['over 100', { steps: [{ percent: 1, after: '0s' }, { percent: 101, after: '1h' }] }, /steps\[1\]\.percent/],
    ['zero percent', { steps: [{ percent: 0, after: '0s' }, { percent: 100, after: '1h' }] }, /steps\[0\]\.percent/],
    ['not a duration', { steps: [{ percent: 1, after: '0s' }, { percent: 100, after: 'soon' }] }, /"soon" is not a duration/],
    ['after does not rise', { steps: [{ percent: 1, after: '0s' }, { percent: 10, after: '2h' }, { percent: 100, after: '1h' }] }, /steps\[2\]\.after must be later/],
    ['maxFailures 0', { steps: STEPS, autoPause: { maxFailures: 0 } }, /maxFailures/],
    ['fractional minReports', { steps: STEPS, autoPause: { minReports: 2.5 } }, /minReports/],
    ['rate above 1', { steps: STEPS, autoPause: { maxFailureRate: 1.5 } }, /maxFailureRate/],
    ['rate 0', { steps: STEPS, autoPause: { maxFailureRate: 0 } }, /maxFailureRate/]
  ]
  for (const [what, input, message] of bad) t.throws(() => checkRolloutPlan(input), { code: 'VALIDATION_FAILED', message }, what)
})

t.test('percent(t) follows the steps by the time since the promotion', async (t) => {
  const state = compileRollout(record(), [])
  t.equal(rolloutPercent(state, T0 - 1), 0, 'before the promotion')
  t.equal(rolloutPercent(state, T0), 1)
  t.equal(rolloutPercent(state, T0 + H - 1), 1)
  t.equal(rolloutPercent(state, T0 + H), 10)
  t.equal(rolloutPercent(state, T0 + 24 * H - 1), 10)
  t.equal(rolloutPercent(state, T0 + 24 * H), 100)
  t.equal(rolloutPhase(state, T0 + 24 * H - 1), 'rolling')
  t.equal(rolloutPhase(state, T0 + 24 * H), 'complete', 'complete once the 100% step is in effect')
  t.equal(nextStepAt(state, T0 + 1), T0 + H)
  t.equal(nextStepAt(state, T0 + H), T0 + 24 * H)
  t.equal(nextStepAt(state, T0 + 24 * H), null)
})

t.test('percent(t) does not count time spent paused', async (t) => {
  // Paused from 0:30 to 2:30: the 1h step comes two hours late, at 3:00, and the 24h step at 26:00.
  const resumed = compileRollout(record({ pauses: [{ from: T0 + H / 2, to: T0 + 2.5 * H }] }), [])
  t.equal(rolloutPercent(resumed, T0 + 2 * H), 1, 'time paused does not count')
  t.equal(rolloutPercent(resumed, T0 + 3 * H - 1), 1)
  t.equal(rolloutPercent(resumed, T0 + 3 * H), 10)
  t.equal(rolloutPercent(resumed, T0 + 26 * H - 1), 10)
  t.equal(rolloutPercent(resumed, T0 + 26 * H), 100)

  // Still paused: no step after the pause ever takes effect, the percent reached stays.
  const paused = compileRollout(record({ state: 'paused', pauses: [{ from: T0 + 2 * H, to: null }], pausedReason: 'looks bad' }), [])
  t.equal(rolloutPercent(paused, T0 + 1000 * H), 10, 'the percent reached before the pause')
  t.equal(rolloutPhase(paused, T0 + 1000 * H), 'paused')
  t.equal(nextStepAt(paused, T0 + 3 * H), null)
})

t.test('percent(t) does not count frozen time, and a freeze ends at its until by itself', async (t) => {
  // Frozen 0:30 to 1:30 (until): the 1h step moves to 2:00.
  const state = compileRollout(record(), [freeze(T0 + H / 2, T0 + 1.5 * H)])
  t.equal(rolloutPercent(state, T0 + 1.5 * H), 1)
  t.equal(rolloutPercent(state, T0 + 2 * H - 1), 1)
  t.equal(rolloutPercent(state, T0 + 2 * H), 10)
  t.equal(nextStepAt(state, T0 + H), T0 + 2 * H, 'the next step is projected past the freeze\'s until')

  // Lifted early at 1:00 although until was 5:00: it held 30 minutes.
  const lifted = compileRollout(record(), [freeze(T0 + H / 2, T0 + 5 * H, T0 + H)])
  t.equal(rolloutPercent(lifted, T0 + 1.5 * H - 1), 1)
  t.equal(rolloutPercent(lifted, T0 + 1.5 * H), 10)

  // Without until: the next step waits for ever, the percent reached still admits.
  const open = compileRollout(record(), [freeze(T0 + 2 * H, null)])
  t.equal(rolloutPercent(open, T0 + 100 * H), 10)
  t.equal(nextStepAt(open, T0 + 3 * H), null)
  t.equal(rolloutPhase(open, T0 + 100 * H), 'rolling', 'a freeze is not a pause')

  // A freeze from before the promotion counts only from the promotion on.
  const earlier = compileRollout(record(), [freeze(T0 - 10 * H, T0 + H / 2)])
  t.equal(rolloutPercent(earlier, T0), 1)
  t.equal(rolloutPercent(earlier, T0 + 1.5 * H), 10)
})

t.test('percent(t): a pause inside a freeze (and overlapping ones) is not subtracted twice', async (t) => {
  // Frozen 1:00-3:00, paused 2:00-4:00: held 1:00-4:00, three hours. The 24h step at 27:00.
  const state = compileRollout(record({ pauses: [{ from: T0 + 2 * H, to: T0 + 4 * H }] }), [freeze(T0 + H, T0 + 3 * H)])
  t.equal(rolloutPercent(state, T0 + 27 * H - 1), 10)
  t.equal(rolloutPercent(state, T0 + 27 * H), 100)
})

t.test('activeFreeze: in force from at until until (or its lifting)', async (t) => {
  const f = freeze(T0, T0 + H)
  t.equal(activeFreeze([f], T0 - 1), null)
  t.equal(activeFreeze([f], T0), f)
  t.equal(activeFreeze([f], T0 + H - 1), f)
  t.equal(activeFreeze([f], T0 + H), null, 'ends at until by itself')
  t.equal(activeFreeze([freeze(T0, null, T0 + 5)], T0 + 5), null, 'lifted')
  t.equal(activeFreeze([freeze(T0, null)], T0 + 1000 * H)?.reason, 'holiday')
})

t.test('rolloutAdmits: cohort below percent / 100 while rolling; nobody new while paused; everyone once complete', async (t) => {
  const state = compileRollout(record(), [])
  t.ok(rolloutAdmits(state, 0, T0))
  t.ok(rolloutAdmits(state, 0.0099, T0))
  t.notOk(rolloutAdmits(state, 0.01, T0), 'a bucket equal to the fraction is outside (strictly below)')
  t.ok(rolloutAdmits(state, 0.05, T0 + H))
  t.notOk(rolloutAdmits(state, 0.5, T0 + H))
  t.ok(rolloutAdmits(state, 0.9999, T0 + 24 * H))
  const paused = compileRollout(record({ state: 'paused', pauses: [{ from: T0 + H, to: null }] }), [])
  t.notOk(rolloutAdmits(paused, 0, T0 + 2 * H), 'even cohort 0 is not admitted anew')
  const completed = compileRollout(record({ state: 'complete' }), [])
  t.ok(rolloutAdmits(completed, 1, T0), 'completed by hand: everyone, wariness 1 included')
  t.equal(rolloutPercent(completed, T0), 100)
})

t.test('shouldAutoPause: the maxFailures and the rate lines, and the reason names the numbers', async (t) => {
  const ap = DEFAULT_AUTO_PAUSE
  t.notOk(shouldAutoPause(ap, { applied: 0, failed: 4 }))
  t.ok(shouldAutoPause(ap, { applied: 0, failed: 5 }), 'failed >= maxFailures')
  t.notOk(shouldAutoPause(ap, { applied: 18, failed: 1 }), '19 reports: below minReports')
  t.ok(shouldAutoPause(ap, { applied: 19, failed: 1 }), '1 of 20 = 5%')
  t.notOk(shouldAutoPause(ap, { applied: 38, failed: 1 }), '1 of 39 < 5%')
  t.ok(shouldAutoPause({ maxFailures: 100, maxFailureRate: 0.05, minReports: 20 }, { applied: 38, failed: 3 }))
  t.notOk(shouldAutoPause(null, { applied: 0, failed: 1000 }), 'autoPause null: never')
  t.equal(autoPauseReason('1.3.0', { applied: 38, failed: 3 }), '3 of 41 deployments failed to apply 1.3.0')
})

t.test('checkFreezeUntil: an RFC 3339 date-time in the future', async (t) => {
  t.equal(checkFreezeUntil('2026-12-01T10:00:00Z', T0), T0 + H)
  t.equal(checkFreezeUntil('2026-12-01T11:00:00+01:00', T0), T0 + H, 'an offset')
  t.throws(() => checkFreezeUntil('2026-12-01T09:00:00Z', T0), { code: 'VALIDATION_FAILED', message: /future/ })
  t.throws(() => checkFreezeUntil('2026-12-01', T0), { code: 'VALIDATION_FAILED', message: /RFC 3339/ })
  t.throws(() => checkFreezeUntil('2026-12-01T10:00:00', T0), { code: 'VALIDATION_FAILED', message: /time zone/ }, 'no offset')
  t.throws(() => checkFreezeUntil('2026-13-45T10:00:00Z', T0), { code: 'VALIDATION_FAILED' })
})

t.test('rolloutAdmits: once the 100% step is in effect, wariness 1 is admitted too', async (t) => {
  const state = compileRollout(record(), [])
  t.notOk(rolloutAdmits(state, 1, T0 + 24 * H - 1))
  t.ok(rolloutAdmits(state, 1, T0 + 24 * H))
})
