import { findForbiddenKey, isPlainObject, type Values } from '../domain/values.js'
import { ConfigError } from './errors.js'

/** Where a chart comes from. For `oci://` the name may be folded into the url. */
export interface ChartRef {
  url: string
  name?: string
  version: string
}

/** The 200 body of `GET /channels/{name}/spec` (also the shape of a `--from-file` spec). */
export interface ChannelSpec {
  channel: string
  version: string
  chart: ChartRef
  values: Values
  metadata?: Values
}

export class InvalidSpecError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'InvalidSpecError'
  }
}

/*
 * Chart coordinates end up as helm arguments. They are passed as an argv array (no shell),
 * but helm itself still parses flags, so a "name" like `--post-renderer=/x` from a
 * compromised server or a typo'd CR must never reach it: nothing may start with `-`,
 * and whitespace/control characters are refused outright.
 */
const CHART_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/
const CHART_VERSION = /^[A-Za-z0-9~^=<>*][A-Za-z0-9.+_~^=<>*,| -]*$/

function isSafeText (text: string): boolean {
  if (text === '' || text.startsWith('-')) return false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c <= 0x20 || c === 0x7f) return false
  }
  return true
}

/**
 * Validates a chart reference; `where` names the source in the message. Throws `make(msg)`
 * so callers choose the error class (a bad server body is not the operator's config error).
 */
export function parseChart (raw: unknown, where: string, make: (msg: string) => Error): ChartRef {
  if (!isPlainObject(raw)) throw make(`${where}: chart must be an object with url, name and version`)
  const { url, name, version } = raw
  if (typeof url !== 'string' || !isSafeText(url)) throw make(`${where}: chart.url must be a non-empty URL`)
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw make(`${where}: chart.url "${url}" is not a URL`)
  }
  const scheme = parsed.protocol
  if (scheme !== 'http:' && scheme !== 'https:' && scheme !== 'oci:') {
    throw make(`${where}: chart.url must use http, https or oci (got ${scheme})`)
  }
  if (name !== undefined && name !== null && (typeof name !== 'string' || !CHART_NAME.test(name))) {
    throw make(`${where}: chart.name must be a chart name (letters, digits, . _ -)`)
  }
  if (scheme !== 'oci:' && (typeof name !== 'string' || name === '')) {
    throw make(`${where}: chart.name is required for an ${scheme.slice(0, -1)} chart repository`)
  }
  if (typeof version !== 'string' || !CHART_VERSION.test(version) || version.trim() !== version) {
    throw make(`${where}: chart.version must be a chart version`)
  }
  const chart: ChartRef = { url, version }
  if (typeof name === 'string' && name !== '') chart.name = name
  return chart
}

/** Validates the server/file spec body. Forbidden keys anywhere make it unusable. */
export function parseChannelSpec (raw: unknown, where: string): ChannelSpec {
  const bad = (msg: string): Error => new InvalidSpecError(msg)
  if (!isPlainObject(raw)) throw bad(`${where}: spec must be a JSON object`)
  const forbidden = findForbiddenKey(raw)
  if (forbidden !== null) throw bad(`${where}: key "${forbidden}" is not allowed`)
  const { channel, version, chart, values, metadata } = raw
  if (typeof channel !== 'string' || channel === '') throw bad(`${where}: spec.channel must be a string`)
  if (typeof version !== 'string' || version === '') throw bad(`${where}: spec.version must be a string`)
  if (values !== undefined && values !== null && !isPlainObject(values)) throw bad(`${where}: spec.values must be an object`)
  if (metadata !== undefined && metadata !== null && !isPlainObject(metadata)) throw bad(`${where}: spec.metadata must be an object`)
  const spec: ChannelSpec = {
    channel,
    version,
    chart: parseChart(chart, where, bad),
    values: isPlainObject(values) ? values : {}
  }
  if (isPlainObject(metadata)) spec.metadata = metadata
  return spec
}

/** Same validation, but for operator input (`--from-file`, CR chart): a configuration error. */
export function parseChartFromConfig (raw: unknown, where: string): ChartRef {
  return parseChart(raw, where, (msg) => new ConfigError(msg))
}

export function isOci (chart: ChartRef): boolean {
  return chart.url.startsWith('oci://')
}

/**
 * The chart argument helm needs: for oci the full reference (`url` alone when the name is
 * already in it, else `url/name`); for http(s) repositories the bare name, used with `--repo`.
 */
export function chartReference (chart: ChartRef): string {
  if (isOci(chart)) return chart.name === undefined ? chart.url : `${chart.url.replace(/\/+$/, '')}/${chart.name}`
  return chart.name ?? ''
}
