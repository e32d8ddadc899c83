/**
 * The one chart-reference rule, shared by the server (publish) and the agent (spec bodies,
 * spec files, bundles, a CR's spec.chart). Both used to check charts with different rules;
 * now a reference the server stores is exactly a reference the agent accepts.
 *
 * A chart reference ends up as helm arguments. They are passed as an argv array (no shell),
 * but helm itself still parses flags, so nothing may start with `-` and no part may hold
 * whitespace or control characters.
 */
import type { ChartRef } from '../schemas.js'

export const CHART_URL_MAX = 2048
export const CHART_NAME_MAX = 253
export const CHART_VERSION_MAX = 128
export const CHART_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]*$'
/** sha256 of the chart archive (.tgz), or the OCI manifest digest; lower-case hex, one spelling per digest. */
export const CHART_DIGEST_PATTERN = '^sha256:[0-9a-f]{64}$'

/*
 * One exact chart version: SemVer 2.0.0 (the regular expression of semver.org), with the
 * optional leading "v" that Helm accepts in Chart.yaml and that real charts use
 * (cert-manager publishes v1.14.4). A range (^1.2, ~1.2.0, >=1, 1.x, 1.2) would let one
 * immutable release resolve to different charts over time, so it is refused.
 */
const EXACT_CHART_VERSION = /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/
const RANGE_SIGNS = /[\^~<>=*|, ]|(^|\.)[xX](\.|$)/
const CHART_NAME = new RegExp(CHART_NAME_PATTERN)
const CHART_DIGEST = new RegExp(CHART_DIGEST_PATTERN)

/** Why a chart reference was refused; callers turn it into their own error (400, unusable spec, config error). */
export class ChartRefError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'ChartRefError'
  }
}

function hasUnsafeCharacter (text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c <= 0x20 || c === 0x7f) return true
  }
  return false
}

export function isExactChartVersion (version: string): boolean {
  return EXACT_CHART_VERSION.test(version)
}

/** A chart version that names one chart, or a ChartRefError that says why not. */
export function checkChartVersion (version: unknown): string {
  if (typeof version !== 'string' || version === '') throw new ChartRefError('chart.version must be a non-empty string')
  if (version.length > CHART_VERSION_MAX) throw new ChartRefError(`chart.version is longer than ${CHART_VERSION_MAX} characters`)
  if (isExactChartVersion(version)) return version
  if (RANGE_SIGNS.test(version) || /^v?\d+(\.\d+)?$/.test(version)) {
    throw new ChartRefError(`chart.version "${version}" is a range; a release names one exact chart version (e.g. 1.2.0), so that it always resolves to the same chart`)
  }
  throw new ChartRefError(`chart.version "${version}" is not an exact chart version (SemVer MAJOR.MINOR.PATCH, e.g. 1.2.0 or 1.2.0-rc.1)`)
}

export function checkChartDigest (digest: unknown): string {
  if (typeof digest !== 'string' || !CHART_DIGEST.test(digest)) {
    throw new ChartRefError('chart.digest must be "sha256:" followed by 64 lower-case hex digits (the sha256 of the chart archive, or the OCI manifest digest)')
  }
  return digest
}

/**
 * Checks a chart reference from any source and returns it normalised: only the known keys,
 * `name` and `digest` present only when given, in a fixed order. Unknown keys are refused,
 * so a misspelt `digets` cannot silently publish a chart without its digest.
 */
export function checkChartRef (raw: unknown): ChartRef {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ChartRefError('chart must be an object with url, name and version')
  const record = raw as Record<string, unknown>
  const unknownKey = Object.keys(record).find((key) => !['url', 'name', 'version', 'digest'].includes(key))
  if (unknownKey !== undefined) throw new ChartRefError(`chart has the unknown key "${unknownKey}" (allowed: url, name, version, digest)`)
  const { url, name, version, digest } = record

  if (typeof url !== 'string' || url === '') throw new ChartRefError('chart.url must be a non-empty URL')
  if (url.length > CHART_URL_MAX) throw new ChartRefError(`chart.url is longer than ${CHART_URL_MAX} characters`)
  if (hasUnsafeCharacter(url)) throw new ChartRefError('chart.url must not contain whitespace or control characters')
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new ChartRefError(`chart.url "${url}" is not a URL`)
  }
  if (!['http:', 'https:', 'oci:'].includes(parsed.protocol)) {
    throw new ChartRefError(`chart.url must start with http://, https:// or oci://, got "${parsed.protocol}"`)
  }
  if (parsed.hostname === '') throw new ChartRefError('chart.url has no host')
  if (parsed.username !== '' || parsed.password !== '') {
    throw new ChartRefError('chart.url must not carry credentials; configure registry access on the cluster instead')
  }

  if (name !== undefined && name !== null) {
    if (typeof name !== 'string' || name.length > CHART_NAME_MAX || !CHART_NAME.test(name)) {
      throw new ChartRefError('chart.name must be a chart name (letters, digits, . _ -; starting with a letter or digit)')
    }
  }
  if (parsed.protocol !== 'oci:' && (typeof name !== 'string' || name === '')) {
    throw new ChartRefError(`chart.name is required for an ${parsed.protocol.slice(0, -1)} chart repository`)
  }

  const exactVersion = checkChartVersion(version)
  const checkedDigest = digest === undefined || digest === null ? undefined : checkChartDigest(digest)
  // Keys in one order (url, name, version, digest), and name/digest only when given.
  const chart: ChartRef = typeof name === 'string' && name !== '' ? { url, name, version: exactVersion } : { url, version: exactVersion }
  if (checkedDigest !== undefined) chart.digest = checkedDigest
  return chart
}
