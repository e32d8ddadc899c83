/**
 * Which release a deployment gets from a channel. Both spec endpoints ask this one function,
 * so the decision lives in one place, in two steps: which releases are eligible for this
 * deployment now (`eligibleReleases`: rollout cohorts, src/domain/rollout.ts), then which of
 * those it moves to from the one it runs (`nextHop`, src/domain/upgrade-path.ts: upgrade paths).
 */
import semver from 'semver'
import { ChartcastError } from '../errors.js'
import type { LicenseClaims } from './license.js'
import { cohortOf, rolloutAdmits, type RolloutState } from './rollout.js'
import { memoisedNextHop, noUpgradePathError, type HopRule } from './upgrade-path.js'

/** Who is pulling, as the request's credentials and headers describe it. */
export interface Deployment {
  /** The license's `sub`: one deployment. Null for an anonymous W&B operator pull. */
  readonly id: string | null
  readonly license: LicenseClaims | null
  readonly channel: string
  /** `Chartcast-Applied`: the release it runs now; null for a fresh install and for the W&B operator. */
  readonly applied: string | null
  /**
   * The version the server last served to this deployment (its check-in record), or null
   * when it was never seen. Stands in for `applied` when that is null: an approximation for
   * clients that never say what they run (the W&B operator), as served is not applied.
   */
  readonly lastServed: string | null
  /** A version asked for by name (`?version=`, the operator's release path), already checked as semver. */
  readonly pinned: string | null
}

/** What selectSpec needs to know about a channel (the spec cache's state satisfies it). */
export interface ChannelVersions {
  readonly name: string
  /** Versions promoted and not withdrawn, highest first. */
  readonly active: readonly string[]
  readonly head: { readonly version: string } | null
  /**
   * Per active version: whether its membership is required and the release's upgradeFrom.
   * A version without an entry is neither required nor restricted.
   */
  readonly memberships: ReadonlyMap<string, HopRule>
  /** Rollouts of releases in the channel, by version; a release without one reaches everyone. */
  readonly rollouts?: ReadonlyMap<string, RolloutState>
  /** Versions withdrawn as a sanctioned rollback (`?rollback=true`) and not promoted again since. */
  readonly rollbacks?: ReadonlySet<string>
}

/** The version the deployment runs, as far as the server can tell: what it says, else what it was last served. */
export function effectiveApplied (deployment: Deployment): string | null {
  return deployment.applied ?? deployment.lastServed
}

/**
 * Whether a release in the channel is one the deployment may be given now: it has no rollout
 * (or a complete one), its rollout includes the deployment's cohort now, or it is the release
 * the deployment runs (effectiveApplied): a pause never sends back those who moved, W&B
 * operators included. `version` must be active in the channel.
 */
export function isEligible (channel: ChannelVersions, version: string, deployment: Deployment, now: number): boolean {
  const rollout = channel.rollouts?.get(version)
  if (rollout === undefined || version === effectiveApplied(deployment)) return true
  return rolloutAdmits(rollout, cohortOf(deployment.license, channel.name), now)
}

/** Every release the deployment may be given now, highest first (a new array each call). */
export function eligibleVersions (channel: ChannelVersions, deployment: Deployment, now: number): string[] {
  return channel.active.filter((version) => isEligible(channel, version, deployment, now))
}

/** Rollouts per channel beyond which eligible lists are built per pull instead of remembered. */
const MAX_MASKED_ROLLOUTS = 30

/** A channel state's rollouts in `active` order, each with its bit, and the eligible lists by mask. */
interface MaskedRollouts {
  readonly entries: ReadonlyArray<{ readonly version: string, readonly rollout: RolloutState, readonly bit: number }>
  /** Every bit: the mask of a deployment every rollout admits. */
  readonly all: number
  readonly lists: Map<number, readonly string[]>
}

/**
 * Per channel state, built on its first pull with rollouts. The channel state object is
 * replaced (never changed) when the channel changes, so the entries go with it.
 */
const maskedByState = new WeakMap<ChannelVersions, MaskedRollouts>()

function maskedRolloutsOf (channel: ChannelVersions, rollouts: ReadonlyMap<string, RolloutState>): MaskedRollouts {
  let masked = maskedByState.get(channel)
  if (masked === undefined) {
    const entries: Array<MaskedRollouts['entries'][number]> = []
    let bit = 1
    let all = 0
    for (const version of channel.active) {
      const rollout = rollouts.get(version)
      if (rollout === undefined) continue
      entries.push({ version, rollout, bit })
      all |= bit
      bit <<= 1
    }
    masked = { entries, all, lists: new Map() }
    maskedByState.set(channel, masked)
  }
  return masked
}

/**
 * The releases eligible for this deployment now, highest first, as `eligibleVersions`, but
 * the same array for the same set: nextHop's answers are remembered per array, so a pull
 * costs Map lookups. Without rollouts that is `channel.active` itself. With rollouts, which
 * of them admit the deployment is a bit mask (at most 2^k lists for k rollouts); the cohort
 * is hashed at most once per license and channel (cohortOf), and only when a rollout asks.
 */
export function eligibleReleases (channel: ChannelVersions, deployment: Deployment, now: number): readonly string[] {
  const rollouts = channel.rollouts
  if (rollouts === undefined || rollouts.size === 0) return channel.active
  if (rollouts.size > MAX_MASKED_ROLLOUTS) return eligibleVersions(channel, deployment, now)
  const masked = maskedRolloutsOf(channel, rollouts)
  const applied = effectiveApplied(deployment)
  let mask = 0
  let cohort = -1
  // Only the rollouts are visited, not every active version: a channel holds hundreds of releases.
  for (const { version, rollout, bit } of masked.entries) {
    if (version === applied) {
      mask |= bit
    } else {
      if (cohort < 0) cohort = cohortOf(deployment.license, channel.name)
      if (rolloutAdmits(rollout, cohort, now)) mask |= bit
    }
  }
  if (mask === masked.all) return channel.active
  let list = masked.lists.get(mask)
  if (list === undefined) {
    const built: string[] = []
    let at = 1
    for (const version of channel.active) {
      if (!rollouts.has(version)) {
        built.push(version)
        continue
      }
      if ((mask & at) !== 0) built.push(version)
      at <<= 1
    }
    list = built
    masked.lists.set(mask, list)
  }
  return list
}

/**
 * A deployment outside every partial rollout, running `applied`: whom GET /channels/:name/path
 * describes the channel for. It has no license, so no cohort puts it early.
 */
export function outsiderDeployment (channel: string, applied: string): Deployment {
  return { id: null, license: null, channel, applied, lastServed: null, pinned: null }
}

/**
 * A sanctioned rollback: the deployment runs a release that was withdrawn with `rollback=true`
 * and is given a lower one. Its answer says so (`metadata.rollback: "true"`), and agents then
 * move down without --allow-downgrade.
 */
export function isSanctionedRollback (channel: ChannelVersions, deployment: Deployment, version: string): boolean {
  const applied = deployment.applied
  // `rollbacks` holds withdrawn versions only (the spec cache builds it so), and is rarely non-empty.
  return applied !== null && channel.rollbacks !== undefined && channel.rollbacks.has(applied) && semver.lt(version, applied)
}

/**
 * The version the deployment gets: the pinned one when it is in the channel, else the next
 * hop among its eligible releases from the version it runs (the head when no rollout or
 * upgrade rule stands in the way). Returns a version rather than a compiled spec, so the
 * decision stays pure; the spec cache compiles (or reads) that version's spec. `now` (ms)
 * places time-based rollouts. Throws NO_UPGRADE_PATH (409) when nothing it may move to
 * admits the version it runs.
 */
export function selectSpec (channel: ChannelVersions, deployment: Deployment, now: number): string {
  const pinned = deployment.pinned
  if (pinned !== null) {
    if (channel.head?.version === pinned || channel.active.includes(pinned)) return pinned
    throw new ChartcastError('RELEASE_NOT_FOUND', `release ${pinned} is not in channel "${channel.name}"`)
  }
  if (channel.head === null) throw new ChartcastError('CHANNEL_EMPTY', `channel "${channel.name}" has no release yet`)
  const eligible = eligibleReleases(channel, deployment, now)
  if (eligible.length === 0) throw new ChartcastError('CHANNEL_EMPTY', `channel "${channel.name}" has no release for this deployment yet: every release in it is in a staged rollout that does not include it`)
  const hop = memoisedNextHop(eligible, channel.memberships, effectiveApplied(deployment))
  if (hop.kind === 'no-path') throw noUpgradePathError(channel.name, hop)
  return hop.version
}
