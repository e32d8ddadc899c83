import { checkChartRef, ChartRefError } from '../domain/chart-ref.js'
import { findForbiddenKey, isPlainObject, type Values } from '../domain/values.js'
import type { ChartRef } from '../schemas.js'
import { ConfigError } from './errors.js'

/** Where a chart comes from (the server's type; for `oci://` the name may be folded into the url). */
export type { ChartRef }

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

/**
 * Validates a chart reference with the rule the server publishes by (src/domain/chart-ref.ts:
 * safe helm arguments, one exact version, an optional digest); `where` names the source in the
 * message. Throws `make(msg)` so callers choose the error class (a bad server body is not the
 * operator's config error).
 */
export function parseChart (raw: unknown, where: string, make: (msg: string) => Error): ChartRef {
  try {
    return checkChartRef(raw)
  } catch (err) {
    if (err instanceof ChartRefError) throw make(`${where}: ${err.message}`)
    throw err
  }
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
