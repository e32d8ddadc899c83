/**
 * Which release a deployment gets from a channel. Both spec endpoints ask this one function,
 * so the decision lives in one place (rollout cohorts and upgrade paths belong here too).
 */
import semver from 'semver'
import { ChartcastError } from '../errors.js'
import type { LicenseClaims } from './license.js'
import { cohortOf, rolloutAdmits, type RolloutState } from './rollout.js'

/** Who is pulling, as the request's credentials and headers describe it. */
export interface Deployment {
  /** The license's `sub`: one deployment. Null for an anonymous W&B operator pull. */
  readonly id: string | null
  readonly license: LicenseClaims | null
  readonly channel: string
  /** `Chartcast-Applied`: the release it runs now; null for a fresh install and for the W&B operator. */
  readonly applied: string | null
  /** A version asked for by name (`?version=`, the operator's release path), already checked as semver. */
  readonly pinned: string | null
}

/** What selectSpec needs to know about a channel (the spec cache's state satisfies it). */
export interface ChannelVersions {
  readonly name: string
  /** Versions promoted and not withdrawn, highest first. */
  readonly active: readonly string[]
  readonly head: { readonly version: string } | null
  /** Rollouts of releases in the channel, by version; a release without one reaches everyone. */
  readonly rollouts?: ReadonlyMap<string, RolloutState>
  /** Versions withdrawn as a sanctioned rollback (`?rollback=true`) and not promoted again since. */
  readonly rollbacks?: ReadonlySet<string>
}

/**
 * Whether a release in the channel is one the deployment may be given now: it has no rollout
 * (or a complete one), its rollout includes the deployment's cohort now, or it is the release
 * the deployment says it runs (`Chartcast-Applied`): a pause never sends back those who moved.
 * `version` must be active in the channel (the caller iterates `channel.active`).
 */
export function isEligible (channel: ChannelVersions, version: string, deployment: Deployment, now: number): boolean {
  const rollout = channel.rollouts?.get(version)
  if (rollout === undefined || version === deployment.applied) return true
  return rolloutAdmits(rollout, cohortOf(deployment.license, channel.name), now)
}

/** Every release the deployment may be given now, highest first. */
export function eligibleVersions (channel: ChannelVersions, deployment: Deployment, now: number): string[] {
  return channel.active.filter((version) => isEligible(channel, version, deployment, now))
}

/**
 * The highest eligible release, or null when none is: eligibleVersions(...)[0] without building
 * the list (this runs on every pull). Upgrade paths choose among the eligible releases on top
 * of this step; this one only says which are eligible. The cohort is hashed at most once per license and
 * channel (cohortOf), and only asked for when a rollout stands in the way.
 */
export function highestEligible (channel: ChannelVersions, deployment: Deployment, now: number): string | null {
  const rollouts = channel.rollouts
  if (rollouts === undefined || rollouts.size === 0) return channel.active[0] ?? null
  let cohort = -1
  for (const version of channel.active) {
    const rollout = rollouts.get(version)
    if (rollout === undefined || version === deployment.applied) return version
    if (cohort < 0) cohort = cohortOf(deployment.license, channel.name)
    if (rolloutAdmits(rollout, cohort, now)) return version
  }
  return null
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
 * The version the deployment gets: the pinned one when it is in the channel, else the highest
 * eligible release (the head when no rollout stands in the way). Returns a version rather than
 * a compiled spec, so the decision stays pure; the spec cache compiles (or reads) that
 * version's spec. `now` (ms) places time-based rollouts.
 */
export function selectSpec (channel: ChannelVersions, deployment: Deployment, now: number): string {
  const pinned = deployment.pinned
  if (pinned !== null) {
    if (channel.head?.version === pinned || channel.active.includes(pinned)) return pinned
    throw new ChartcastError('RELEASE_NOT_FOUND', `release ${pinned} is not in channel "${channel.name}"`)
  }
  if (channel.head === null) throw new ChartcastError('CHANNEL_EMPTY', `channel "${channel.name}" has no release yet`)
  const selected = highestEligible(channel, deployment, now)
  if (selected === null) throw new ChartcastError('CHANNEL_EMPTY', `channel "${channel.name}" has no release for this deployment yet: every release in it is in a staged rollout that does not include it`)
  return selected
}
