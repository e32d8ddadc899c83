/**
 * Staged rollouts and channel freezes: pure rules, no clock of their own (every function takes
 * `now` in ms), no framework, no database.
 *
 * - A deployment's cohort is a number in [0, 1): `bucket(channel, sub)`, or the license's
 *   `wariness` claim where present. It depends on the channel and the deployment only, so the
 *   same deployments go first on every release of a channel, on every replica.
 * - A rollout's percent at time t is that of the last step whose `after` has passed, where
 *   `after` counts time since the promotion minus the time the rollout spent paused or its
 *   channel spent frozen (`compileRollout` turns those holds into the wall-clock time each step
 *   takes effect, once per channel state, so a pull only compares numbers).
 * - A rolling rollout admits the deployments whose cohort is below percent / 100; a paused one
 *   admits nobody new; a complete one admits everyone.
 */
import { createHash } from 'node:crypto'
import { ChartcastError } from '../errors.js'
import type { LicenseClaims } from './license.js'
import { parseDuration } from './duration.js'

export interface RolloutStep {
  /** Percent of the channel's deployments in the rollout once this step is reached (0 < p <= 100). */
  readonly percent: number
  /** A duration (`0s`, `1h`, `1d12h`) after the promotion, not counting paused or frozen time. */
  readonly after: string
}

export interface AutoPause {
  readonly maxFailures: number
  readonly maxFailureRate: number
  readonly minReports: number
}

/** The defaults: a field left out of `autoPause` takes its value from here. */
export const DEFAULT_AUTO_PAUSE: AutoPause = Object.freeze({ maxFailures: 5, maxFailureRate: 0.05, minReports: 20 })

export interface RolloutPlan {
  readonly steps: readonly RolloutStep[]
  /** Null: no automatic pause. */
  readonly autoPause: AutoPause | null
}

/** `rollout` as a promotion request carries it (already shaped by the route schema). */
export interface RolloutInput {
  steps: Array<{ percent: number, after: string }>
  autoPause?: Partial<AutoPause> | null
}

export const MAX_ROLLOUT_STEPS = 20

function invalid (detail: string): ChartcastError {
  return new ChartcastError('VALIDATION_FAILED', `rollout: ${detail}`)
}

/**
 * The rules the schema cannot say: percents rise strictly and end at 100, the first step is at
 * `0s`, the durations are durations and rise strictly too, autoPause fields in range (defaults
 * filled in).
 */
export function checkRolloutPlan (input: RolloutInput): RolloutPlan {
  const { steps } = input
  if (steps.length === 0) throw invalid('steps must not be empty')
  if (steps.length > MAX_ROLLOUT_STEPS) throw invalid(`at most ${MAX_ROLLOUT_STEPS} steps`)
  let previousPercent = 0
  let previousAfter = -1
  for (const [i, step] of steps.entries()) {
    if (!Number.isFinite(step.percent) || step.percent <= previousPercent || step.percent > 100) {
      throw invalid(`steps[${i}].percent must be above the previous step's (${previousPercent}) and at most 100`)
    }
    const after = parseDuration(step.after)
    if (after === null) throw invalid(`steps[${i}].after "${step.after}" is not a duration (e.g. 0s, 1h, 1d)`)
    if (i === 0 && after !== 0) throw invalid('steps[0].after must be 0s (the first step starts with the promotion)')
    if (i > 0 && after <= previousAfter) throw invalid(`steps[${i}].after must be later than steps[${i - 1}].after`)
    previousPercent = step.percent
    previousAfter = after
  }
  if (previousPercent !== 100) throw invalid('the last step must be 100 percent')
  return { steps: steps.map((s) => ({ percent: s.percent, after: s.after })), autoPause: checkAutoPause(input.autoPause) }
}

function checkAutoPause (input: Partial<AutoPause> | null | undefined): AutoPause | null {
  if (input === null) return null
  const merged = { ...DEFAULT_AUTO_PAUSE, ...input }
  if (!Number.isSafeInteger(merged.maxFailures) || merged.maxFailures < 1) throw invalid('autoPause.maxFailures must be a whole number, at least 1')
  if (!Number.isSafeInteger(merged.minReports) || merged.minReports < 1) throw invalid('autoPause.minReports must be a whole number, at least 1')
  if (!(merged.maxFailureRate > 0 && merged.maxFailureRate <= 1)) throw invalid('autoPause.maxFailureRate must be above 0 and at most 1')
  return merged
}

// ---------------------------------------------------------------------------------------------
// Cohorts

/**
 * A deployment's bucket in a channel: `parseInt(sha256hex(channel + "\n" + sub).slice(0, 8), 16) / 2**32`,
 * a number in [0, 1). Documented in the README so vendors can tell customers where they stand.
 */
export function bucket (channel: string, sub: string): number {
  const hex = createHash('sha256').update(channel + '\n' + sub).digest('hex')
  return parseInt(hex.slice(0, 8), 16) / 2 ** 32
}

/**
 * Buckets per verified license object. The license verifier keeps one claims object per token,
 * so this hashes once per license and channel, never per pull; the WeakMap lets a bucket go
 * with its license when the verifier forgets it.
 */
const bucketsByLicense = new WeakMap<LicenseClaims, Map<string, number>>()

/**
 * Where a deployment stands in a channel's rollouts: its `wariness` claim (0 = first,
 * 1 = last) when the license carries one, else its bucket. An anonymous pull has no
 * deployment to place, so it stands last: it gets a release once its rollout is complete.
 */
export function cohortOf (license: LicenseClaims | null, channel: string): number {
  if (license === null) return 1
  if (license.wariness !== undefined) return license.wariness
  let perChannel = bucketsByLicense.get(license)
  if (perChannel === undefined) {
    perChannel = new Map()
    bucketsByLicense.set(license, perChannel)
  }
  let value = perChannel.get(channel)
  if (value === undefined) {
    value = bucket(channel, license.sub)
    perChannel.set(channel, value)
  }
  return value
}

// ---------------------------------------------------------------------------------------------
// State over time

/** A span of wall-clock time, ms since the epoch; `to` null while it lasts. */
export interface Interval {
  readonly from: number
  readonly to: number | null
}

/** A rollout as stored. */
export interface RolloutRecord {
  readonly version: string
  readonly steps: readonly RolloutStep[]
  readonly autoPause: AutoPause | null
  readonly startedAt: number
  /** As stored: `rolling` also covers a rollout whose last step has passed (see rolloutPhase). */
  readonly state: 'rolling' | 'paused' | 'complete'
  /** Every pause, the current one (if paused) last with `to` null. */
  readonly pauses: readonly Interval[]
  readonly pausedReason: string | null
}

/** A channel freeze as stored; it ends at `until` by itself, or earlier when lifted (`endedAt`). */
export interface FreezeRecord {
  readonly reason: string
  readonly at: number
  readonly until: number | null
  readonly by: string
  readonly endedAt: number | null
}

/** When a freeze stops holding: lifted, or reached its `until`, whichever is first; null while open-ended. */
export function freezeEnd (freeze: FreezeRecord): number | null {
  if (freeze.endedAt === null) return freeze.until
  return freeze.until === null ? freeze.endedAt : Math.min(freeze.until, freeze.endedAt)
}

/** The freeze in force at `now`, if any. */
export function activeFreeze (freezes: readonly FreezeRecord[], now: number): FreezeRecord | null {
  for (const freeze of freezes) {
    const end = freezeEnd(freeze)
    if (freeze.at <= now && (end === null || now < end)) return freeze
  }
  return null
}

/** A rollout compiled against its channel's freezes: the wall-clock time each step takes effect. */
export interface RolloutState {
  readonly record: RolloutRecord
  readonly version: string
  /** `stepAt[i]`: when steps[i] takes effect (Infinity behind a hold that has no end yet). */
  readonly stepAt: readonly number[]
  readonly percents: readonly number[]
}

/** Pauses and freezes merged into disjoint holds, sorted, clipped to start at `from`. */
export function mergeHolds (intervals: readonly Interval[], from: number): Array<{ from: number, to: number }> {
  const sorted = intervals
    .map((i) => ({ from: Math.max(i.from, from), to: i.to ?? Infinity }))
    .filter((i) => i.to > i.from)
    .sort((a, b) => a.from - b.from)
  const merged: Array<{ from: number, to: number }> = []
  for (const hold of sorted) {
    const last = merged.at(-1)
    if (last !== undefined && hold.from <= last.to) last.to = Math.max(last.to, hold.to)
    else merged.push({ ...hold })
  }
  return merged
}

/**
 * When each step takes effect: its `after` of counted time is reached, where the time inside a
 * hold (paused, frozen) does not count. A step reached exactly when a hold begins is reached.
 */
export function compileRollout (record: RolloutRecord, freezes: readonly FreezeRecord[]): RolloutState {
  const holds = mergeHolds([...record.pauses, ...freezes.map((f) => ({ from: f.at, to: freezeEnd(f) }))], record.startedAt)
  const stepAt = record.steps.map((step) => {
    const needed = parseDuration(step.after) ?? 0
    let wall = record.startedAt
    let counted = 0
    for (const hold of holds) {
      const free = hold.from - wall
      if (counted + free >= needed) return wall + (needed - counted)
      counted += free
      wall = hold.to
      if (wall === Infinity) return Infinity
    }
    return wall + (needed - counted)
  })
  return { record, version: record.version, stepAt, percents: record.steps.map((s) => s.percent) }
}

/** percent(t): that of the last step in effect at `now` (100 once completed by hand). */
export function rolloutPercent (state: RolloutState, now: number): number {
  if (state.record.state === 'complete') return 100
  let percent = 0
  for (let i = 0; i < state.stepAt.length; i++) {
    if (state.stepAt[i]! > now) break
    percent = state.percents[i]!
  }
  return percent
}

export type RolloutPhase = 'rolling' | 'paused' | 'complete'

/** Complete when completed by hand or once its last (100%) step is in effect; else as stored. */
export function rolloutPhase (state: RolloutState, now: number): RolloutPhase {
  if (state.record.state === 'complete') return 'complete'
  if (state.record.state === 'paused') return 'paused'
  return rolloutPercent(state, now) >= 100 ? 'complete' : 'rolling'
}

/** When the next step takes effect; null when paused, complete, or behind a freeze without an end. */
export function nextStepAt (state: RolloutState, now: number): number | null {
  if (rolloutPhase(state, now) !== 'rolling') return null
  for (const at of state.stepAt) if (at > now) return Number.isFinite(at) ? at : null
  return null
}

/**
 * Whether the rollout lets this cohort have its release now. The stickiness rule (a deployment
 * keeps the release it runs) is the caller's: see select-spec's isEligible.
 */
export function rolloutAdmits (state: RolloutState, cohort: number, now: number): boolean {
  if (state.record.state === 'complete') return true
  if (state.record.state === 'paused') return false
  const percent = rolloutPercent(state, now)
  // At 100% everyone, wariness 1 included (a cohort is below 1 otherwise).
  return percent >= 100 || cohort < percent / 100
}

// ---------------------------------------------------------------------------------------------
// Automatic pause

export interface ReportCounts {
  readonly applied: number
  readonly failed: number
}

/**
 * The line: `failed >= maxFailures`, or at least `minReports` reports and a failure
 * rate at or above `maxFailureRate`.
 */
export function shouldAutoPause (autoPause: AutoPause | null, counts: ReportCounts): boolean {
  if (autoPause === null) return false
  const { applied, failed } = counts
  if (failed >= autoPause.maxFailures) return true
  const total = applied + failed
  return total >= autoPause.minReports && failed / total >= autoPause.maxFailureRate
}

/** The pause reason, naming the numbers: `3 of 41 deployments failed to apply 1.3.0`. */
export function autoPauseReason (version: string, counts: ReportCounts): string {
  return `${counts.failed} of ${counts.applied + counts.failed} deployments failed to apply ${version}`
}

// ---------------------------------------------------------------------------------------------
// Freezes

/** RFC 3339 section 5.6 date-time (a time zone offset is required). */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/

/** A freeze's `until`: an RFC 3339 date-time after `now`; ms since the epoch. */
export function checkFreezeUntil (text: string, now: number): number {
  const ms = RFC3339.test(text) ? Date.parse(text) : NaN
  if (Number.isNaN(ms)) throw new ChartcastError('VALIDATION_FAILED', 'until must be an RFC 3339 date-time with a time zone, e.g. 2026-12-27T08:00:00Z')
  if (ms <= now) throw new ChartcastError('VALIDATION_FAILED', `until (${new Date(ms).toISOString()}) must be in the future`)
  return ms
}
