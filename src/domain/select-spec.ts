/**
 * Which release a deployment gets from a channel. Both spec endpoints ask this one function,
 * so the decision lives in one place, in two steps: which releases are eligible for this
 * deployment now (`eligibleReleases`: rollout cohorts belong there), then which of those it
 * moves to from the one it runs (`nextHop`, src/domain/upgrade-path.ts: upgrade paths).
 */
import { ChartcastError } from '../errors.js'
import type { LicenseClaims } from './license.js'
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
}

/** The version the deployment runs, as far as the server can tell: what it says, else what it was last served. */
export function effectiveApplied (deployment: Deployment): string | null {
  return deployment.applied ?? deployment.lastServed
}

/**
 * The releases eligible for this deployment now, highest first: every active version of the
 * channel. (Rollouts narrow this set; nextHop then chooses among it.) Return the same array
 * for the same set: nextHop's answers are remembered per array.
 */
export function eligibleReleases (channel: ChannelVersions, _deployment: Deployment, _now: number): readonly string[] {
  return channel.active
}

/**
 * A deployment outside every partial rollout, running `applied`: whom GET /channels/:name/path
 * describes the channel for. It has no license, so no cohort puts it early.
 */
export function outsiderDeployment (channel: string, applied: string): Deployment {
  return { id: null, license: null, channel, applied, lastServed: null, pinned: null }
}

/**
 * The version the deployment gets: the pinned one when it is in the channel, else the next
 * hop among its eligible releases from the version it runs. Returns a version rather than a
 * compiled spec, so the decision stays pure; the spec cache compiles (or reads) that
 * version's spec. `now` (ms) is for time-based rollouts. Throws NO_UPGRADE_PATH (409) when
 * nothing it may move to admits the version it runs.
 */
export function selectSpec (channel: ChannelVersions, deployment: Deployment, now: number): string {
  const pinned = deployment.pinned
  if (pinned !== null) {
    if (channel.head?.version === pinned || channel.active.includes(pinned)) return pinned
    throw new ChartcastError('RELEASE_NOT_FOUND', `release ${pinned} is not in channel "${channel.name}"`)
  }
  if (channel.head === null) throw new ChartcastError('CHANNEL_EMPTY', `channel "${channel.name}" has no release yet`)
  const eligible = eligibleReleases(channel, deployment, now)
  if (eligible.length === 0) throw new ChartcastError('CHANNEL_EMPTY', `channel "${channel.name}" has no release for this deployment yet`)
  const hop = memoisedNextHop(eligible, channel.memberships, effectiveApplied(deployment))
  if (hop.kind === 'no-path') throw noUpgradePathError(channel.name, hop)
  return hop.version
}
