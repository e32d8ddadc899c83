import { createHash } from 'node:crypto'
import { canonicalJson, layerValues, type Values } from '../domain/values.js'
import type { LocalInputs } from './inputs.js'
import type { ChannelSpec, ChartRef } from './spec.js'

/** What should be running: the result of layering local inputs over the channel spec. */
export interface DesiredState {
  channel: string
  /** Release version of the channel (not the chart version); the downgrade guard compares this. */
  version: string
  chart: ChartRef
  /** Merged values: carries secrets, never logged. */
  values: Values
  /** sha256 of canonicalJson({chart, values}); equal digest means nothing to apply. */
  digest: string
  /** The server marks this answer a sanctioned rollback (`metadata.rollback: "true"`); set only then. */
  rollback?: true
}

/**
 * Layers, lowest to highest: channel spec values, user values, CR values. Helm semantics via
 * mergeValues: maps merge recursively, arrays/scalars replace, null deletes.
 * A chart in the CR replaces the channel's chart whole (mixing a CR url with a channel
 * version would name a chart nobody published).
 */
export function computeDesired (spec: ChannelSpec, inputs: LocalInputs): DesiredState {
  const values = layerValues(spec.values, inputs.userValues, inputs.crValues)
  const chart = inputs.crChart ?? spec.chart
  const desired: DesiredState = { channel: spec.channel, version: spec.version, chart, values, digest: desiredDigest(chart, values) }
  if (spec.metadata?.rollback === 'true') desired.rollback = true
  return desired
}

export function desiredDigest (chart: ChartRef, values: Values): string {
  const normalizedChart: Values = { url: chart.url, version: chart.version }
  if (chart.name !== undefined) normalizedChart.name = chart.name
  return createHash('sha256').update(canonicalJson({ chart: normalizedChart, values })).digest('hex')
}
