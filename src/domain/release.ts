/** Rules for releases: what a version may look like, where a chart may live, when two releases are the same. */
import { createHash } from 'node:crypto'
import semver from 'semver'
import { ChartcastError } from '../errors.js'
import { checkChartRef, ChartRefError } from './chart-ref.js'
import type { ChartRef, ReleaseInput } from '../schemas.js'
import { checkUpgradeFromRange } from './upgrade-path.js'
import { canonicalJson, findForbiddenKey, type Values } from './values.js'

/**
 * A release version is a strict SemVer 2.0.0 string, written exactly as it will be compared:
 * no "v" prefix, no leading zeros, no shorthand like "1.0". Build metadata ("+abc") is refused
 * too: SemVer precedence ignores it, so 1.0.0+a and 1.0.0+b could not be ordered in a channel.
 */
export function checkVersion (version: string): string {
  const parsed = semver.valid(version)
  // semver.valid drops build metadata, so "+..." must be recognised before the round-trip check.
  if (parsed !== null && version.includes('+') && version.slice(0, version.indexOf('+')) === parsed) {
    throw new ChartcastError('VALIDATION_FAILED', `version "${version}" carries build metadata, which semver precedence ignores; publish it without "+..."`)
  }
  if (parsed === null || parsed !== version) {
    throw new ChartcastError('VALIDATION_FAILED', `version "${version}" is not a strict semantic version (expected MAJOR.MINOR.PATCH, e.g. 1.4.0 or 2.0.0-rc.1)`)
  }
  return version
}

/**
 * Charts come from an http(s) chart repository or an OCI registry (no file:, no javascript:),
 * name one exact chart version, and may pin the archive by digest: the shared rule of
 * src/domain/chart-ref.ts, as a 400 here.
 */
export function checkChart (chart: unknown): ChartRef {
  try {
    return checkChartRef(chart)
  } catch (error) {
    if (error instanceof ChartRefError) throw new ChartcastError('VALIDATION_FAILED', error.message)
    throw error
  }
}

export function checkValues (values: unknown, where: string): Values {
  if (values === null || typeof values !== 'object' || Array.isArray(values)) {
    throw new ChartcastError('VALIDATION_FAILED', `${where} must be a map`)
  }
  const forbidden = findForbiddenKey(values)
  if (forbidden !== null) throw new ChartcastError('FORBIDDEN_KEY', `${where} contains the key "${forbidden}", which is not allowed`)
  return values as Values
}

export interface NormalisedRelease {
  version: string
  chart: ChartRef
  values: Values
  notes: string | null
  /** The versions it can be reached from (a semver range); null: from any. */
  upgradeFrom: string | null
  digest: string
}

/** Validates a publish request and computes the content digest that identifies it. */
export function normaliseRelease (input: ReleaseInput): NormalisedRelease {
  const version = checkVersion(input.version)
  const chart = checkChart(input.chart)
  const values = checkValues(input.values ?? {}, 'values')
  const notes = input.notes ?? null
  const upgradeFrom = input.upgradeFrom === undefined ? null : checkUpgradeFromRange(input.upgradeFrom)
  return { version, chart, values, notes, upgradeFrom, digest: releaseDigest(version, chart, values, notes, upgradeFrom) }
}

/**
 * `upgradeFrom` is part of the content (immutable like the rest), but only when set: the
 * digests of releases published before it existed stay what they were, so re-publishing one
 * of them identically is still recognised as identical.
 */
export function releaseDigest (version: string, chart: ChartRef, values: Values, notes: string | null, upgradeFrom: string | null = null): string {
  const content = upgradeFrom === null ? { version, chart, values, notes } : { version, chart, values, notes, upgradeFrom }
  return 'sha256:' + createHash('sha256').update(canonicalJson(content)).digest('hex')
}

/**
 * One page of items ordered by version, highest first: those below `before` (the previous
 * page's last version), at most `limit`. `nextBefore` is null on the last page.
 */
export function pageByVersion<T extends { version: string }> (items: T[], before: string | null, limit: number): { page: T[], nextBefore: string | null } {
  const below = before === null ? items : items.filter((item) => semver.lt(item.version, before))
  const sorted = [...below].sort((a, b) => semver.rcompare(a.version, b.version))
  const page = sorted.slice(0, limit)
  return { page, nextBefore: sorted.length > limit ? page[page.length - 1]!.version : null }
}
