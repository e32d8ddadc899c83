/** Rules for channels: which release is the head, which versions a channel accepts. */
import semver from 'semver'
import { ChartcastError } from '../errors.js'
import { isDuration } from './duration.js'

export interface Membership {
  version: string
  withdrawn: boolean
}

/**
 * The head of a channel is the highest release (SemVer 2.0.0 precedence, section 11)
 * promoted into it and not withdrawn; promotion order and time do not matter.
 */
export function selectChannelHead (memberships: Iterable<Membership>): string | null {
  let head: string | null = null
  for (const m of memberships) {
    if (m.withdrawn) continue
    if (head === null || semver.gt(m.version, head)) head = m.version
  }
  return head
}

/** Sorts versions highest first. */
export function sortVersionsDescending (versions: string[]): string[] {
  return [...versions].sort(semver.rcompare)
}

/** `accepts` is a semver range; prereleases are accepted only where the range names them (node-semver's rule). */
export function checkAcceptsRange (range: string): string {
  if (semver.validRange(range) === null) {
    throw new ChartcastError('VALIDATION_FAILED', `accepts "${range}" is not a semver range (e.g. ">=1.0.0 <2.0.0")`)
  }
  return range
}

export function checkPollInterval (text: string): string {
  if (!isDuration(text)) throw new ChartcastError('VALIDATION_FAILED', `pollInterval "${text}" is not a duration (e.g. 30s, 15m, 1h)`)
  return text
}

export function channelAccepts (range: string | null, version: string): boolean {
  return range === null || semver.satisfies(version, range)
}

export function assertChannelAccepts (channel: string, range: string | null, version: string): void {
  if (!channelAccepts(range, version)) {
    throw new ChartcastError('VERSION_NOT_ACCEPTED', `channel "${channel}" accepts "${range}", which ${version} does not satisfy`)
  }
}
