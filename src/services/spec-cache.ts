/**
 * The hot path's memory: per channel, its settings, the versions currently in it and the
 * compiled head spec (body + ETag). Pulls never touch the database; the cache is reloaded
 * per channel when a change commits (NOTIFY from any replica), and wholly after a
 * reconnect. While the database is away, the last loaded state keeps being served.
 */
import { selectChannelHead, sortVersionsDescending } from '../domain/channel.js'
import type { ChannelVersions } from '../domain/select-spec.js'
import { compileSpec, type CompiledSpec } from '../domain/spec.js'
import { chartOf, type ChangeNotice, type Store } from '../db/store.js'
import type { ChannelRow, ChannelReleaseRow, ReleaseRow } from '../db/schema.js'
import { ChartcastError } from '../errors.js'

export interface ChannelState extends ChannelVersions {
  readonly name: string
  row: ChannelRow
  /** Versions promoted and not withdrawn, highest first. */
  active: string[]
  head: CompiledSpec | null
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
  const byChannel = new Map<string, ChannelReleaseRow[]>()
  for (const m of memberships) {
    const list = byChannel.get(m.channel)
    if (list === undefined) byChannel.set(m.channel, [m])
    else list.push(m)
  }
  return byChannel
}

function compileFor (channel: ChannelRow, release: ReleaseRow): CompiledSpec {
  return compileSpec({ name: channel.name, values: channel.values, pollInterval: channel.pollInterval }, { version: release.version, chart: chartOf(release), values: release.values })
}

export class SpecCache {
  private channels = new Map<string, ChannelState>()
  /** Releases are immutable, so a cached row never goes stale. */
  private readonly releases = new Map<string, ReleaseRow>()
  private readonly pinned = new Map<string, CompiledSpec>()
  private readonly generation = new Map<string, number>()
  /** The newest refresh in flight per channel. */
  private readonly refreshing = new Map<string, { generation: number, done: Promise<void> }>()
  private fullGeneration = 0
  loaded = false

  constructor (private readonly store: Store) {}

  get (name: string): ChannelState | undefined {
    return this.channels.get(name)
  }

  channelNames (): string[] {
    return [...this.channels.keys()]
  }

  async loadAll (): Promise<void> {
    const generation = ++this.fullGeneration
    const channelGenerations = new Map(this.generation)
    const [rows, memberships] = await Promise.all([this.store.listChannels(), this.store.listMemberships()])
    const byChannel = groupByChannel(memberships)
    const next = new Map<string, ChannelState>()
    for (const row of rows) next.set(row.name, await this.buildState(row, byChannel.get(row.name) ?? []))
    // A newer full load started while this one ran: its result wins.
    if (generation !== this.fullGeneration) return
    // A channel refreshed while this load ran may hold newer state than this load read: keep it.
    for (const [name, g] of this.generation) {
      if (channelGenerations.get(name) === g) continue
      const current = this.channels.get(name)
      if (current === undefined) next.delete(name)
      else next.set(name, current)
    }
    this.channels = next
    this.pinned.clear()
    this.loaded = true
  }

  /**
   * Returns once the channel's state as of this call is installed: a promotion's 2xx means this
   * replica serves it. When a later refresh overtakes this one (the change's own NOTIFY, say),
   * this one's result is dropped and the call waits for the later one instead.
   */
  async refreshChannel (name: string): Promise<void> {
    const generation = (this.generation.get(name) ?? 0) + 1
    this.generation.set(name, generation)
    const done = this.reloadChannel(name, generation)
    this.refreshing.set(name, { generation, done })
    try {
      await done
    } finally {
      if (this.refreshing.get(name)?.generation === generation) this.refreshing.delete(name)
    }
    for (let waited = generation; ;) {
      const latest = this.refreshing.get(name)
      if (latest === undefined || latest.generation <= waited) break
      waited = latest.generation
      await latest.done.catch(() => {})
    }
  }

  private async reloadChannel (name: string, generation: number): Promise<void> {
    const [row, memberships] = await Promise.all([this.store.getChannel(name), this.store.listMemberships(name)])
    // Refreshes of one channel can overlap; the one that started last read the newest state.
    if (this.generation.get(name) !== generation) return
    const state = row === null ? null : await this.buildState(row, memberships)
    if (this.generation.get(name) !== generation) return
    if (state === null) this.channels.delete(name)
    else this.channels.set(name, state)
    for (const key of this.pinned.keys()) if (key.startsWith(name + '@')) this.pinned.delete(key)
  }

  async applyNotice (notice: ChangeNotice): Promise<void> {
    if (notice.kind === 'channel') await this.refreshChannel(notice.name)
    else if (notice.kind === 'all') await this.loadAll()
    // Revocations live in the license registry (src/plugins/spec-state.ts reloads them).
  }

  /**
   * The compiled spec of a version selectSpec chose from this state: the head, or a pinned
   * version compiled once and then kept (synchronous when it is already compiled).
   */
  specFor (state: ChannelState, version: string): CompiledSpec | Promise<CompiledSpec> {
    if (state.head?.version === version) return state.head
    const hit = this.pinned.get(`${state.name}@${version}`)
    return hit ?? this.compilePinned(state, version)
  }

  private async compilePinned (state: ChannelState, version: string): Promise<CompiledSpec> {
    const spec = compileFor(state.row, await this.loadRelease(version))
    // A refresh may have installed a newer state (and dropped this channel's pinned specs)
    // while the release was read: a spec of the replaced state would then stay cached.
    if (this.channels.get(state.name) === state) boundedSet(this.pinned, `${state.name}@${version}`, spec, MAX_PINNED_SPECS)
    return spec
  }

  private async buildState (row: ChannelRow, memberships: ChannelReleaseRow[]): Promise<ChannelState> {
    const headVersion = selectChannelHead(memberships.map((m) => ({ version: m.version, withdrawn: m.state === 'withdrawn' })))
    const active = sortVersionsDescending(memberships.filter((m) => m.state === 'active').map((m) => m.version))
    if (headVersion === null) return { name: row.name, row, active, head: null }
    return { name: row.name, row, active, head: compileFor(row, await this.loadRelease(headVersion)) }
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
