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

function channelRow (values: Record<string, unknown>): ChannelRow {
  return { name: 'stable', description: '', values, accepts: null, pollInterval: null, updatedAt: at, managedByFile: null }
}

function releaseRow (version: string): ReleaseRow {
  return { version, chartUrl: 'https://charts.example.com/acme', chartName: 'acme', chartVersion: '0.1.0', values: { tag: version }, notes: null, digest: 'd', createdAt: at, createdBy: 'rita' }
}

function membership (version: string): ChannelReleaseRow {
  return { channel: 'stable', version, state: 'active', promotedAt: at, promotedBy: 'rita' }
}

/** The store calls SpecCache makes, over mutable rows; `holdReleaseReads` makes getRelease wait for `release()`. */
function fakeStore () {
  const state = { channel: channelRow({ colour: 'blue' }), memberships: [membership('1.0.0'), membership('1.1.0')] }
  const held: Array<() => void> = []
  let holding = false
  let releaseReads = 0
  const store = {
    listChannels: async () => [state.channel],
    listMemberships: async () => state.memberships,
    getChannel: async () => state.channel,
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
    holdReleaseReads () { holding = true },
    /** Lets every held read finish; later reads are not held. */
    release () { holding = false; for (const resume of held.splice(0)) resume() },
    get heldReads () { return held.length }
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
  fake.state.channel = channelRow({ colour: 'green' })
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
  fake.state.channel = channelRow({ colour: 'green' })
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
  fake.state.channel = channelRow({ colour: 'green' })
  await cache.loadAll()
  fake.release()
  await pinnedRead
  t.match(JSON.parse((await resolved(cache.specFor(cache.get('stable')!, '1.0.0'))).body).values, { colour: 'green' })
})
