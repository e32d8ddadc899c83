/**
 * SpecCache against an in-memory stand-in for the store, whose release reads the test can hold
 * open: the interleavings of a pinned read and a refresh are then chosen, not raced.
 */
import t from 'tap'
import type { Store } from '../../src/db/store.js'
import type { ChannelReleaseRow, ChannelRow, ReleaseRow } from '../../src/db/schema.js'
import { SpecCache } from '../../src/services/spec-cache.js'
import type { CompiledSpec } from '../../src/domain/spec.js'

const at = new Date('2026-01-01T00:00:00Z')

function channelRow (values: Record<string, unknown>, revision = 1, name = 'stable'): ChannelRow {
  return { name, description: '', values, accepts: null, pollInterval: null, updatedAt: at, managedByFile: null, revision }
}

function releaseRow (version: string): ReleaseRow {
  return { version, chartUrl: 'https://charts.example.com/acme', chartName: 'acme', chartVersion: '0.1.0', values: { tag: version }, notes: null, digest: 'd', createdAt: at, createdBy: 'rita' }
}

function membership (version: string, channel = 'stable'): ChannelReleaseRow {
  return { channel, version, state: 'active', promotedAt: at, promotedBy: 'rita', rollback: false }
}

/**
 * The store calls SpecCache makes, over mutable rows; `holdReleaseReads` makes getRelease wait
 * for `release()`, `holdSnapshots` makes channel reads (taken at call time) wait for `resumeSnapshots()`.
 * `extra` holds further channels (with their memberships) next to 'stable'.
 */
function fakeStore () {
  const state = {
    channel: channelRow({ colour: 'blue' }),
    memberships: [membership('1.0.0'), membership('1.1.0')],
    extra: new Map<string, { row: ChannelRow, memberships: ChannelReleaseRow[] }>()
  }
  const held: Array<() => void> = []
  const heldSnapshots: Array<() => void> = []
  let holding = false
  let holdingSnapshots = false
  let releaseReads = 0
  let snapshotReads = 0
  const all = () => [{ row: state.channel, memberships: state.memberships }, ...state.extra.values()]
  const waitIfHeld = async (): Promise<void> => {
    if (holdingSnapshots) await new Promise<void>((resolve) => heldSnapshots.push(resolve))
  }
  const store = {
    readChannelSnapshot: async (name: string) => {
      snapshotReads++
      const found = all().find((c) => c.row.name === name)
      const snapshot = found === undefined ? null : { row: found.row, memberships: [...found.memberships], rollouts: [], freezes: [] }
      await waitIfHeld()
      return snapshot
    },
    readAllChannelSnapshots: async () => {
      const channels = all()
      const snapshot = { rows: channels.map((c) => c.row), memberships: channels.flatMap((c) => c.memberships), rollouts: [], freezes: [] }
      await waitIfHeld()
      return snapshot
    },
    listChannelRevisions: async () => all().map((c) => ({ name: c.row.name, revision: c.row.revision })),
    getRelease: async (version: string) => {
      releaseReads++
      if (holding) await new Promise<void>((resolve) => held.push(resolve))
      return releaseRow(version)
    }
  }
  return {
    store: store as unknown as Store,
    state,
    get releaseReads () { return releaseReads },
    get snapshotReads () { return snapshotReads },
    holdReleaseReads () { holding = true },
    /** Lets every held read finish; later reads are not held. */
    release () { holding = false; for (const resume of held.splice(0)) resume() },
    get heldReads () { return held.length },
    holdSnapshots () { holdingSnapshots = true },
    /** Lets the held channel reads finish, oldest first or in `order` (indexes into the held reads). */
    resumeSnapshots (order?: number[]) {
      holdingSnapshots = false
      const waiting = heldSnapshots.splice(0)
      for (const index of order ?? waiting.map((_, i) => i)) waiting[index]!()
    },
    get heldSnapshots () { return heldSnapshots.length },
    /** A committed change to 'stable': new values, next revision. */
    change (values: Record<string, unknown>) { state.channel = channelRow(values, state.channel.revision + 1) }
  }
}


async function resolved (spec: CompiledSpec | Promise<CompiledSpec>): Promise<CompiledSpec> {
  return await spec
}

t.test('a pinned spec is read from the database once, then served synchronously', async (t) => {
  const fake = fakeStore()
  const cache = new SpecCache(fake.store)
  await cache.loadAll()
  const state = cache.get('stable')!
  const readsAfterLoad = fake.releaseReads
  const first = cache.specFor(state, '1.0.0')
  t.ok(first instanceof Promise, 'first time: read and compiled')
  t.equal((await first).version, '1.0.0')
  const second = cache.specFor(state, '1.0.0')
  t.notOk(second instanceof Promise, 'then from memory')
  t.equal(second, await first)
  t.equal(fake.releaseReads, readsAfterLoad + 1)
  t.equal(cache.specFor(state, '1.1.0'), state.head, 'the head is the compiled head')
})

t.test('a pinned spec read while a newer channel state is installed is not cached', async (t) => {
  const fake = fakeStore()
  const cache = new SpecCache(fake.store)
  await cache.loadAll()
  const before = cache.get('stable')!
  fake.holdReleaseReads()
  const pinnedRead = cache.specFor(before, '1.0.0')
  t.equal(fake.heldReads, 1, 'the pinned read is in flight')
  // The channel's values change and the refresh installs the new state (the head's release
  // is cached already, so the refresh reads no release and is not held).
  fake.change({ colour: 'green' })
  await cache.refreshChannel('stable')
  const after = cache.get('stable')!
  t.not(after, before)
  fake.release()
  const stale = await resolved(pinnedRead)
  t.match(JSON.parse(stale.body).values, { colour: 'blue' }, 'the in-flight pull gets the state it was authorized against')
  const fresh = await resolved(cache.specFor(after, '1.0.0'))
  t.match(JSON.parse(fresh.body).values, { colour: 'green', tag: '1.0.0' }, 'the next pull compiles against the new values')
  t.same(JSON.parse((await resolved(cache.specFor(after, '1.0.0'))).body), JSON.parse(fresh.body))
})

t.test('a pinned spec read before a refresh is dropped by that refresh', async (t) => {
  const fake = fakeStore()
  const cache = new SpecCache(fake.store)
  await cache.loadAll()
  const before = cache.get('stable')!
  t.match(JSON.parse((await resolved(cache.specFor(before, '1.0.0'))).body).values, { colour: 'blue' })
  fake.change({ colour: 'green' })
  await cache.refreshChannel('stable')
  t.match(JSON.parse((await resolved(cache.specFor(cache.get('stable')!, '1.0.0'))).body).values, { colour: 'green' })
})

t.test('a pinned read overtaken by a full reload is not cached either', async (t) => {
  const fake = fakeStore()
  const cache = new SpecCache(fake.store)
  await cache.loadAll()
  const before = cache.get('stable')!
  fake.holdReleaseReads()
  const pinnedRead = cache.specFor(before, '1.0.0')
  fake.change({ colour: 'green' })
  await cache.loadAll()
  fake.release()
  await pinnedRead
  t.match(JSON.parse((await resolved(cache.specFor(cache.get('stable')!, '1.0.0'))).body).values, { colour: 'green' })
})

t.test('a reload that read an older revision never replaces a newer state, whatever order reloads finish in', async (t) => {
  const fake = fakeStore()
  const cache = new SpecCache(fake.store)
  await cache.loadAll()
  fake.holdSnapshots()
  fake.change({ colour: 'green' })
  const older = cache.refreshChannel('stable')
  fake.change({ colour: 'red' })
  const newer = cache.refreshChannel('stable')
  t.equal(fake.heldSnapshots, 2, 'both reads are in flight')
  // The later read (revision 3) finishes first, then the earlier one (revision 2).
  fake.resumeSnapshots([1, 0])
  await Promise.all([older, newer])
  const installed = cache.get('stable')!
  t.equal(installed.row.revision, 3)
  t.equal(installed.revisionHeader, '3')
  t.match(JSON.parse(installed.head!.body).values, { colour: 'red' }, 'the newest state is served')
})

t.test('a full reload that read an older revision leaves a newer channel state in place', async (t) => {
  const fake = fakeStore()
  const cache = new SpecCache(fake.store)
  await cache.loadAll()
  fake.holdSnapshots()
  fake.change({ colour: 'green' })
  const full = cache.loadAll()
  fake.change({ colour: 'red' })
  const one = cache.refreshChannel('stable')
  fake.resumeSnapshots([1, 0])
  await Promise.all([full, one])
  t.equal(cache.get('stable')!.row.revision, 3)
  t.match(JSON.parse(cache.get('stable')!.head!.body).values, { colour: 'red' })
})

t.test('a state of the revision already held is not installed again', async (t) => {
  const fake = fakeStore()
  const cache = new SpecCache(fake.store)
  await cache.loadAll()
  const held = cache.get('stable')!
  await cache.refreshChannel('stable')
  t.equal(cache.get('stable'), held, 'the same state object: nothing was replaced')
  t.equal(cache.installIfNewer({ ...held, active: [] }), false)
  t.equal(cache.installIfNewer({ ...held, row: { ...held.row, revision: held.row.revision + 1 } }), true)
})

t.test('resync reloads only the channels whose revision differs, appeared or went', async (t) => {
  const fake = fakeStore()
  const cache = new SpecCache(fake.store)
  fake.state.extra.set('beta', { row: channelRow({}, 1, 'beta'), memberships: [membership('1.0.0', 'beta')] })
  fake.state.extra.set('edge', { row: channelRow({}, 4, 'edge'), memberships: [] })
  await cache.loadAll()
  const readsBefore = fake.snapshotReads
  t.same(await cache.resync(), [], 'nothing differs: nothing reloaded')
  t.equal(fake.snapshotReads, readsBefore, 'and no channel read')

  // A change whose notice this replica never got, a channel created and one gone.
  fake.change({ colour: 'green' })
  fake.state.extra.set('gamma', { row: channelRow({}, 1, 'gamma'), memberships: [] })
  fake.state.extra.delete('edge')
  const reloaded = await cache.resync()
  t.same(reloaded.sort(), ['edge', 'gamma', 'stable'])
  t.match(JSON.parse(cache.get('stable')!.head!.body).values, { colour: 'green' }, 'the missed change is served')
  t.equal(cache.get('stable')!.revisionHeader, '2')
  t.ok(cache.get('gamma'), 'the new channel is held')
  t.equal(cache.get('edge'), undefined, 'the removed channel is dropped')
  t.equal(cache.get('beta')!.row.revision, 1, 'the unchanged channel was left alone')
})
