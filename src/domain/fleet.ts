/**
 * Fleet rules: what an apply report may say, and when a deployment counts as stale.
 */
import { parseDuration } from './duration.js'

export const REPORT_OUTCOMES = ['applied', 'failed', 'skipped'] as const
export type ReportOutcome = typeof REPORT_OUTCOMES[number]

/** A report's detail is helm's error text or the agent's reason: bounded, it is stored per report. */
export const MAX_REPORT_DETAIL = 4096

/** A channel without a poll interval: its deployments are stale after a day of silence. */
export const DEFAULT_STALE_AFTER_SECONDS = 24 * 3600

/**
 * Seconds of silence after which a deployment is stale: three missed polls, so one lost or
 * slow poll does not flag a healthy deployment. `pollInterval` is the channel's duration text.
 */
export function staleAfterSeconds (pollInterval: string | null): number {
  const ms = pollInterval === null ? null : parseDuration(pollInterval)
  return ms === null || ms === 0 ? DEFAULT_STALE_AFTER_SECONDS : Math.max(1, Math.round(ms / 1000)) * 3
}

/** Not seen for longer than the threshold. */
export function isStale (lastSeenMs: number, nowMs: number, thresholdSeconds: number): boolean {
  return nowMs - lastSeenMs > thresholdSeconds * 1000
}

export interface FleetCounts {
  total: number
  stale: number
  byApplied: Array<{ version: string, count: number }>
  byReport: Array<{ version: string, outcome: string | null, count: number }>
}

export type FleetByVersion = Record<string, { deployments: number, applied: number, failed: number }>

/**
 * Per version: deployments running it, and latest reports applying or failing it (the shape of
 * GET /channels/:name/fleet and of the dashboard's `fleet` event). A skipped apply is neither:
 * the deployment still runs what it ran.
 */
export function fleetByVersion (counts: FleetCounts): FleetByVersion {
  const byVersion: FleetByVersion = {}
  const entry = (version: string) => (byVersion[version] ??= { deployments: 0, applied: 0, failed: 0 })
  for (const { version, count } of counts.byApplied) entry(version).deployments += count
  for (const { version, outcome, count } of counts.byReport) {
    if (outcome === 'applied') entry(version).applied += count
    else if (outcome === 'failed') entry(version).failed += count
  }
  return byVersion
}
