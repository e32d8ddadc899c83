/** The one drizzle schema. Row types are inferred from it, never written twice. */
import { sql } from 'drizzle-orm'
import { bigint, bigserial, boolean, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core'
import type { AutoPause, Interval, RolloutStep } from '../domain/rollout.js'

export const releases = pgTable('releases', {
  version: text('version').primaryKey(),
  chartUrl: text('chart_url').notNull(),
  chartName: text('chart_name'),
  chartVersion: text('chart_version').notNull(),
  values: jsonb('values').$type<Record<string, unknown>>().notNull(),
  notes: text('notes'),
  // sha256 of the canonical content: an identical re-publish is recognised by it.
  digest: text('digest').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  createdBy: text('created_by').notNull()
})

export const channels = pgTable('channels', {
  name: text('name').primaryKey(),
  description: text('description').notNull().default(''),
  values: jsonb('values').$type<Record<string, unknown>>().notNull(),
  accepts: text('accepts'),
  pollInterval: text('poll_interval'),
  updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  // The channel file (base name in CHANNELS_DIR) that defines this channel; null when the API does.
  managedByFile: text('managed_by_file'),
  // Bumped by every transaction that changes what the channel serves: replicas install a
  // channel state only when its revision is newer than the one they hold.
  revision: integer('revision').notNull().default(1)
})

/**
 * Current membership of a release in a channel: the projection of channel_events that the
 * head is chosen from. Promotion and withdrawal update `state` under the row lock, so
 * concurrent requests for the same pair serialise here.
 */
export const channelReleases = pgTable('channel_releases', {
  channel: text('channel').notNull().references(() => channels.name),
  version: text('version').notNull().references(() => releases.version),
  state: text('state', { enum: ['active', 'withdrawn'] }).notNull(),
  promotedAt: timestamp('promoted_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  promotedBy: text('promoted_by').notNull(),
  // Withdrawn with `rollback=true`: deployments that run it are told the fallback is a
  // sanctioned rollback. Cleared by a new promotion.
  rollback: boolean('rollback').notNull().default(false)
}, (table) => [primaryKey({ columns: [table.channel, table.version] })])

/**
 * Staged rollouts (src/domain/rollout.ts): one per promotion that asked for one. A withdrawal
 * ends it (`ended`); at most one rollout of a channel and version is not ended.
 */
export const rollouts = pgTable('rollouts', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  channel: text('channel').notNull().references(() => channels.name),
  version: text('version').notNull().references(() => releases.version),
  steps: jsonb('steps').$type<RolloutStep[]>().notNull(),
  // Null: no automatic pause.
  autoPause: jsonb('auto_pause').$type<AutoPause>(),
  startedAt: timestamp('started_at', { withTimezone: true, mode: 'date' }).notNull(),
  startedBy: text('started_by').notNull(),
  state: text('state', { enum: ['rolling', 'paused', 'complete', 'ended'] }).notNull(),
  // Every pause as {from, to} in ms since the epoch; the current one (when paused) has to: null.
  pauses: jsonb('pauses').$type<Interval[]>().notNull(),
  pausedReason: text('paused_reason'),
  pausedBy: text('paused_by'),
  endedAt: timestamp('ended_at', { withTimezone: true, mode: 'date' })
}, (table) => [
  uniqueIndex('rollouts_current_idx').on(table.channel, table.version).where(sql`state <> 'ended'`)
])

/**
 * Channel freezes, one row each: in force from `at` until `until` (by itself) or `ended_at`
 * (lifted, or replaced by a new freeze), whichever comes first.
 */
export const channelFreezes = pgTable('channel_freezes', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  channel: text('channel').notNull().references(() => channels.name),
  reason: text('reason').notNull(),
  at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull(),
  until: timestamp('until', { withTimezone: true, mode: 'date' }),
  by: text('by').notNull(),
  endedAt: timestamp('ended_at', { withTimezone: true, mode: 'date' }),
  endedBy: text('ended_by')
}, (table) => [index('channel_freezes_channel_idx').on(table.channel, table.id)])

/** Promotion and withdrawal history: append-only. */
export const channelEvents = pgTable('channel_events', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  channel: text('channel').notNull().references(() => channels.name),
  version: text('version').notNull().references(() => releases.version),
  action: text('action', { enum: ['promote', 'withdraw'] }).notNull(),
  actor: text('actor').notNull(),
  reason: text('reason'),
  at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull().defaultNow()
}, (table) => [index('channel_events_channel_idx').on(table.channel, table.id)])

export const revocations = pgTable('revocations', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  jti: text('jti'),
  sub: text('sub'),
  reason: text('reason').notNull(),
  actor: text('actor').notNull(),
  at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull().defaultNow()
})

/**
 * Lifting a license revocation: revocations are append-only, so a lift is a row of its own
 * (append-only too). A revocation without a lift is in force; each can be lifted once.
 */
export const revocationLifts = pgTable('revocation_lifts', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  revocationId: bigint('revocation_id', { mode: 'number' }).notNull().unique().references(() => revocations.id),
  reason: text('reason').notNull(),
  actor: text('actor').notNull(),
  at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull().defaultNow()
})

/** Revoked publisher tokens, by jti: append-only, and a token is revoked for good. */
export const tokenRevocations = pgTable('token_revocations', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  jti: text('jti').notNull().unique(),
  reason: text('reason').notNull(),
  actor: text('actor').notNull(),
  at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull().defaultNow()
})

/**
 * Dashboard sessions ended by logout, by session id, until the session would have expired
 * anyway (then the row may go: the sealed cookie is refused by its own exp).
 */
export const sessionRevocations = pgTable('session_revocations', {
  sid: text('sid').primaryKey(),
  expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
  actor: text('actor').notNull(),
  at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull().defaultNow()
})

/** Who did what, when, to what: one row per acknowledged mutation, written in its transaction. */
export const auditLog = pgTable('audit_log', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  actor: text('actor').notNull(),
  action: text('action').notNull(),
  target: text('target').notNull(),
  detail: jsonb('detail').$type<Record<string, unknown>>().notNull(),
  // Hash chain (src/domain/audit-chain.ts): null only on rows written before migration 0003.
  prevHash: text('prev_hash'),
  hash: text('hash')
}, (table) => [
  // Two rows naming one predecessor would be a fork: refused even if the chain lock were bypassed.
  uniqueIndex('audit_log_prev_hash_unique').on(table.prevHash)
])

/**
 * The end of the audit hash chain: one row (id 1), locked FOR UPDATE by every audit write, so
 * appends are serialised across connections and replicas, and read by `chartcast audit verify`
 * to notice rows removed from the end.
 */
export const auditChainHead = pgTable('audit_chain_head', {
  id: integer('id').primaryKey(),
  // The id of the last audit row, chained or (before the first chained row) not.
  lastId: bigint('last_id', { mode: 'number' }).notNull(),
  lastHash: text('last_hash').notNull(),
  // The last row's `at`: the next row's is never earlier.
  lastAt: timestamp('last_at', { withTimezone: true, mode: 'date' }).notNull()
})

/**
 * The fleet: one row per deployment (license `sub`), written by the check-in flusher
 * (src/services/checkin-recorder.ts). Several replicas upsert it; the newest `last_seen_at`
 * wins for the check-in columns and the newest `last_report_at` for the report columns.
 */
export const deployments = pgTable('deployments', {
  id: text('id').primaryKey(),
  channel: text('channel').notNull(),
  appliedVersion: text('applied_version'),
  // Null only for a deployment known from a report before any pull reached the database.
  servedVersion: text('served_version'),
  lastSeenAt: timestamp('last_seen_at', { withTimezone: true, mode: 'date' }).notNull(),
  agent: text('agent'),
  address: text('address'),
  lastReportVersion: text('last_report_version'),
  lastReportOutcome: text('last_report_outcome', { enum: ['applied', 'failed', 'skipped'] }),
  lastReportDetail: text('last_report_detail'),
  lastReportAt: timestamp('last_report_at', { withTimezone: true, mode: 'date' })
}, (table) => [
  index('deployments_last_seen_idx').on(table.lastSeenAt, table.id),
  index('deployments_channel_idx').on(table.channel)
])

/** Apply reports from agents: append-only, pruned after REPORT_RETENTION (migration 0005's trigger). */
export const reports = pgTable('reports', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  deploymentId: text('deployment_id').notNull(),
  channel: text('channel').notNull(),
  version: text('version').notNull(),
  outcome: text('outcome', { enum: ['applied', 'failed', 'skipped'] }).notNull(),
  detail: text('detail'),
  digest: text('digest'),
  at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull()
}, (table) => [
  index('reports_deployment_idx').on(table.deploymentId, table.at),
  index('reports_at_idx').on(table.at),
  // Automatic rollout pauses count each deployment's latest report per channel and version.
  index('reports_channel_version_idx').on(table.channel, table.version, table.deploymentId, table.at)
])

export type ReleaseRow = typeof releases.$inferSelect
export type ChannelRow = typeof channels.$inferSelect
export type ChannelReleaseRow = typeof channelReleases.$inferSelect
export type ChannelEventRow = typeof channelEvents.$inferSelect
export type RevocationRow = typeof revocations.$inferSelect
export type RevocationLiftRow = typeof revocationLifts.$inferSelect
export type TokenRevocationRow = typeof tokenRevocations.$inferSelect
export type SessionRevocationRow = typeof sessionRevocations.$inferSelect
export type AuditRow = typeof auditLog.$inferSelect
export type AuditChainHeadRow = typeof auditChainHead.$inferSelect
export type DeploymentRow = typeof deployments.$inferSelect
export type ReportRow = typeof reports.$inferSelect
export type RolloutRow = typeof rollouts.$inferSelect
export type ChannelFreezeRow = typeof channelFreezes.$inferSelect
