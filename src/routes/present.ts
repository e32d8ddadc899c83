/** Rows to API shapes: dates as ISO strings, charts as one object. */
import type { Static } from 'typebox'
import { chartOf } from '../db/store.js'
import type { AuditRow, ChannelEventRow, ChannelRow, ReleaseRow, RevocationRow } from '../db/schema.js'
import type { AuditEntry, Channel, ChannelEvent, Release, Revocation } from '../schemas.js'
import type { RevocationLiftRow, TokenRevocationRow } from '../db/schema.js'
import type { RevocationLift, TokenRevocation } from '../schemas.js'

export function presentRelease (row: ReleaseRow): Release {
  return { version: row.version, chart: chartOf(row), values: row.values, notes: row.notes, digest: row.digest, upgradeFrom: row.upgradeFrom, createdAt: row.createdAt.toISOString(), createdBy: row.createdBy }
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
