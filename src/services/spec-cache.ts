/**
 * The hot path's memory: per channel, its settings, the versions currently in it and the
 * compiled head spec (body + ETag). Pulls never touch the database; the cache is reloaded
 * per channel when a change commits (NOTIFY from any replica), wholly after a reconnect, and
 * where a periodic check of the revisions finds a difference. A state is installed only when
 * its revision is newer than the one held. While the database is away, the last loaded state
 * keeps being served.
 */
import { selectChannelHead, sortVersionsDescending } from '../domain/channel.js'
import type { ChannelVersions } from '../domain/select-spec.js'
import { compileSpec, type CompiledSpec } from '../domain/spec.js'
import { chartOf, freezeRecordOf, rolloutRecordOf, type ChangeNotice, type Store } from '../db/store.js'
import type { ChannelFreezeRow, ChannelRow, ChannelReleaseRow, ReleaseRow, RolloutRow } from '../db/schema.js'
import { compileRollout, type RolloutState } from '../domain/rollout.js'
import { ChartcastError } from '../errors.js'

export interface ChannelState extends ChannelVersions {
  readonly name: string
  row: ChannelRow
  /** Versions promoted and not withdrawn, highest first. */
  active: string[]
  head: CompiledSpec | null
  /** The channel's revision, as sent in `Chartcast-Revision` (formatted once, here). */
  revisionHeader: string
  /** Rollouts not completed by hand, compiled against the channel's freezes. */
  rollouts: ReadonlyMap<string, RolloutState>
  /** Withdrawn with rollback=true (and not promoted again). */
  rollbacks: ReadonlySet<string>
  /**
   * Specs compiled with the state: the head and, while rollouts run, every release a pull
   * without an upgrade path can be given (down to the highest release without a rollout).
   */
  specs: ReadonlyMap<string, CompiledSpec>
}

/** Specs compiled ahead per channel state at most; the rest are compiled when first asked for. */
const MAX_PRECOMPILED = 50

/** Rows grouped per channel. */
function byChannelOf<R extends { channel: string }> (rows: R[]): Map<string, R[]> {
  const grouped = new Map<string, R[]>()
  for (const row of rows) {
    const list = grouped.get(row.channel)
    if (list === undefined) grouped.set(row.channel, [row])
    else list.push(row)
  }
  return grouped
}

const MAX_CACHED_RELEASES = 2_000
const MAX_PINNED_SPECS = 2_000

function boundedSet<K, V> (map: Map<K, V>, key: K, value: V, max: number): void {
  if (map.size >= max) {
    const oldest = map.keys().next().value
    if (oldest !== undefined) map.delete(oldest)
  }
  map.set(key, value)
}

/** Memberships grouped per channel (Map.groupBy needs Node 21). */
export function groupByChannel (memberships: ChannelReleaseRow[]): Map<string, ChannelReleaseRow[]> {
  return byChannelOf(memberships)
}

function compileFor (channel: ChannelRow, release: ReleaseRow, rollback = false): CompiledSpec {
  return compileSpec({ name: channel.name, values: channel.values, pollInterval: channel.pollInterval }, { version: release.version, chart: chartOf(release), values: release.values }, rollback ? { rollback: 'true' } : undefined)
}

export class SpecCache {
  private readonly channels = new Map<string, ChannelState>()
  /** Releases are immutable, so a cached row never goes stale. */
  private readonly releases = new Map<string, ReleaseRow>()
  private readonly pinned = new Map<string, CompiledSpec>()
  loaded = false

  constructor (private readonly store: Store) {}

  get (name: string): ChannelState | undefined {
    return this.channels.get(name)
  }

  channelNames (): string[] {
    return [...this.channels.keys()]
  }

  /**
   * Reads every channel in one snapshot and installs what is newer than what is held. Reloads
   * overlap (notices, resyncs, a reconnect): the revision, not the order they finish in,
   * decides, so an older read never replaces a newer state.
   */
  async loadAll (): Promise<void> {
    const heldAtStart = new Map(this.channels)
    const { rows, memberships, rollouts, freezes } = await this.store.readAllChannelSnapshots()
    const byChannel = groupByChannel(memberships)
    const rolloutsByChannel = byChannelOf(rollouts)
    const freezesByChannel = byChannelOf(freezes)
    const present = new Set<string>()
    for (const row of rows) {
      present.add(row.name)
      this.installIfNewer(await this.buildState(row, byChannel.get(row.name) ?? [], rolloutsByChannel.get(row.name) ?? [], freezesByChannel.get(row.name) ?? []))
    }
    // Gone from the database. A channel installed after this read began is not this read's to drop.
    for (const [name, state] of heldAtStart) {
      if (!present.has(name) && this.channels.get(name) === state) this.drop(name)
    }
    this.loaded = true
  }

  /**
   * Returns once this replica serves the channel's state as of this call, or a newer one: a
   * promotion's 2xx means this replica serves it.
   */
  async refreshChannel (name: string): Promise<void> {
    const snapshot = await this.store.readChannelSnapshot(name)
    if (snapshot === null) {
      this.drop(name)
      return
    }
    this.installIfNewer(await this.buildState(snapshot.row, snapshot.memberships, snapshot.rollouts, snapshot.freezes))
  }

  /**
   * The periodic check that heals a lost notice or a failed reload: one query for every
   * channel's revision, then a reload of just the channels that differ, appeared or went.
   * Returns the names reloaded.
   */
  async resync (): Promise<string[]> {
    const revisions = await this.store.listChannelRevisions()
    const stale: string[] = []
    const present = new Set<string>()
    for (const { name, revision } of revisions) {
      present.add(name)
      if (this.channels.get(name)?.row.revision !== revision) stale.push(name)
    }
    for (const name of this.channels.keys()) if (!present.has(name)) stale.push(name)
    for (const name of stale) await this.refreshChannel(name)
    return stale
  }

  /** Installs a state unless the one held is as new or newer; returns whether it did. */
  installIfNewer (state: ChannelState): boolean {
    const held = this.channels.get(state.name)
    if (held !== undefined && held.row.revision >= state.row.revision) return false
    this.channels.set(state.name, state)
    this.dropPinned(state.name)
    return true
  }

  private drop (name: string): void {
    this.channels.delete(name)
    this.dropPinned(name)
  }

  private dropPinned (name: string): void {
    for (const key of this.pinned.keys()) if (key.startsWith(name + '@')) this.pinned.delete(key)
  }

  async applyNotice (notice: ChangeNotice): Promise<void> {
    if (notice.kind === 'channel') await this.refreshChannel(notice.name)
    else if (notice.kind === 'all') await this.loadAll()
    // Revocations live in the license registry (src/plugins/spec-state.ts reloads them).
  }

  /**
   * The compiled spec of a version selectSpec chose from this state: one compiled with the
   * state, or a pinned version compiled once and then kept (synchronous when it is already
   * compiled). `rollback`: the answer of a sanctioned rollback, marked `metadata.rollback`.
   */
  specFor (state: ChannelState, version: string, rollback = false): CompiledSpec | Promise<CompiledSpec> {
    if (!rollback) {
      const compiled = state.specs.get(version)
      if (compiled !== undefined) return compiled
    }
    const key = rollback ? `${state.name}@${version}#rollback` : `${state.name}@${version}`
    const hit = this.pinned.get(key)
    return hit ?? this.compilePinned(state, version, key, rollback)
  }

  private async compilePinned (state: ChannelState, version: string, key: string, rollback: boolean): Promise<CompiledSpec> {
    const spec = compileFor(state.row, await this.loadRelease(version), rollback)
    // A refresh may have installed a newer state (and dropped this channel's pinned specs)
    // while the release was read: a spec of the replaced state would then stay cached.
    if (this.channels.get(state.name) === state) boundedSet(this.pinned, key, spec, MAX_PINNED_SPECS)
    return spec
  }

  private async buildState (row: ChannelRow, memberships: ChannelReleaseRow[], rolloutRows: RolloutRow[] = [], freezeRows: ChannelFreezeRow[] = []): Promise<ChannelState> {
    const headVersion = selectChannelHead(memberships.map((m) => ({ version: m.version, withdrawn: m.state === 'withdrawn' })))
    const active = sortVersionsDescending(memberships.filter((m) => m.state === 'active').map((m) => m.version))
    const revisionHeader = String(row.revision)
    const freezes = freezeRows.map(freezeRecordOf)
    // A rollout completed by hand admits everyone, as no rollout does: selection skips it.
    const rollouts = new Map(rolloutRows.filter((r) => r.state !== 'complete').map((r) => [r.version, compileRollout(rolloutRecordOf(r), freezes)]))
    const rollbacks = new Set(memberships.filter((m) => m.state === 'withdrawn' && m.rollback).map((m) => m.version))
    const specs = new Map<string, CompiledSpec>()
    const base = { name: row.name, row, active, revisionHeader, rollouts, rollbacks, specs }
    if (headVersion === null) return { ...base, head: null }
    const head = compileFor(row, await this.loadRelease(headVersion))
    specs.set(head.version, head)
    // Highest first, down to the first release without a rollout: below it nobody is answered.
    for (let i = 0; i + 1 < active.length && rollouts.has(active[i]!) && specs.size < MAX_PRECOMPILED; i++) {
      specs.set(active[i + 1]!, compileFor(row, await this.loadRelease(active[i + 1]!)))
    }
    return { ...base, head }
  }

  private async loadRelease (version: string): Promise<ReleaseRow> {
    const hit = this.releases.get(version)
    if (hit !== undefined) return hit
    const row = await this.store.getRelease(version)
    if (row === null) throw new ChartcastError('RELEASE_NOT_FOUND', `release ${version} not found`)
    boundedSet(this.releases, version, row, MAX_CACHED_RELEASES)
    return row
  }
}
