/**
 * The repository: every read and write the server makes, over either driver. Each mutation
 * runs in one transaction that also writes its audit row and, when it changes what replicas
 * hold in memory (channels, revocations), a NOTIFY, so the change, its audit trail and the
 * replicas' cache invalidation commit together or not at all. A publish notifies no one: a
 * release changes no spec until it is promoted.
 */
import { and, asc, desc, eq, getTableColumns, gt, isNotNull, isNull, lt, ne, notInArray, sql } from 'drizzle-orm'
import type { ChartRef } from '../schemas.js'
import { auditEntryHash, verifyAuditChain, type AuditChainReport, type StoredAuditRow } from '../domain/audit-chain.js'
import type { ChannelFileDefinition } from '../channel-loader.js'
import type { NormalisedRelease } from '../domain/release.js'
import { canonicalJson } from '../domain/values.js'
import { ChartcastError } from '../errors.js'
import { CHANGE_CHANNEL, type AppDatabase } from './index.js'
import type { ServedRow } from '../services/served-versions.js'
import {
  auditChainHead, auditLog, channelEvents, channelReleases, channels, releases, revocations,
  type AuditRow, type ChannelEventRow, type ChannelReleaseRow, type ChannelRow, type ReleaseRow, type RevocationRow
} from './schema.js'
import { revocationLifts, tokenRevocations, type RevocationLiftRow, type TokenRevocationRow } from './schema.js'
import { deployments, reports, type DeploymentRow, type ReportRow } from './schema.js'
import { channelFreezes, rollouts, type ChannelFreezeRow, type RolloutRow } from './schema.js'
import {
  autoPauseReason, compileRollout, rolloutPhase, shouldAutoPause,
  type FreezeRecord, type ReportCounts, type RolloutPlan, type RolloutRecord
} from '../domain/rollout.js'
import { sessionRevocations, type SessionRevocationRow } from './schema.js'

type Tx = Parameters<Parameters<AppDatabase['transaction']>[0]>[0]

/** What a NOTIFY says changed; replicas reload just that. */
export type ChangeNotice =
  | { kind: 'channel', name: string }
  | { kind: 'revocation' }
  | { kind: 'token-revocation' }
  /** Check-ins or reports were written for these channels (null: too many to name); only the dashboard's events listen. */
  | { kind: 'fleet', channels: string[] | null }
  | { kind: 'all' }

export function chartOf (row: ReleaseRow): ChartRef {
  const chart: ChartRef = row.chartName === null ? { url: row.chartUrl, version: row.chartVersion } : { url: row.chartUrl, name: row.chartName, version: row.chartVersion }
  // Absent, not null, without a digest: bodies of releases without one stay byte-identical.
  if (row.chartDigest !== null) chart.digest = row.chartDigest
  return chart
}

/** A NOTIFY payload must stay under 8,000 bytes: past this many channels, the notice names none (all). */
const MAX_FLEET_NOTICE_CHANNELS = 50

function fleetNoticeChannels (checkins: readonly { channel: string }[], reports: readonly { channel: string }[]): string[] | null {
  const names = new Set<string>()
  for (const row of checkins) names.add(row.channel)
  for (const row of reports) names.add(row.channel)
  return names.size > MAX_FLEET_NOTICE_CHANNELS ? null : [...names].sort()
}

async function notify (tx: Tx, notice: ChangeNotice): Promise<void> {
  await tx.execute(sql`select pg_notify(${CHANGE_CHANNEL}, ${JSON.stringify(notice)})`)
}

/**
 * A change to what a channel serves, inside the change's transaction: bumps its revision and
 * notifies the replicas. The channel row is locked FOR UPDATE by every caller first, so
 * revisions commit in the order they are taken.
 */
async function channelChanged (tx: Tx, name: string): Promise<void> {
  await tx.update(channels).set({ revision: sql`${channels.revision} + 1` }).where(eq(channels.name, name))
  await notify(tx, { kind: 'channel', name })
}

/** A membership as a replica installs it: with its release's upgradeFrom, for upgrade paths. */
export type ChannelMembershipRow = ChannelReleaseRow & { upgradeFrom: string | null }

/** A channel as a replica installs it: its row and memberships, read in one snapshot. */
export interface ChannelSnapshot {
  row: ChannelRow
  memberships: ChannelMembershipRow[]
  /** Its rollouts that are not ended, and the freezes that may have held them. */
  rollouts: RolloutRow[]
  freezes: ChannelFreezeRow[]
}

export function rolloutRecordOf (row: RolloutRow): RolloutRecord {
  return {
    version: row.version,
    steps: row.steps,
    autoPause: row.autoPause,
    startedAt: row.startedAt.getTime(),
    // An ended rollout is never compiled (the snapshot reads current ones only).
    state: row.state === 'ended' ? 'complete' : row.state,
    pauses: row.pauses,
    pausedReason: row.pausedReason
  }
}

export function freezeRecordOf (row: ChannelFreezeRow): FreezeRecord {
  return { reason: row.reason, at: row.at.getTime(), until: row.until?.getTime() ?? null, by: row.by, endedAt: row.endedAt?.getTime() ?? null }
}

/** The rollouts of one channel (or all) that are not ended. */
async function currentRollouts (tx: Tx, channel: string | null): Promise<RolloutRow[]> {
  const notEnded = sql`${rollouts.state} <> 'ended'`
  return await tx.select().from(rollouts).where(channel === null ? notEnded : and(eq(rollouts.channel, channel), notEnded)).orderBy(rollouts.id)
}

/**
 * The freezes that can have held any of these rollouts: those not over before the oldest of
 * them started. None without rollouts (a freeze that holds nothing changes no answer).
 */
async function freezesHolding (tx: Tx, channel: string | null, current: RolloutRow[]): Promise<ChannelFreezeRow[]> {
  if (current.length === 0) return []
  const since = new Date(Math.min(...current.map((r) => r.startedAt.getTime()))).toISOString()
  const overlapping = sql`(${channelFreezes.endedAt} IS NULL OR ${channelFreezes.endedAt} > ${since}::timestamptz) AND (${channelFreezes.until} IS NULL OR ${channelFreezes.until} > ${since}::timestamptz)`
  return await tx.select().from(channelFreezes).where(channel === null ? overlapping : and(eq(channelFreezes.channel, channel), overlapping)).orderBy(channelFreezes.id)
}

/** The freeze in force at `now` (ms), if any. */
async function currentFreeze (tx: Tx, channel: string, now: number): Promise<ChannelFreezeRow | null> {
  const at = new Date(now).toISOString()
  const [row] = await tx.select().from(channelFreezes)
    .where(and(eq(channelFreezes.channel, channel), isNull(channelFreezes.endedAt), sql`(${channelFreezes.until} IS NULL OR ${channelFreezes.until} > ${at}::timestamptz)`))
    .orderBy(desc(channelFreezes.id)).limit(1)
  return row ?? null
}

export function frozenDetail (channel: string, freeze: Pick<ChannelFreezeRow, 'reason' | 'until'>): string {
  return `channel "${channel}" is frozen (${freeze.reason}) ${freeze.until === null ? 'until it is unfrozen' : `until ${freeze.until.toISOString()}`}: promotions, settings, required marks and rollout resumes or completions wait; withdrawals and rollout pauses still work`
}

/**
 * A freeze holds everything that would change what the channel serves, whichever route asks
 * (issue 10: nothing new goes out while frozen), but never what stops a release: withdrawals
 * and pauses stay open. Called under the channel's row lock, so a freeze committed first wins.
 */
async function refuseIfFrozen (tx: Tx, channel: string, now: number): Promise<void> {
  const freeze = await currentFreeze(tx, channel, now)
  if (freeze !== null) throw new ChartcastError('CHANNEL_FROZEN', frozenDetail(channel, freeze))
}

/**
 * Per version, the deployments whose latest report for that version applied it or failed to; a
 * skipped apply counts in neither. Only reports since the rollout started or, once resumed, since
 * its last pause ended count: a resume is the publisher's judgement that the failures before it
 * are dealt with, and counting them again would pause the rollout at once on the next flush.
 * (A pause's `to` is ms on the app's clock, as report times are.)
 */
async function rolloutReportCounts (tx: Tx, channel: string, version: string | null): Promise<Map<string, ReportCounts>> {
  const result = await tx.execute(sql`
    SELECT latest.version, latest.outcome, count(*) AS count FROM (
      SELECT DISTINCT ON (r.deployment_id, r.version) r.version, r.outcome
      FROM ${reports} r JOIN ${rollouts} ro ON ro.channel = r.channel AND ro.version = r.version AND ro.state <> 'ended'
      WHERE r.channel = ${channel} ${version === null ? sql`` : sql`AND r.version = ${version}`} AND r.at >= GREATEST(ro.started_at, (SELECT to_timestamp(max((p->>'to')::double precision) / 1000) FROM jsonb_array_elements(ro.pauses) p))
      ORDER BY r.deployment_id, r.version, r.at DESC, r.id DESC
    ) latest GROUP BY latest.version, latest.outcome`)
  const counts = new Map<string, { applied: number, failed: number }>()
  for (const row of resultRows<{ version: string, outcome: string, count: string | number }>(result)) {
    const entry = counts.get(row.version) ?? { applied: 0, failed: 0 }
    if (row.outcome === 'applied') entry.applied = Number(row.count)
    if (row.outcome === 'failed') entry.failed = Number(row.count)
    counts.set(row.version, entry)
  }
  return counts
}

/** The two drivers return execute() results differently: node-postgres and PGlite both carry `rows`. */
function resultRows<T> (result: unknown): T[] {
  return Array.isArray(result) ? result as T[] : (result as { rows: T[] }).rows
}

/** A rollout as the routes show it: the row, its compiled schedule and its report counts. */
export interface RolloutView {
  row: RolloutRow
  record: RolloutRecord
  freezes: FreezeRecord[]
  counts: ReportCounts
}

export type RolloutAction = 'pause' | 'resume' | 'complete'

const MEMBERSHIP_COLUMNS = { ...getTableColumns(channelReleases), upgradeFrom: releases.upgradeFrom }

/** Both reads see one committed state, so the row's revision describes exactly these memberships. */
const SNAPSHOT = { isolationLevel: 'repeatable read', accessMode: 'read only' } as const

/** The actor of what the server does by itself (automatic rollout pauses). */
export const SYSTEM_ACTOR = 'system'

/** The chain head's only row. */
const CHAIN_HEAD_ID = 1

/**
 * Appends a mutation's audit row to the hash chain (src/domain/audit-chain.ts). Call it last
 * in the mutation's transaction: it takes the chain lock, which is held until commit.
 *
 * Each row names the hash of the row before it, so two writers must never read the same
 * predecessor, whether they are concurrent requests or replicas on one PostgreSQL. Every
 * append therefore first locks the one-row chain head with SELECT ... FOR UPDATE: the next
 * writer waits, then reads the head this one wrote, and a rollback undoes the audit row and
 * the head update together. A row lock rather than pg_advisory_xact_lock: it needs no
 * database-wide lock number that another application on the database might also pick, it
 * shows in pg_locks against a named table, and the locked row records the last hash, which
 * lets the verifier notice rows cut from the end.
 *
 * All mutations serialise on this lock, so it covers two statements and the commit only: the
 * lock read, and the insert with the head update in one statement. The id is the head's plus
 * one (contiguous, in chain order); `at` is the database's clock (replicas' clocks may
 * differ), never earlier than the previous row's, truncated to the milliseconds that a JS
 * Date holds when the row is read back and verified.
 */
async function appendAudit (tx: Tx, actor: string, action: string, target: string, detail: Record<string, unknown>): Promise<void> {
  const [head] = await tx.select({
    lastId: auditChainHead.lastId,
    lastHash: auditChainHead.lastHash,
    lastAt: auditChainHead.lastAt,
    // Text: the two drivers parse bigint and timestamptz differently.
    nowMs: sql<string>`floor(extract(epoch from clock_timestamp()) * 1000)::bigint::text`
  }).from(auditChainHead).where(eq(auditChainHead.id, CHAIN_HEAD_ID)).for('update')
  if (head === undefined) throw new Error('the audit chain head row is missing (migration 0003 inserts it)')
  const entry = {
    id: head.lastId + 1,
    at: new Date(Math.max(Number(head.nowMs), head.lastAt.getTime())),
    actor,
    action,
    target,
    // Hash what jsonb will give back: JSON values only (a Date would become its ISO string).
    detail: JSON.parse(JSON.stringify(detail)) as Record<string, unknown>,
    prevHash: head.lastHash
  }
  const hash = auditEntryHash(entry)
  const at = entry.at.toISOString()
  await tx.execute(sql`
    with appended as (
      insert into ${auditLog} (id, at, actor, action, target, detail, prev_hash, hash)
      values (${entry.id}, ${at}::timestamptz, ${actor}, ${action}, ${target}, ${JSON.stringify(entry.detail)}::jsonb, ${entry.prevHash}, ${hash})
    )
    update ${auditChainHead} set last_id = ${entry.id}, last_hash = ${hash}, last_at = ${at}::timestamptz where id = ${CHAIN_HEAD_ID}`)
}

/** Audit rows read per query while verifying, so a long log is never held in memory at once. */
const VERIFY_PAGE_SIZE = 1000

export interface ChannelSettings {
  description?: string
  values?: Record<string, unknown>
  accepts?: string | null
  pollInterval?: string | null
}

export function createStore (db: AppDatabase) {
  return {
    async publishRelease (release: NormalisedRelease, actor: string): Promise<{ created: boolean, row: ReleaseRow }> {
      return await db.transaction(async (tx) => {
        // ON CONFLICT DO NOTHING makes concurrent publishes of one version race safely:
        // exactly one inserts, the others see the committed row and compare digests.
        const inserted = await tx.insert(releases).values({
          version: release.version,
          chartUrl: release.chart.url,
          chartName: release.chart.name ?? null,
          chartVersion: release.chart.version,
          chartDigest: release.chart.digest ?? null,
          values: release.values,
          notes: release.notes,
          digest: release.digest,
          upgradeFrom: release.upgradeFrom,
          createdBy: actor
        }).onConflictDoNothing({ target: releases.version }).returning()
        const row = inserted[0]
        if (row !== undefined) {
          await appendAudit(tx, actor, 'release.publish', `release:${release.version}`, { digest: release.digest, chart: release.chart, ...(release.upgradeFrom !== null && { upgradeFrom: release.upgradeFrom }) })
          return { created: true, row }
        }
        const [existing] = await tx.select().from(releases).where(eq(releases.version, release.version))
        if (existing === undefined) throw new Error('release vanished after a conflicting insert')
        if (existing.digest !== release.digest) {
          throw new ChartcastError('RELEASE_CONFLICT', `release ${release.version} already exists with other content (releases are immutable; publish a new version)`)
        }
        return { created: false, row: existing }
      })
    },

    async getRelease (version: string): Promise<ReleaseRow | null> {
      const [row] = await db.select().from(releases).where(eq(releases.version, version))
      return row ?? null
    },

    async listReleases (): Promise<ReleaseRow[]> {
      return await db.select().from(releases)
    },

    async getChannel (name: string): Promise<ChannelRow | null> {
      const [row] = await db.select().from(channels).where(eq(channels.name, name))
      return row ?? null
    },

    async listChannels (): Promise<ChannelRow[]> {
      return await db.select().from(channels).orderBy(channels.name)
    },

    async listMemberships (channel?: string): Promise<ChannelReleaseRow[]> {
      const query = db.select().from(channelReleases)
      return channel === undefined ? await query : await query.where(eq(channelReleases.channel, channel))
    },

    /** One channel's row and memberships in one snapshot; null when there is no such channel. */
    async readChannelSnapshot (name: string): Promise<ChannelSnapshot | null> {
      return await db.transaction(async (tx) => {
        const [row] = await tx.select().from(channels).where(eq(channels.name, name))
        if (row === undefined) return null
        const memberships = await tx.select(MEMBERSHIP_COLUMNS).from(channelReleases)
          .innerJoin(releases, eq(releases.version, channelReleases.version)).where(eq(channelReleases.channel, name))
        const current = await currentRollouts(tx, name)
        return { row, memberships, rollouts: current, freezes: await freezesHolding(tx, name, current) }
      }, SNAPSHOT)
    },

    /** Every channel's row and all memberships, in one snapshot. */
    async readAllChannelSnapshots (): Promise<{ rows: ChannelRow[], memberships: ChannelMembershipRow[], rollouts: RolloutRow[], freezes: ChannelFreezeRow[] }> {
      return await db.transaction(async (tx) => {
        const rows = await tx.select().from(channels).orderBy(channels.name)
        const memberships = await tx.select(MEMBERSHIP_COLUMNS).from(channelReleases).innerJoin(releases, eq(releases.version, channelReleases.version))
        const current = await currentRollouts(tx, null)
        return { rows, memberships, rollouts: current, freezes: await freezesHolding(tx, null, current) }
      }, SNAPSHOT)
    },

    /** The replicas' periodic check: what each channel's revision is now. */
    async listChannelRevisions (): Promise<Array<{ name: string, revision: number }>> {
      return await db.select({ name: channels.name, revision: channels.revision }).from(channels)
    },

    /** Creates or updates a channel; returns whether anything changed. */
    /**
     * Creates or updates a channel through the API; returns whether anything changed. A
     * channel defined by a channel file is refused (CHANNEL_MANAGED_BY_FILE): the next sync
     * would silently put the file's values back.
     */
    async upsertChannel (name: string, settings: ChannelSettings, actor: string, now = Date.now()): Promise<{ created: boolean, changed: boolean, row: ChannelRow }> {
      return await db.transaction(async (tx) => upsertChannelIn(tx, name, settings, actor, 'channel.upsert', { api: true, now }))
    },

    /**
     * Applies a directory of channel files in one transaction: all of them or none. Each
     * channel becomes managed by its file; a channel whose file is no longer in the directory
     * goes back to the API (`channel.unmanage`), so removing a file never leaves a channel
     * nobody can change. A frozen channel whose file would change what it serves (values,
     * accepts, poll interval) is left as it is and listed under `frozen`: the freeze holds
     * through a restart, and the next sync after the unfreeze applies the file.
     */
    async syncChannels (definitions: ChannelFileDefinition[], actor: string, now = Date.now()): Promise<ChannelSyncResult> {
      return await db.transaction(async (tx) => {
        const result: ChannelSyncResult = { created: [], updated: [], unchanged: [], frozen: [], unmanaged: [] }
        for (const def of definitions) {
          const { created, changed, frozen } = await upsertChannelIn(tx, def.name, {
            description: def.description, values: def.values, accepts: def.accepts, pollInterval: def.pollInterval
          }, actor, 'channel.sync', { file: def.file, now })
          ;(created ? result.created : changed ? result.updated : frozen === true ? result.frozen : result.unchanged).push(def.name)
        }
        const synced = definitions.map((def) => def.name)
        const released = await tx.update(channels).set({ managedByFile: null, updatedAt: sql`now()` })
          .where(synced.length === 0 ? isNotNull(channels.managedByFile) : and(isNotNull(channels.managedByFile), notInArray(channels.name, synced)))
          .returning({ name: channels.name })
        for (const { name } of released.sort((a, b) => a.name.localeCompare(b.name))) {
          await appendAudit(tx, actor, 'channel.unmanage', `channel:${name}`, { reason: 'channel file no longer in the synced directory' })
          result.unmanaged.push(name)
        }
        return result
      })
    },

    /**
     * Promotes a release into a channel. `accepts` and the channel's freeze are checked under its
     * row lock. With `rollout`, the release starts a staged rollout at `now` (ms, the app's clock).
     * `required` (when given) marks the membership, also on a release already in the channel.
     */
    async promote (channel: string, version: string, actor: string, checkAccepts: (range: string | null) => void, options: { rollout?: RolloutPlan, now?: number, required?: boolean } = {}): Promise<{ promoted: boolean, required: boolean, requiredChanged: boolean }> {
      const now = options.now ?? Date.now()
      const required = options.required
      return await db.transaction(async (tx) => {
        const [ch] = await tx.select().from(channels).where(eq(channels.name, channel)).for('update')
        if (ch === undefined) throw new ChartcastError('CHANNEL_NOT_FOUND', `channel "${channel}" does not exist`)
        await refuseIfFrozen(tx, channel, now)
        const [rel] = await tx.select({ version: releases.version }).from(releases).where(eq(releases.version, version))
        if (rel === undefined) throw new ChartcastError('RELEASE_NOT_FOUND', `release ${version} has not been published`)
        checkAccepts(ch.accepts)
        const changed = await tx.insert(channelReleases).values({ channel, version, state: 'active', promotedBy: actor, required: required ?? false })
          .onConflictDoUpdate({
            target: [channelReleases.channel, channelReleases.version],
            set: { state: 'active', promotedAt: sql`now()`, promotedBy: actor, rollback: false, ...(required !== undefined && { required }) },
            setWhere: eq(channelReleases.state, 'withdrawn')
          }).returning()
        const promotedRow = changed[0]
        if (promotedRow === undefined) {
          // Already in the channel: only `required` may change.
          const [held] = await tx.select({ required: channelReleases.required }).from(channelReleases)
            .where(and(eq(channelReleases.channel, channel), eq(channelReleases.version, version)))
          if (required === undefined || held?.required === required) return { promoted: false, required: held?.required ?? false, requiredChanged: false }
          await markRequiredIn(tx, channel, version, required, actor)
          return { promoted: false, required, requiredChanged: true }
        }
        await tx.insert(channelEvents).values({ channel, version, action: 'promote', actor })
        const plan = options.rollout
        if (plan !== undefined) {
          await tx.insert(rollouts).values({
            channel, version, steps: [...plan.steps], autoPause: plan.autoPause, startedAt: new Date(now), startedBy: actor, state: 'rolling', pauses: []
          })
        }
        await channelChanged(tx, channel)
        await appendAudit(tx, actor, 'channel.promote', `channel:${channel}`, { version, ...(promotedRow.required && { required: true }), ...(plan !== undefined && { rollout: plan }) })
        return { promoted: true, required: promotedRow.required, requiredChanged: false }
      })
    },

    /** Marks a release in the channel required or not; unchanged when it already is so. */
    async setRequired (channel: string, version: string, required: boolean, actor: string, now = Date.now()): Promise<{ changed: boolean }> {
      return await db.transaction(async (tx) => {
        const [ch] = await tx.select({ name: channels.name }).from(channels).where(eq(channels.name, channel)).for('update')
        if (ch === undefined) throw new ChartcastError('CHANNEL_NOT_FOUND', `channel "${channel}" does not exist`)
        const [membership] = await tx.select().from(channelReleases)
          .where(and(eq(channelReleases.channel, channel), eq(channelReleases.version, version)))
        if (membership === undefined || membership.state === 'withdrawn') throw new ChartcastError('RELEASE_NOT_IN_CHANNEL', `release ${version} is not in channel "${channel}"`)
        if (membership.required === required) return { changed: false }
        // A required mark moves the cap of every deployment below it: a different answer.
        await refuseIfFrozen(tx, channel, now)
        await markRequiredIn(tx, channel, version, required, actor)
        return { changed: true }
      })
    },

    /**
     * Withdraws a release from a channel and ends its rollout. `rollback`: a sanctioned
     * rollback, which deployments that run the release are told with their fallback spec; asked
     * of a release withdrawn already, it marks that withdrawal.
     */
    async withdraw (channel: string, version: string, actor: string, reason: string | null, options: { rollback?: boolean, now?: number } = {}): Promise<{ withdrawn: boolean }> {
      const rollback = options.rollback === true
      const now = options.now ?? Date.now()
      return await db.transaction(async (tx) => {
        const [ch] = await tx.select({ name: channels.name }).from(channels).where(eq(channels.name, channel)).for('update')
        if (ch === undefined) throw new ChartcastError('CHANNEL_NOT_FOUND', `channel "${channel}" does not exist`)
        const [membership] = await tx.select().from(channelReleases)
          .where(and(eq(channelReleases.channel, channel), eq(channelReleases.version, version)))
        if (membership === undefined) throw new ChartcastError('RELEASE_NOT_IN_CHANNEL', `release ${version} was never promoted to channel "${channel}"`)
        const where = and(eq(channelReleases.channel, channel), eq(channelReleases.version, version))
        if (membership.state === 'withdrawn') {
          if (!rollback || membership.rollback) return { withdrawn: false }
          await tx.update(channelReleases).set({ rollback: true }).where(where)
          await channelChanged(tx, channel)
          await appendAudit(tx, actor, 'channel.rollback', `channel:${channel}`, { version, reason })
          return { withdrawn: false }
        }
        await tx.update(channelReleases).set({ state: 'withdrawn', rollback }).where(where)
        await tx.insert(channelEvents).values({ channel, version, action: 'withdraw', actor, reason })
        const ended = await tx.update(rollouts).set({ state: 'ended', endedAt: new Date(now) })
          .where(and(eq(rollouts.channel, channel), eq(rollouts.version, version), sql`${rollouts.state} <> 'ended'`)).returning({ id: rollouts.id })
        await channelChanged(tx, channel)
        await appendAudit(tx, actor, 'channel.withdraw', `channel:${channel}`, { version, reason, ...(rollback && { rollback: true }), ...(ended.length > 0 && { rolloutEnded: true }) })
        return { withdrawn: true }
      })
    },

    /** A channel's rollouts that are not ended, oldest first, with what selection needs and their report counts. */
    async listRollouts (channel: string): Promise<RolloutView[]> {
      return await db.transaction(async (tx) => {
        const current = await currentRollouts(tx, channel)
        const freezes = (await freezesHolding(tx, channel, current)).map(freezeRecordOf)
        const counts = current.length === 0 ? new Map<string, ReportCounts>() : await rolloutReportCounts(tx, channel, null)
        return current.map((row) => ({ row, record: rolloutRecordOf(row), freezes, counts: counts.get(row.version) ?? { applied: 0, failed: 0 } }))
      }, SNAPSHOT)
    },

    /**
     * Pause (with a reason), resume or complete a rollout, at `now` (ms). Locks the channel row
     * (as every channel change does, so revisions commit in order), then the rollout's.
     * ROLLOUT_NOT_FOUND when the channel's release has no current rollout, ROLLOUT_STATE when
     * the action does not fit: only a rolling rollout pauses, only a paused one resumes, and a
     * complete one takes none.
     */
    async changeRollout (channel: string, version: string, action: RolloutAction, actor: string, reason: string | null, now: number): Promise<RolloutRow> {
      return await db.transaction(async (tx) => {
        const [ch] = await tx.select({ name: channels.name }).from(channels).where(eq(channels.name, channel)).for('update')
        if (ch === undefined) throw new ChartcastError('CHANNEL_NOT_FOUND', `channel "${channel}" does not exist`)
        const [row] = await tx.select().from(rollouts)
          .where(and(eq(rollouts.channel, channel), eq(rollouts.version, version), sql`${rollouts.state} <> 'ended'`)).for('update')
        if (row === undefined) throw new ChartcastError('ROLLOUT_NOT_FOUND', `release ${version} has no rollout in channel "${channel}" (not in the channel, promoted without one, or withdrawn)`)
        const phase = rolloutPhase(compileRollout(rolloutRecordOf(row), (await freezesHolding(tx, channel, [row])).map(freezeRecordOf)), now)
        const pauses = [...row.pauses]
        const closePause = (): void => {
          const last = pauses.at(-1)
          if (last !== undefined && last.to === null) pauses[pauses.length - 1] = { from: last.from, to: Math.max(now, last.from) }
        }
        let next: Partial<RolloutRow>
        if (action === 'pause') {
          if (phase !== 'rolling') throw new ChartcastError('ROLLOUT_STATE', `the rollout of ${version} is ${phase}: only a rolling rollout can be paused`)
          next = { state: 'paused', pauses: [...pauses, { from: now, to: null }], pausedReason: reason, pausedBy: actor }
        } else if (action === 'resume') {
          if (phase !== 'paused') throw new ChartcastError('ROLLOUT_STATE', `the rollout of ${version} is ${phase}: only a paused rollout can be resumed`)
          // A paused rollout admits nobody new; resumed, it admits its cohort again.
          await refuseIfFrozen(tx, channel, now)
          closePause()
          next = { state: 'rolling', pauses, pausedReason: null, pausedBy: null }
        } else {
          if (phase === 'complete') throw new ChartcastError('ROLLOUT_STATE', `the rollout of ${version} is complete already`)
          await refuseIfFrozen(tx, channel, now)
          closePause()
          next = { state: 'complete', pauses, pausedReason: null, pausedBy: null }
        }
        const [updated] = await tx.update(rollouts).set(next).where(eq(rollouts.id, row.id)).returning()
        if (updated === undefined) throw new Error('rollout vanished under its row lock')
        await channelChanged(tx, channel)
        await appendAudit(tx, actor, `rollout.${action}`, `channel:${channel}`, { version, ...(reason !== null && { reason }) })
        return updated
      })
    },

    /**
     * The automatic pause: counts the rolling release's reports and pauses it when they cross
     * its autoPause line, as actor `system`. Under the channel's and the rollout's row locks, so
     * replicas evaluating the same reports at once pause it once: the second finds it paused.
     * Returns the reason when it paused.
     */
    async autoPauseRollout (channel: string, version: string, now: number): Promise<string | null> {
      return await db.transaction(async (tx) => {
        const [ch] = await tx.select({ name: channels.name }).from(channels).where(eq(channels.name, channel)).for('update')
        if (ch === undefined) return null
        const [row] = await tx.select().from(rollouts)
          .where(and(eq(rollouts.channel, channel), eq(rollouts.version, version), sql`${rollouts.state} <> 'ended'`)).for('update')
        if (row === undefined || row.autoPause === null) return null
        const phase = rolloutPhase(compileRollout(rolloutRecordOf(row), (await freezesHolding(tx, channel, [row])).map(freezeRecordOf)), now)
        if (phase !== 'rolling') return null
        const counts = (await rolloutReportCounts(tx, channel, version)).get(version) ?? { applied: 0, failed: 0 }
        if (!shouldAutoPause(row.autoPause, counts)) return null
        const reason = autoPauseReason(version, counts)
        await tx.update(rollouts).set({ state: 'paused', pauses: [...row.pauses, { from: now, to: null }], pausedReason: reason, pausedBy: SYSTEM_ACTOR }).where(eq(rollouts.id, row.id))
        await channelChanged(tx, channel)
        await appendAudit(tx, SYSTEM_ACTOR, 'rollout.pause', `channel:${channel}`, { version, reason, automatic: true, ...counts })
        return reason
      })
    },

    /** Report counts of one rolling release, read without locks: the cheap check before autoPauseRollout. */
    async rolloutCounts (channel: string, version: string): Promise<ReportCounts> {
      return await db.transaction(async (tx) => (await rolloutReportCounts(tx, channel, version)).get(version) ?? { applied: 0, failed: 0 }, SNAPSHOT)
    },

    /** The freeze in force at `now` (ms), if any. */
    async getFreeze (channel: string, now: number): Promise<ChannelFreezeRow | null> {
      return await db.transaction(async (tx) => await currentFreeze(tx, channel, now), SNAPSHOT)
    },

    /**
     * Freezes a channel from `now` until `until` (ms; null: until unfrozen). A freeze in force
     * is replaced (ended now), so the reason and until are always the latest ones asked for.
     */
    async freezeChannel (channel: string, reason: string, until: number | null, actor: string, now: number): Promise<ChannelFreezeRow> {
      return await db.transaction(async (tx) => {
        const [ch] = await tx.select({ name: channels.name }).from(channels).where(eq(channels.name, channel)).for('update')
        if (ch === undefined) throw new ChartcastError('CHANNEL_NOT_FOUND', `channel "${channel}" does not exist`)
        const held = await currentFreeze(tx, channel, now)
        if (held !== null) await tx.update(channelFreezes).set({ endedAt: new Date(now), endedBy: actor }).where(eq(channelFreezes.id, held.id))
        const [row] = await tx.insert(channelFreezes).values({ channel, reason, at: new Date(now), until: until === null ? null : new Date(until), by: actor }).returning()
        if (row === undefined) throw new Error('freeze insert returned nothing')
        await channelChanged(tx, channel)
        await appendAudit(tx, actor, 'channel.freeze', `channel:${channel}`, { reason, until: row.until?.toISOString() ?? null, ...(held !== null && { replaced: held.id }) })
        return row
      })
    },

    /** Lifts the freeze in force; returns whether there was one. */
    async unfreezeChannel (channel: string, actor: string, reason: string | null, now: number): Promise<{ unfrozen: boolean }> {
      return await db.transaction(async (tx) => {
        const [ch] = await tx.select({ name: channels.name }).from(channels).where(eq(channels.name, channel)).for('update')
        if (ch === undefined) throw new ChartcastError('CHANNEL_NOT_FOUND', `channel "${channel}" does not exist`)
        const held = await currentFreeze(tx, channel, now)
        if (held === null) return { unfrozen: false }
        await tx.update(channelFreezes).set({ endedAt: new Date(now), endedBy: actor }).where(eq(channelFreezes.id, held.id))
        await channelChanged(tx, channel)
        await appendAudit(tx, actor, 'channel.unfreeze', `channel:${channel}`, { freeze: held.id, reason })
        return { unfrozen: true }
      })
    },

    async channelHistory (channel: string): Promise<ChannelEventRow[]> {
      return await db.select().from(channelEvents).where(eq(channelEvents.channel, channel)).orderBy(desc(channelEvents.id))
    },

    async revoke (input: { jti?: string, sub?: string, reason: string }, actor: string): Promise<RevocationRow> {
      return await db.transaction(async (tx) => {
        const [row] = await tx.insert(revocations).values({ jti: input.jti ?? null, sub: input.sub ?? null, reason: input.reason, actor }).returning()
        if (row === undefined) throw new Error('revocation insert returned nothing')
        await notify(tx, { kind: 'revocation' })
        await appendAudit(tx, actor, 'license.revoke', input.jti !== undefined ? `license:jti:${input.jti}` : `license:sub:${input.sub}`, { jti: input.jti ?? null, sub: input.sub ?? null, reason: input.reason })
        return row
      })
    },

    /** Revocations with their lift, if any, newest first. */
    async listRevocationsWithLifts (): Promise<Array<{ revocation: RevocationRow, lift: RevocationLiftRow | null }>> {
      return await db.select({ revocation: revocations, lift: revocationLifts }).from(revocations)
        .leftJoin(revocationLifts, eq(revocationLifts.revocationId, revocations.id))
        .orderBy(desc(revocations.id))
    },

    /** The revocations in force: those not lifted. */
    async listEffectiveRevocations (): Promise<RevocationRow[]> {
      const rows = await db.select({ revocation: revocations }).from(revocations)
        .leftJoin(revocationLifts, eq(revocationLifts.revocationId, revocations.id))
        .where(isNull(revocationLifts.id))
      return rows.map((row) => row.revocation)
    },

    /** Lifts a license revocation (once): a new row, since revocations are append-only. */
    async liftRevocation (revocationId: number, reason: string, actor: string): Promise<{ revocation: RevocationRow, lift: RevocationLiftRow }> {
      return await db.transaction(async (tx) => {
        const [revocation] = await tx.select().from(revocations).where(eq(revocations.id, revocationId))
        if (revocation === undefined) throw new ChartcastError('REVOCATION_NOT_FOUND', `there is no license revocation ${revocationId}`)
        // The unique revocation_id makes concurrent lifts of one revocation race safely: one inserts.
        const [lift] = await tx.insert(revocationLifts).values({ revocationId, reason, actor })
          .onConflictDoNothing({ target: revocationLifts.revocationId }).returning()
        if (lift === undefined) throw new ChartcastError('REVOCATION_ALREADY_LIFTED', `license revocation ${revocationId} has already been lifted`)
        await appendAudit(tx, actor, 'license.revocation.lift', `revocation:${revocationId}`, { jti: revocation.jti, sub: revocation.sub, reason })
        await notify(tx, { kind: 'revocation' })
        return { revocation, lift }
      })
    },

    /** Revokes a publisher token by jti; revoking a revoked token again changes nothing. */
    async revokePublisherToken (jti: string, reason: string, actor: string): Promise<{ created: boolean, row: TokenRevocationRow }> {
      return await db.transaction(async (tx) => {
        const [row] = await tx.insert(tokenRevocations).values({ jti, reason, actor })
          .onConflictDoNothing({ target: tokenRevocations.jti }).returning()
        if (row !== undefined) {
          await appendAudit(tx, actor, 'token.revoke', `token:jti:${jti}`, { jti, reason })
          await notify(tx, { kind: 'token-revocation' })
          return { created: true, row }
        }
        const [existing] = await tx.select().from(tokenRevocations).where(eq(tokenRevocations.jti, jti))
        if (existing === undefined) throw new Error('token revocation vanished after a conflicting insert')
        return { created: false, row: existing }
      })
    },

    /**
     * A short text per revocation list that changes whenever a row is added to it (or pruned):
     * the periodic resync compares them, one cheap query, to reload a list whose change notice
     * never arrived. `licenses`: license revocations and their lifts; `tokens`: publisher token
     * revocations and ended sessions. The tables are append-only (sessions are pruned), so a
     * count with the newest id or time is enough.
     */
    async revocationFingerprints (): Promise<{ licenses: string, tokens: string }> {
      const [row] = resultRows<{ licenses: string, tokens: string }>(await db.execute(sql`SELECT
        (SELECT count(*) || ':' || coalesce(max(id), 0) FROM revocations) || '/' ||
          (SELECT count(*) || ':' || coalesce(max(id), 0) FROM revocation_lifts) AS licenses,
        (SELECT count(*) || ':' || coalesce(max(id), 0) FROM token_revocations) || '/' ||
          (SELECT count(*) || ':' || coalesce(extract(epoch FROM max(at))::text, '') FROM session_revocations) AS tokens`))
      if (row === undefined) throw new Error('the revocation fingerprint query returned no row')
      return { licenses: String(row.licenses), tokens: String(row.tokens) }
    },

    async listPublisherTokenRevocations (): Promise<TokenRevocationRow[]> {
      return await db.select().from(tokenRevocations).orderBy(desc(tokenRevocations.id))
    },

    /** A dashboard sign-in: the session itself lives in the sealed cookie, the record of it here. */
    async startSession (sid: string, actor: string, detail: { via: 'token' | 'oidc', role: string, expiresAt: string }): Promise<void> {
      await db.transaction(async (tx) => {
        await appendAudit(tx, actor, 'session.start', `session:${sid}`, detail)
      })
    },

    /**
     * Logout: the session id is refused from now on, on every replica (the NOTIFY reloads their
     * revocation sets), even if a copy of the cookie was kept. Rows of sessions that have
     * expired anyway go at the same time. Ending an ended session changes nothing.
     */
    async endSession (sid: string, expiresAt: Date, actor: string): Promise<{ ended: boolean }> {
      return await db.transaction(async (tx) => {
        await tx.delete(sessionRevocations).where(lt(sessionRevocations.expiresAt, sql`now() - interval '1 day'`))
        const [row] = await tx.insert(sessionRevocations).values({ sid, expiresAt, actor })
          .onConflictDoNothing({ target: sessionRevocations.sid }).returning()
        if (row === undefined) return { ended: false }
        await appendAudit(tx, actor, 'session.end', `session:${sid}`, {})
        await notify(tx, { kind: 'token-revocation' })
        return { ended: true }
      })
    },

    /** Ended sessions that have not expired yet (with a day's margin for clock differences). */
    async listSessionRevocations (): Promise<SessionRevocationRow[]> {
      return await db.select().from(sessionRevocations).where(gt(sessionRevocations.expiresAt, sql`now() - interval '1 day'`))
    },

    /**
     * Checks the audit hash chain from its first row to the head, in one read-only snapshot
     * so that writes committed meanwhile cannot look like a break.
     */
    async verifyAuditChain (): Promise<AuditChainReport> {
      return await db.transaction(async (tx) => {
        const [head] = await tx.select().from(auditChainHead).where(eq(auditChainHead.id, CHAIN_HEAD_ID))
        async function * rows (): AsyncIterable<StoredAuditRow> {
          let after = 0
          for (;;) {
            const page = await tx.select().from(auditLog).where(gt(auditLog.id, after)).orderBy(asc(auditLog.id)).limit(VERIFY_PAGE_SIZE)
            yield * page
            const last = page.at(-1)
            if (last === undefined || page.length < VERIFY_PAGE_SIZE) return
            after = last.id
          }
        }
        return await verifyAuditChain(rows(), head ?? null)
      }, { isolationLevel: 'repeatable read', accessMode: 'read only' })
    },

    async listAudit (limit: number, before: number | null): Promise<AuditRow[]> {
      const query = db.select().from(auditLog)
      const filtered = before === null ? query : query.where(lt(auditLog.id, before))
      return await filtered.orderBy(desc(auditLog.id)).limit(limit)
    }
  }
}

/** Sets `required` on an active membership, under the channel's row lock the caller holds. */
async function markRequiredIn (tx: Tx, channel: string, version: string, required: boolean, actor: string): Promise<void> {
  await tx.update(channelReleases).set({ required })
    .where(and(eq(channelReleases.channel, channel), eq(channelReleases.version, version), ne(channelReleases.required, required)))
  await channelChanged(tx, channel)
  await appendAudit(tx, actor, 'channel.require', `channel:${channel}`, { version, required })
}

/** Who is changing a channel: the API, or the sync of one channel file (base name). */
type ChannelWriter = { api: true, now: number } | { file: string, now: number }

/** What a sync of channel files did, channel names by outcome (frozen: left as it was, see syncChannels). */
export interface ChannelSyncResult { created: string[], updated: string[], unchanged: string[], frozen: string[], unmanaged: string[] }

async function upsertChannelIn (tx: Tx, name: string, settings: ChannelSettings, actor: string, action: string, writer: ChannelWriter): Promise<{ created: boolean, changed: boolean, frozen?: true, row: ChannelRow }> {
  const [existing] = await tx.select().from(channels).where(eq(channels.name, name)).for('update')
  if ('api' in writer && existing?.managedByFile != null) {
    throw new ChartcastError('CHANNEL_MANAGED_BY_FILE', `channel "${name}" is defined by the channel file ${existing.managedByFile}: change that file and sync it (restart, or chartcast sync DIR); promotions and withdrawals stay open`)
  }
  const next = {
    description: settings.description ?? existing?.description ?? '',
    values: settings.values ?? existing?.values ?? {},
    accepts: settings.accepts !== undefined ? settings.accepts : existing?.accepts ?? null,
    pollInterval: settings.pollInterval !== undefined ? settings.pollInterval : existing?.pollInterval ?? null,
    managedByFile: 'file' in writer ? writer.file : null
  }
  if (existing !== undefined && canonicalJson(next) === canonicalJson({
    description: existing.description, values: existing.values, accepts: existing.accepts, pollInterval: existing.pollInterval, managedByFile: existing.managedByFile
  })) {
    return { created: false, changed: false, row: existing }
  }
  // Values and the poll interval are part of every answer, and accepts decides what may be
  // promoted once the freeze ends; the description alone changes no answer.
  // (managedByFile is left out: a file taking a channel over changes no answer either.)
  if (existing !== undefined && canonicalJson({ ...next, description: '', managedByFile: null }) !== canonicalJson({
    description: '', values: existing.values, accepts: existing.accepts, pollInterval: existing.pollInterval, managedByFile: null
  })) {
    if ('api' in writer) await refuseIfFrozen(tx, name, writer.now)
    // A sync must not fail a start-up during an incident: the frozen channel waits for its unfreeze.
    else if (await currentFreeze(tx, name, writer.now) !== null) return { created: false, changed: false, frozen: true, row: existing }
  }
  const [row] = existing === undefined
    ? await tx.insert(channels).values({ name, ...next }).onConflictDoNothing().returning()
    : await tx.update(channels).set({ ...next, updatedAt: sql`now()`, revision: sql`${channels.revision} + 1` }).where(eq(channels.name, name)).returning()
  // Another transaction created the channel between our read and insert: it is committed
  // now, so reading again finds it and this becomes an update.
  if (row === undefined) return await upsertChannelIn(tx, name, settings, actor, action, writer)
  await notify(tx, { kind: 'channel', name })
  await appendAudit(tx, actor, action, `channel:${name}`, { created: existing === undefined, ...next })
  return { created: existing === undefined, changed: true, row }
}

export type Store = ReturnType<typeof createStore>

/** A deployment's apply report as the flusher writes it (src/services/checkin-recorder.ts). */
interface FleetReportInput { deploymentId: string, channel: string, version: string, outcome: string, detail: string | null, digest: string | null, at: number }
interface FleetCheckinInput { id: string, channel: string, applied: string | null, served: string, at: number, agent: string | null, address: string }

export interface DeploymentFilter {
  channel?: string
  version?: string
  status?: 'ok' | 'failed' | 'stale'
  /** Cursor: rows strictly older than this (lastSeenAt ms, then id) in the listing order. */
  before?: { at: number, id: string }
  limit: number
  /** Now (ms), and the stale threshold per channel (seconds; `fallback` for any other). */
  now: number
  staleAfter: { byChannel: ReadonlyMap<string, number>, fallback: number }
}

/** One column of a batch as a single array parameter (sql.param: a bare array would become a list of placeholders). */
function column<T> (rows: readonly T[], value: (row: T) => string | number | null) {
  return sql.param(rows.map(value))
}

function isoOf (ms: number): string {
  return new Date(ms).toISOString()
}

/**
 * The fleet tables. A batch travels as one array parameter per column, read by unnest: one
 * statement with seven parameters for any number of rows (no placeholder per value, so no
 * 65,535-parameter limit), and PostgreSQL parses plain array literals instead of a JSON text.
 * Both drivers send a JavaScript array as an array literal, nulls included.
 */
export function createFleetStore (db: AppDatabase) {
  /** True where the deployment has not been seen for longer than its channel's threshold. */
  function staleCondition (filter: Pick<DeploymentFilter, 'now' | 'staleAfter'>) {
    const cases = [...filter.staleAfter.byChannel].map(([channel, seconds]) => sql`WHEN ${deployments.channel} = ${channel} THEN ${seconds}::double precision`)
    const threshold = cases.length === 0 ? sql`${filter.staleAfter.fallback}::double precision` : sql`CASE ${sql.join(cases, sql` `)} ELSE ${filter.staleAfter.fallback}::double precision END`
    return sql`(${deployments.lastSeenAt} < ${isoOf(filter.now)}::timestamptz - (${threshold}) * interval '1 second')`
  }

  return {
    /**
     * One transaction: the check-ins as one multi-row upsert (a row only moves forward: of two
     * replicas flushing one deployment the newest lastSeenAt wins), the reports appended, and
     * each deployment's latest report put on its record (again only forward).
     */
    async writeFleet (checkins: readonly FleetCheckinInput[], reports: readonly FleetReportInput[]): Promise<void> {
      const latestReports = new Map<string, FleetReportInput>()
      for (const report of reports) {
        const held = latestReports.get(report.deploymentId)
        if (held === undefined || held.at <= report.at) latestReports.set(report.deploymentId, report)
      }
      await db.transaction(async (tx) => {
        // No wait for the WAL flush at commit: these rows were held in memory until now and a
        // server crash loses what is pending anyway, so a database crash losing the last
        // fraction of a second of them is the same promise. One batch per commit (a flush of
        // 1,000,000 deployments is 500 of them) then costs no disk wait each.
        await tx.execute(sql`SET LOCAL synchronous_commit = off`)
        if (checkins.length > 0) {
          // Rows are taken in id order: two replicas upserting overlapping deployments then lock
          // them in the same order, so they wait for each other instead of deadlocking.
          await tx.execute(sql`
            INSERT INTO deployments (id, channel, applied_version, served_version, last_seen_at, agent, address)
            SELECT r.id, r.channel, r.applied, r.served, to_timestamp(r.at / 1000.0), r.agent, r.address
            FROM unnest(${column(checkins, (r) => r.id)}::text[], ${column(checkins, (r) => r.channel)}::text[],
              ${column(checkins, (r) => r.applied)}::text[], ${column(checkins, (r) => r.served)}::text[],
              ${column(checkins, (r) => r.at)}::double precision[], ${column(checkins, (r) => r.agent)}::text[],
              ${column(checkins, (r) => r.address)}::text[]) AS r(id, channel, applied, served, at, agent, address)
            ORDER BY r.id
            ON CONFLICT (id) DO UPDATE SET channel = excluded.channel, applied_version = excluded.applied_version,
              served_version = excluded.served_version, last_seen_at = excluded.last_seen_at, agent = excluded.agent, address = excluded.address
            WHERE deployments.last_seen_at < excluded.last_seen_at`)
        }
        if (reports.length > 0) {
          await tx.execute(sql`
            INSERT INTO reports (deployment_id, channel, version, outcome, detail, digest, at)
            SELECT r.deployment_id, r.channel, r.version, r.outcome, r.detail, r.digest, to_timestamp(r.at / 1000.0)
            FROM unnest(${column(reports, (r) => r.deploymentId)}::text[], ${column(reports, (r) => r.channel)}::text[],
              ${column(reports, (r) => r.version)}::text[], ${column(reports, (r) => r.outcome)}::text[],
              ${column(reports, (r) => r.detail)}::text[], ${column(reports, (r) => r.digest)}::text[],
              ${column(reports, (r) => r.at)}::double precision[]) AS r(deployment_id, channel, version, outcome, detail, digest, at)`)
          // A deployment known only from a report (its pulls not flushed yet) gets a row now;
          // its check-in columns follow with the next flush.
          const latest = [...latestReports.values()]
          await tx.execute(sql`
            INSERT INTO deployments (id, channel, last_seen_at, last_report_version, last_report_outcome, last_report_detail, last_report_at)
            SELECT r.deployment_id, r.channel, to_timestamp(r.at / 1000.0), r.version, r.outcome, r.detail, to_timestamp(r.at / 1000.0)
            FROM unnest(${column(latest, (r) => r.deploymentId)}::text[], ${column(latest, (r) => r.channel)}::text[],
              ${column(latest, (r) => r.version)}::text[], ${column(latest, (r) => r.outcome)}::text[],
              ${column(latest, (r) => r.detail)}::text[], ${column(latest, (r) => r.at)}::double precision[]) AS r(deployment_id, channel, version, outcome, detail, at)
            ORDER BY r.deployment_id
            ON CONFLICT (id) DO UPDATE SET last_report_version = excluded.last_report_version, last_report_outcome = excluded.last_report_outcome,
              last_report_detail = excluded.last_report_detail, last_report_at = excluded.last_report_at
            WHERE deployments.last_report_at IS NULL OR deployments.last_report_at < excluded.last_report_at`)
        }
        if (checkins.length > 0 || reports.length > 0) await notify(tx, { kind: 'fleet', channels: fleetNoticeChannels(checkins, reports) })
      })
    },

    /**
     * Deletes reports older than the retention; the reports table's trigger allows no other
     * deletion (migrations/0005_fleet.sql). Returns how many were removed.
     */
    async pruneReports (retentionSeconds: number, now: number): Promise<number> {
      return await db.transaction(async (tx) => {
        await tx.execute(sql`SELECT set_config('chartcast.report_retention', ${`${retentionSeconds} seconds`}, true)`)
        const removed = await tx.delete(reports).where(lt(reports.at, new Date(now - retentionSeconds * 1000))).returning({ id: reports.id })
        return removed.length
      })
    },

    /** Served versions of deployments whose latest check-in sent no Chartcast-Applied, by id (src/services/served-versions.ts). */
    async listServed (afterId: string | null, limit: number): Promise<ServedRow[]> {
      const rows = await db.select({ id: deployments.id, served: deployments.servedVersion, at: deployments.lastSeenAt }).from(deployments)
        .where(and(isNull(deployments.appliedVersion), isNotNull(deployments.servedVersion), afterId === null ? undefined : gt(deployments.id, afterId)))
        .orderBy(asc(deployments.id)).limit(limit)
      return rows.map((r) => ({ id: r.id, served: r.served, headerless: true, at: r.at.getTime() }))
    },

    /** Every deployment whose latest check-in is at or after `sinceMs` (the last-seen index). */
    async listSeenSince (sinceMs: number): Promise<ServedRow[]> {
      const rows = await db.select({ id: deployments.id, served: deployments.servedVersion, applied: deployments.appliedVersion, at: deployments.lastSeenAt })
        .from(deployments).where(sql`${deployments.lastSeenAt} >= ${isoOf(sinceMs)}::timestamptz`)
      return rows.map((r) => ({ id: r.id, served: r.served, headerless: r.applied === null, at: r.at.getTime() }))
    },

    async newestSeen (): Promise<number | null> {
      const [row] = await db.select({ at: sql<string | null>`(extract(epoch from max(${deployments.lastSeenAt})) * 1000)::bigint::text` }).from(deployments)
      return row?.at == null ? null : Number(row.at)
    },

    /** Newest lastSeenAt first (id breaks ties), each with whether it is stale. */
    async listDeployments (filter: DeploymentFilter): Promise<Array<{ row: DeploymentRow, stale: boolean }>> {
      const stale = staleCondition(filter)
      const conditions = [
        filter.channel === undefined ? undefined : eq(deployments.channel, filter.channel),
        filter.version === undefined ? undefined : eq(deployments.appliedVersion, filter.version),
        filter.status === 'failed' ? eq(deployments.lastReportOutcome, 'failed') : undefined,
        filter.status === 'stale' ? stale : undefined,
        filter.status === 'ok' ? sql`NOT ${stale} AND ${deployments.lastReportOutcome} IS DISTINCT FROM 'failed'` : undefined,
        filter.before === undefined
          ? undefined
          : sql`(${deployments.lastSeenAt}, ${deployments.id}) < (${isoOf(filter.before.at)}::timestamptz, ${filter.before.id})`
      ].filter((c) => c !== undefined)
      const rows = await db.select({ row: deployments, stale: sql<boolean>`${stale}` }).from(deployments)
        .where(conditions.length === 0 ? undefined : and(...conditions))
        .orderBy(desc(deployments.lastSeenAt), desc(deployments.id)).limit(filter.limit)
      return rows.map(({ row, stale }) => ({ row, stale: stale === true || (stale as unknown) === 't' }))
    },

    async getDeployment (id: string, reportLimit: number): Promise<{ row: DeploymentRow, reports: ReportRow[] } | null> {
      const [row] = await db.select().from(deployments).where(eq(deployments.id, id))
      if (row === undefined) return null
      const latest = await db.select().from(reports).where(eq(reports.deploymentId, id)).orderBy(desc(reports.at), desc(reports.id)).limit(reportLimit)
      return { row, reports: latest }
    },

    /** Deployments per channel and applied version, with how many of them are stale (metrics). */
    async fleetCounts (filter: Pick<DeploymentFilter, 'now' | 'staleAfter'>): Promise<Array<{ channel: string, version: string, deployments: number, stale: number }>> {
      const stale = staleCondition(filter)
      const rows = await db.select({
        channel: deployments.channel,
        version: sql<string>`coalesce(${deployments.appliedVersion}, 'unknown')`,
        deployments: sql<number>`count(*)::int`,
        stale: sql<number>`count(*) FILTER (WHERE ${stale})::int`
      }).from(deployments).groupBy(deployments.channel, sql`2`)
      return rows.map((r) => ({ channel: r.channel, version: r.version, deployments: Number(r.deployments), stale: Number(r.stale) }))
    },

    /** Counts for one channel's fleet page: per applied version, per latest report, and stale. */
    async channelFleet (channel: string, filter: Pick<DeploymentFilter, 'now' | 'staleAfter'>) {
      const stale = staleCondition(filter)
      const [totals] = await db.select({ total: sql<number>`count(*)::int`, stale: sql<number>`count(*) FILTER (WHERE ${stale})::int` }).from(deployments).where(eq(deployments.channel, channel))
      const byApplied = await db.select({ version: sql<string>`coalesce(${deployments.appliedVersion}, 'unknown')`, count: sql<number>`count(*)::int` })
        .from(deployments).where(eq(deployments.channel, channel)).groupBy(sql`1`)
      const byReport = await db.select({ version: deployments.lastReportVersion, outcome: deployments.lastReportOutcome, count: sql<number>`count(*)::int` })
        .from(deployments).where(and(eq(deployments.channel, channel), isNotNull(deployments.lastReportVersion))).groupBy(deployments.lastReportVersion, deployments.lastReportOutcome)
      return {
        total: Number(totals?.total ?? 0),
        stale: Number(totals?.stale ?? 0),
        byApplied: byApplied.map((r) => ({ version: r.version, count: Number(r.count) })),
        byReport: byReport.map((r) => ({ version: r.version ?? '', outcome: r.outcome, count: Number(r.count) }))
      }
    }
  }
}

export type FleetStore = ReturnType<typeof createFleetStore>
