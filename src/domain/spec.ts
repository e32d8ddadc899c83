/**
 * Compiling the spec an operator receives. The body is a pure function of the channel
 * settings and the release: canonical JSON, no timestamps, so an unchanged channel yields
 * byte-identical bodies and the same strong ETag (RFC 9110 8.8.3) on every replica.
 */
import { createHash } from 'node:crypto'
import type { ChartRef } from '../schemas.js'
import { parseDuration } from './duration.js'
import { canonicalJson, mergeValues, type Values } from './values.js'

export interface SpecChannel {
  name: string
  values: Values
  pollInterval: string | null
}

export interface SpecRelease {
  version: string
  chart: ChartRef
  values: Values
}

export interface CompiledSpec {
  channel: string
  version: string
  /** `GET /channels/:name/spec` body. */
  body: string
  etag: string
  /** W&B operator body: `{chart, values, metadata}`. */
  operatorBody: string
  operatorEtag: string
  pollIntervalSeconds: number | null
}

export function specMetadata (channel: SpecChannel, release: SpecRelease): Record<string, string> {
  const metadata: Record<string, string> = { channel: channel.name, version: release.version, chartVersion: release.chart.version }
  if (channel.pollInterval !== null) metadata.pollInterval = channel.pollInterval
  return metadata
}

/**
 * `extra` metadata marks one answer of the release, such as `rollback: "true"` for a sanctioned
 * rollback: a different body, so a different ETag from the plain answer.
 */
export function compileSpec (channel: SpecChannel, release: SpecRelease, extra?: Record<string, string>): CompiledSpec {
  const values = mergeValues(channel.values, release.values)
  const metadata = extra === undefined ? specMetadata(channel, release) : { ...specMetadata(channel, release), ...extra }
  const body = canonicalJson({ channel: channel.name, version: release.version, chart: release.chart, values, metadata })
  const operatorBody = canonicalJson({ chart: release.chart, values, metadata })
  const intervalMs = channel.pollInterval === null ? null : parseDuration(channel.pollInterval)
  return {
    channel: channel.name,
    version: release.version,
    body,
    etag: strongEtag(body),
    operatorBody,
    operatorEtag: strongEtag(operatorBody),
    pollIntervalSeconds: intervalMs === null ? null : Math.max(1, Math.round(intervalMs / 1000))
  }
}

export function strongEtag (body: string): string {
  return '"' + createHash('sha256').update(body).digest('base64url').slice(0, 32) + '"'
}

/** RFC 9110 13.1.2: If-None-Match is a list of entity tags or "*"; weak comparison applies. */
export function ifNoneMatchHits (header: string | undefined, etag: string): boolean {
  if (header === undefined || header === '') return false
  // What a poller sends back: exactly the ETag it got. No splitting or trimming for that.
  if (header === etag) return true
  if (header.trim() === '*') return true
  for (const candidate of header.split(',')) {
    const tag = candidate.trim().replace(/^W\//, '')
    if (tag === etag) return true
  }
  return false
}
