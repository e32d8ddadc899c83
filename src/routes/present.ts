/** Rows to API shapes: dates as ISO strings, charts as one object. */
import type { Static } from 'typebox'
import { chartOf } from '../db/store.js'
import type { AuditRow, ChannelEventRow, ChannelRow, ReleaseRow, RevocationRow } from '../db/schema.js'
import type { AuditEntry, Channel, ChannelEvent, Release, Revocation } from '../schemas.js'
import type { RevocationLiftRow, TokenRevocationRow } from '../db/schema.js'
import type { RevocationLift, TokenRevocation } from '../schemas.js'
import type { RolloutView } from '../db/store.js'
import type { ChannelFreezeRow } from '../db/schema.js'
import type { Freeze, Rollout } from '../schemas.js'
import { compileRollout, nextStepAt, rolloutPercent, rolloutPhase } from '../domain/rollout.js'

export function presentRelease (row: ReleaseRow): Release {
  return { version: row.version, chart: chartOf(row), values: row.values, notes: row.notes, digest: row.digest, createdAt: row.createdAt.toISOString(), createdBy: row.createdBy }
}

export function presentChannel (row: ChannelRow, head: string | null): Channel {
  return {
    name: row.name,
    description: row.description,
    values: row.values,
    accepts: row.accepts,
    pollInterval: row.pollInterval,
    head,
    updatedAt: row.updatedAt.toISOString(),
    managedBy: row.managedByFile === null ? null : { file: row.managedByFile },
    revision: row.revision
  }
}

export function presentChannelEvent (row: ChannelEventRow): Static<typeof ChannelEvent> {
  return { id: row.id, channel: row.channel, version: row.version, action: row.action, actor: row.actor, reason: row.reason, at: row.at.toISOString() }
}

export function presentRevocation (row: RevocationRow, lift: RevocationLiftRow | null = null): Static<typeof Revocation> {
  return { id: row.id, jti: row.jti, sub: row.sub, reason: row.reason, actor: row.actor, at: row.at.toISOString(), lifted: lift === null ? null : presentRevocationLift(lift) }
}

export function presentRevocationLift (row: RevocationLiftRow): Static<typeof RevocationLift> {
  return { id: row.id, revocationId: row.revocationId, reason: row.reason, actor: row.actor, at: row.at.toISOString() }
}

export function presentTokenRevocation (row: TokenRevocationRow): Static<typeof TokenRevocation> {
  return { id: row.id, jti: row.jti, reason: row.reason, actor: row.actor, at: row.at.toISOString() }
}

export function presentAudit (row: AuditRow): Static<typeof AuditEntry> {
  return { id: row.id, at: row.at.toISOString(), actor: row.actor, action: row.action, target: row.target, detail: row.detail }
}

/** A rollout as of `now` (ms): its phase and percent are computed, not stored. */
export function presentRollout (view: RolloutView, now: number): Rollout {
  const state = compileRollout(view.record, view.freezes)
  const phase = rolloutPhase(state, now)
  const next = nextStepAt(state, now)
  const pause = phase === 'paused' ? view.record.pauses.at(-1) : undefined
  return {
    version: view.row.version,
    state: phase,
    percent: rolloutPercent(state, now),
    steps: view.row.steps.map((s) => ({ percent: s.percent, after: s.after })),
    startedAt: view.row.startedAt.toISOString(),
    nextStepAt: next === null ? null : new Date(next).toISOString(),
    pausedAt: pause === undefined ? null : new Date(pause.from).toISOString(),
    pausedReason: phase === 'paused' ? view.row.pausedReason : null,
    autoPause: view.row.autoPause,
    reports: { applied: view.counts.applied, failed: view.counts.failed }
  }
}

export function presentFreeze (row: ChannelFreezeRow): Freeze {
  return { reason: row.reason, until: row.until?.toISOString() ?? null, at: row.at.toISOString(), by: row.by }
}
