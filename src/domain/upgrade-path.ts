/**
 * Upgrade paths: which release a deployment moves to next from the one it runs. A release may
 * say which versions it can be reached from (`upgradeFrom`, a semver range), and a channel
 * membership may be `required`: no deployment below it goes past it in one step.
 *
 * This file knows nothing of rollouts: it is given the releases eligible for the deployment
 * now (select-spec.ts decides those) and answers the next hop among them.
 */
import semver from 'semver'
import { ChartcastError } from '../errors.js'

/** What the next hop reads of one release in a channel. */
export interface HopRule {
  /** The membership is required: deployments below it stop there first. */
  readonly required: boolean
  /** The versions this release can be reached from (a semver range); null: from any. */
  readonly upgradeFrom: string | null
}

/** A version without an entry has no rule: not required, reachable from anywhere. */
const NO_RULE: HopRule = { required: false, upgradeFrom: null }

/** The semver options every upgradeFrom check uses (see checkUpgradeFromRange). */
const RANGE_OPTIONS = { includePrerelease: true } as const

/**
 * `upgradeFrom` is a semver range compared by precedence, prereleases included: a deployment
 * on 1.5.0-rc.1 satisfies ">=1.4.0". node-semver's default would leave every prerelease
 * outside every range that does not name its tuple, which would strand deployments on a
 * release candidate with NO_UPGRADE_PATH.
 */
export function checkUpgradeFromRange (range: string): string {
  if (range.trim() === '' || semver.validRange(range, RANGE_OPTIONS) === null) {
    throw new ChartcastError('VALIDATION_FAILED', `upgradeFrom "${range}" is not a semver range (e.g. ">=1.4.0" or ">=1.4.0 <2.0.0")`)
  }
  return range
}

/** Whether a release with this rule can be reached from `applied`. */
export function admits (rule: HopRule, applied: string): boolean {
  return rule.upgradeFrom === null || semver.satisfies(applied, rule.upgradeFrom, RANGE_OPTIONS)
}

export type NextHop =
  | { readonly kind: 'target', readonly version: string }
  /** Nothing between `from` and the cap can be reached from it: `refusedBy` is highest first. */
  | { readonly kind: 'no-path', readonly from: string, readonly refusedBy: readonly string[] }

/**
 * The release a deployment running `applied` moves to next, among `eligible` (highest first,
 * not empty). The rules (issue #10):
 * - no applied version (a fresh install): the highest eligible release;
 * - nothing eligible above `applied`: the highest eligible release (that is `applied` while it
 *   is eligible; else a lower one, a downgrade that agents refuse unless sanctioned);
 * - otherwise the cap is the lowest required release above `applied`, or else the highest;
 *   the target is the highest release r with applied < r <= cap whose upgradeFrom admits
 *   `applied`. None: no-path, naming the releases in (applied, cap] that refused it.
 */
export function nextHop (eligible: readonly string[], rules: ReadonlyMap<string, HopRule>, applied: string | null): NextHop {
  const highest = eligible[0]
  if (highest === undefined) throw new Error('nextHop needs at least one eligible release')
  if (applied === null || !semver.gt(highest, applied)) return { kind: 'target', version: highest }
  // The releases above `applied`: a prefix of the list, as it is highest first.
  let above = 1
  while (above < eligible.length && semver.gt(eligible[above]!, applied)) above++
  // The cap: the lowest required one above, which is the last required in the prefix.
  let capIndex = 0
  for (let i = above - 1; i >= 0; i--) {
    if ((rules.get(eligible[i]!) ?? NO_RULE).required) {
      capIndex = i
      break
    }
  }
  const refusedBy: string[] = []
  for (let i = capIndex; i < above; i++) {
    const version = eligible[i]!
    if (admits(rules.get(version) ?? NO_RULE, applied)) return { kind: 'target', version }
    refusedBy.push(version)
  }
  return { kind: 'no-path', from: applied, refusedBy }
}

/** The 409 a no-path answer is on the spec endpoints and the path endpoint. */
export function noUpgradePathError (channel: string, hop: Extract<NextHop, { kind: 'no-path' }>): ChartcastError {
  const refusing = hop.refusedBy.length === 1 ? `release ${hop.refusedBy[0]!} does` : `releases ${hop.refusedBy.join(', ')} do`
  return new ChartcastError('NO_UPGRADE_PATH', `no upgrade path from ${hop.from} in channel "${channel}": ${refusing} not admit upgrades from ${hop.from} (upgradeFrom), and no release up to the next required one does`)
}

/** Applied versions remembered per (eligible list, rules): client-sent, so bounded. */
const MAX_MEMOISED_PER_LIST = 1_000

/** Answers per rules map, then per eligible list (both objects are replaced when a channel changes). */
const memo = new WeakMap<ReadonlyMap<string, HopRule>, WeakMap<readonly string[], Map<string, NextHop>>>()

/**
 * nextHop, remembered per (rules, eligible list, applied) so a pull costs Map lookups only.
 * Keyed by object identity: a channel state's lists are replaced, never changed, when it
 * changes, so a new revision starts afresh and the old entries go with the old state. Pass
 * the same array for the same eligible set to hit it.
 */
export function memoisedNextHop (eligible: readonly string[], rules: ReadonlyMap<string, HopRule>, applied: string | null): NextHop {
  if (applied === null) return nextHop(eligible, rules, applied)
  let byList = memo.get(rules)
  if (byList === undefined) {
    byList = new WeakMap()
    memo.set(rules, byList)
  }
  let byApplied = byList.get(eligible)
  if (byApplied === undefined) {
    byApplied = new Map()
    byList.set(eligible, byApplied)
  }
  const hit = byApplied.get(applied)
  if (hit !== undefined) return hit
  const hop = nextHop(eligible, rules, applied)
  if (byApplied.size >= MAX_MEMOISED_PER_LIST) byApplied.clear()
  byApplied.set(applied, hop)
  return hop
}

/**
 * The whole path from `from`: each hop in order, as nextHop gives them one after the other
 * (the deployment having applied the previous hop each time). Empty when `from` is already
 * the answer. `eligibleFor(applied)` is the eligible list for a deployment running `applied`.
 * A no-path anywhere on the way is returned as is.
 */
export function upgradePath (eligibleFor: (applied: string) => readonly string[], rules: ReadonlyMap<string, HopRule>, from: string): { hops: string[] } | Extract<NextHop, { kind: 'no-path' }> {
  const hops: string[] = []
  const seen = new Set<string>([from])
  let current = from
  for (;;) {
    const hop = nextHop(eligibleFor(current), rules, current)
    if (hop.kind === 'no-path') return hop
    // A move is to a new version each time (up, or one fall back to the highest); the
    // seen set guards against a cycle all the same.
    if (hop.version === current || seen.has(hop.version)) return { hops }
    hops.push(hop.version)
    seen.add(hop.version)
    current = hop.version
  }
}
