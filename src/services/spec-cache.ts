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
import { chartOf, freezeRecordOf, rolloutRecordOf, type ChangeNotice, type ChannelMembershipRow, type Store } from '../db/store.js'
import type { ChannelFreezeRow, ChannelRow, ReleaseRow, RolloutRow } from '../db/schema.js'
import { compileRollout, type RolloutState } from '../domain/rollout.js'
import type { HopRule } from '../domain/upgrade-path.js'
import { ChartcastError } from '../errors.js'
import type { SpecSigner } from './spec-signer.js'

/** The `Chartcast-Signature` values of one compiled spec, replaced whole when re-signed. */
export interface SpecSignatures {
  /** For the `GET /channels/:name/spec` body. */
  readonly spec: string
  /** For the W&B operator body. */
  readonly operator: string
  /** When they expire (ms); the re-sign timer replaces them well before. */
  readonly expiresAtMs: number
}

/** A compiled spec as served: with its signatures when signing is on (null when it is off). */
export interface ServedSpec extends CompiledSpec {
  signatures: SpecSignatures | null
}

export interface ChannelState extends ChannelVersions {
  readonly name: string
  row: ChannelRow
  /** Versions promoted and not withdrawn, highest first. */
  active: string[]
  head: ServedSpec | null
  /** Per active version: required, and the release's upgradeFrom (upgrade paths). */
  memberships: ReadonlyMap<string, HopRule>
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
  specs: ReadonlyMap<string, ServedSpec>
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
export function groupByChannel<M extends { channel: string }> (memberships: M[]): Map<string, M[]> {
  return byChannelOf(memberships)
}

function compileFor (channel: ChannelRow, release: ReleaseRow, rollback = false): CompiledSpec {
  return compileSpec({ name: channel.name, values: channel.values, pollInterval: channel.pollInterval }, { version: release.version, chart: chartOf(release), values: release.values }, rollback ? { rollback: 'true' } : undefined)
}

export class SpecCache {
  private readonly channels = new Map<string, ChannelState>()
  /** Releases are immutable, so a cached row never goes stale. */
  private readonly releases = new Map<string, ReleaseRow>()
  private readonly pinned = new Map<string, ServedSpec>()
  loaded = false

  /** `signer`: signs every spec when it is compiled (SPEC_SIGNING_KEYS); null signs nothing. */
  constructor (private readonly store: Store, private readonly signer: SpecSigner | null = null) {}

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
  specFor (state: ChannelState, version: string, rollback = false): ServedSpec | Promise<ServedSpec> {
    if (!rollback) {
      const compiled = state.specs.get(version)
      if (compiled !== undefined) return compiled
    }
    const key = rollback ? `${state.name}@${version}#rollback` : `${state.name}@${version}`
    const hit = this.pinned.get(key)
    return hit ?? this.compilePinned(state, version, key, rollback)
  }

  private async compilePinned (state: ChannelState, version: string, key: string, rollback: boolean): Promise<ServedSpec> {
    const spec = await this.served(compileFor(state.row, await this.loadRelease(version), rollback), state.row.revision)
    // A refresh may have installed a newer state (and dropped this channel's pinned specs)
    // while the release was read: a spec of the replaced state would then stay cached.
    if (this.channels.get(state.name) === state) boundedSet(this.pinned, key, spec, MAX_PINNED_SPECS)
    return spec
  }

  private async buildState (row: ChannelRow, memberships: ChannelMembershipRow[], rolloutRows: RolloutRow[] = [], freezeRows: ChannelFreezeRow[] = []): Promise<ChannelState> {
    const headVersion = selectChannelHead(memberships.map((m) => ({ version: m.version, withdrawn: m.state === 'withdrawn' })))
    const live = memberships.filter((m) => m.state === 'active')
    const active = sortVersionsDescending(live.map((m) => m.version))
    // Only versions with a rule get an entry: a channel without upgrade rules has an empty map.
    const rules = new Map<string, HopRule>()
    for (const m of live) if (m.required || m.upgradeFrom !== null) rules.set(m.version, { required: m.required, upgradeFrom: m.upgradeFrom })
    const revisionHeader = String(row.revision)
    const freezes = freezeRows.map(freezeRecordOf)
    // A rollout completed by hand admits everyone, as no rollout does: selection skips it.
    const rollouts = new Map(rolloutRows.filter((r) => r.state !== 'complete').map((r) => [r.version, compileRollout(rolloutRecordOf(r), freezes)]))
    const rollbacks = new Set(memberships.filter((m) => m.state === 'withdrawn' && m.rollback).map((m) => m.version))
    const specs = new Map<string, ServedSpec>()
    const base = { name: row.name, row, active, memberships: rules, revisionHeader, rollouts, rollbacks, specs }
    if (headVersion === null) return { ...base, head: null }
    const head = await this.served(compileFor(row, await this.loadRelease(headVersion)), row.revision)
    specs.set(head.version, head)
    // Highest first, down to the first release without a rollout: below it nobody is answered.
    for (let i = 0; i + 1 < active.length && rollouts.has(active[i]!) && specs.size < MAX_PRECOMPILED; i++) {
      specs.set(active[i + 1]!, await this.served(compileFor(row, await this.loadRelease(active[i + 1]!)), row.revision))
    }
    return { ...base, head }
  }

  private async served (spec: CompiledSpec, revision: number): Promise<ServedSpec> {
    return Object.assign(spec, { signatures: await this.sign(spec, revision) })
  }

  /** Both bodies' statements: same channel, version and revision, each its own body's SHA-256. */
  private async sign (spec: CompiledSpec, revision: number): Promise<SpecSignatures | null> {
    if (this.signer === null) return null
    const subject = { channel: spec.channel, version: spec.version, revision }
    const [forSpec, forOperator] = await Promise.all([this.signer.sign(spec.body, subject), this.signer.sign(spec.operatorBody, subject)])
    return { spec: forSpec.jws, operator: forOperator.jws, expiresAtMs: Math.min(forSpec.expiresAtMs, forOperator.expiresAtMs) }
  }

  /**
   * The re-sign timer's work: every served spec (heads and pinned ones) whose signatures expire
   * before `renewBeforeMs` from `nowMs` gets new ones. The hot path keeps reading whichever
   * signatures object is in place; it is swapped whole. Returns how many specs were re-signed.
   */
  async resignExpiring (nowMs: number, renewBeforeMs: number): Promise<number> {
    if (this.signer === null) return 0
    let count = 0
    const specs: Array<[ServedSpec, number]> = []
    // The head is one of the specs compiled with the state.
    for (const state of this.channels.values()) for (const spec of state.specs.values()) specs.push([spec, state.row.revision])
    for (const [key, spec] of this.pinned) {
      const revision = this.channels.get(key.slice(0, key.lastIndexOf('@')))?.row.revision
      if (revision !== undefined) specs.push([spec, revision])
    }
    for (const [spec, revision] of specs) {
      if (spec.signatures !== null && spec.signatures.expiresAtMs - nowMs > renewBeforeMs) continue
      spec.signatures = await this.sign(spec, revision)
      count++
    }
    return count
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
