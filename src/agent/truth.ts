/**
 * What runs, as the cluster (or the dir applier's output) tells it, not as a local file
 * remembers it. The state directory is only a cache of this: a lost volume, a new pod or a
 * second agent must reach the same decisions (downgrade guard, digest comparison,
 * anti-rollback) from these facts alone.
 */

/**
 * The facts chartcast records on each release it applies. `version` and `digest` are always
 * there; other keys are open for features that need to survive with the release (for
 * example the chart digest, or the highest signed revision seen on the channel). Keys are
 * camelCase words, values any string (percent-encoded when recorded).
 */
export interface ChartcastFacts {
  /** The channel's release version (not the chart version); the downgrade guard compares it. */
  version: string
  /** Digest of the layered desired state (see desired.ts). */
  digest: string
  /** Chart version applied, for humans reading `helm history`. */
  chartVersion?: string
  [key: string]: string | undefined
}

/** Helm's release statuses (pkg/release/status.go), plus `absent` for "no such release". */
export type ReleaseStatus =
  | 'absent'
  | 'deployed'
  | 'failed'
  | 'superseded'
  | 'uninstalled'
  | 'uninstalling'
  | 'pending-install'
  | 'pending-upgrade'
  | 'pending-rollback'
  | 'unknown'

export interface ObservedRelease {
  /** Status of the newest revision; `absent` when the release does not exist. */
  status: ReleaseStatus
  /** Newest revision number (helm), if any. */
  revision?: number
  /** When the newest revision was last updated (ms since the epoch), for the age of a pending operation. */
  updatedAt?: number
  /**
   * What chartcast recorded on the revision that runs now. Undefined when nothing runs, or
   * what runs was not applied by chartcast (or its record fell out of Helm's history).
   */
  running?: ChartcastFacts
  /** The revision `helm rollback` should return to when the newest one is stuck pending. */
  rollbackTo?: number
}

export const PENDING_STATUSES: ReadonlySet<ReleaseStatus> = new Set(['pending-install', 'pending-upgrade', 'pending-rollback'])

export function isPending (status: ReleaseStatus): boolean {
  return PENDING_STATUSES.has(status)
}

const KNOWN_STATUSES: ReadonlySet<string> = new Set<ReleaseStatus>(['absent', 'deployed', 'failed', 'superseded', 'uninstalled', 'uninstalling', 'pending-install', 'pending-upgrade', 'pending-rollback', 'unknown'])

export function toReleaseStatus (text: unknown): ReleaseStatus {
  return typeof text === 'string' && KNOWN_STATUSES.has(text) ? text as ReleaseStatus : 'unknown'
}

/** Prefix of the Helm release description that carries the facts. */
export const FACTS_PREFIX = 'chartcast:'
const FACT_KEY = /^[a-z][A-Za-z0-9]{0,39}$/

/**
 * `chartcast: version=1.5.0 digest=ab12… chartVersion=0.5.0`: one line, keys sorted,
 * values percent-encoded so no value can break the line apart. Written as the Helm release
 * description (`helm upgrade --description`), which `helm history -o json` prints.
 */
export function encodeFacts (facts: ChartcastFacts): string {
  const parts: string[] = []
  for (const key of Object.keys(facts).sort()) {
    const value = facts[key]
    if (value === undefined) continue
    if (!FACT_KEY.test(key)) throw new Error(`fact key "${key}" is not a camelCase word`)
    parts.push(`${key}=${encodeURIComponent(value)}`)
  }
  return `${FACTS_PREFIX} ${parts.join(' ')}`
}

/** The facts of a description written by encodeFacts; undefined for any other description. */
export function decodeFacts (description: unknown): ChartcastFacts | undefined {
  if (typeof description !== 'string' || !description.startsWith(FACTS_PREFIX)) return undefined
  const facts: Record<string, string> = {}
  for (const part of description.slice(FACTS_PREFIX.length).trim().split(/\s+/)) {
    const eq = part.indexOf('=')
    if (eq <= 0) continue
    const key = part.slice(0, eq)
    if (!FACT_KEY.test(key)) continue
    try {
      facts[key] = decodeURIComponent(part.slice(eq + 1))
    } catch {
      return undefined
    }
  }
  if (facts.version === undefined || facts.version === '' || facts.digest === undefined || !/^[0-9a-f]{64}$/.test(facts.digest)) return undefined
  return facts as ChartcastFacts
}

/**
 * Kubernetes label values: at most 63 characters of [A-Za-z0-9._-], starting and ending
 * alphanumeric. Used for the labels put on the Helm release so releases can be selected
 * (`helm list -l chartcast.io/version=1.5.0`); the exact facts are in the description.
 */
export function labelValue (text: string): string {
  const cleaned = text.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 63).replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '')
  return cleaned === '' ? 'none' : cleaned
}
