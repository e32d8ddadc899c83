/**
 * Which release a deployment gets from a channel. Both spec endpoints ask this one function,
 * so the decision lives in one place (rollout cohorts and upgrade paths belong here too).
 */
import { ChartcastError } from '../errors.js'
import type { LicenseClaims } from './license.js'

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
}

/**
 * The version the deployment gets: the pinned one when it is in the channel, else the head.
 * Returns a version rather than a compiled spec, so the decision stays pure; the spec cache
 * compiles (or reads) that version's spec. `now` (ms) is for time-based rollouts.
 */
export function selectSpec (channel: ChannelVersions, deployment: Deployment, _now: number): string {
  const pinned = deployment.pinned
  if (pinned !== null) {
    if (channel.head?.version === pinned || channel.active.includes(pinned)) return pinned
    throw new ChartcastError('RELEASE_NOT_FOUND', `release ${pinned} is not in channel "${channel.name}"`)
  }
  if (channel.head === null) throw new ChartcastError('CHANNEL_EMPTY', `channel "${channel.name}" has no release yet`)
  return channel.head.version
}
