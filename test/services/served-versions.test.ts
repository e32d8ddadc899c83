import t from 'tap'
import { ServedVersions, type ServedRow, type ServedSource } from '../../src/services/served-versions.js'

/** The deployments table as rows the test sets; records what each read asked for. */
function fakeSource (rows: ServedRow[]) {
  const asked: Array<{ kind: string, arg: string | number | null }> = []
  const source: ServedSource = {
    async listServed (afterId, limit) {
      asked.push({ kind: 'page', arg: afterId })
      return rows.filter((r) => r.headerless && r.served !== null && (afterId === null || r.id > afterId)).sort((a, b) => a.id.localeCompare(b.id)).slice(0, limit)
    },
    async listSeenSince (sinceMs) {
      asked.push({ kind: 'since', arg: sinceMs })
      return rows.filter((r) => r.at >= sinceMs)
    },
    async newestSeen () {
      return rows.length === 0 ? null : Math.max(...rows.map((r) => r.at))
    }
  }
  return { source, asked, rows }
}

t.test('start-up reads every headerless deployment a page at a time', async (t) => {
  const { source, asked } = fakeSource([
    { id: 'a', served: '1.0.0', headerless: true, at: 10 },
    { id: 'b', served: '1.0.0'.slice(0), headerless: true, at: 11 },
    { id: 'c', served: '2.0.0', headerless: false, at: 12 },
    { id: 'd', served: '1.5.0', headerless: true, at: 13 },
    { id: 'e', served: null, headerless: true, at: 14 }
  ])
  const served = new ServedVersions(source, { lagMs: 5, pageSize: 2 })
  await served.load()
  t.equal(served.get('a'), '1.0.0')
  t.equal(served.get('b'), '1.0.0')
  t.equal(served.get('d'), '1.5.0')
  t.equal(served.get('c'), null, 'it said what it runs: no stand-in')
  t.equal(served.get('e'), null)
  t.equal(served.size, 3)
  t.same(asked.map((a) => a.arg), [null, 'b'], 'paged by id; a short page is the last')
})

t.test('a pull without a header is remembered, one with a header forgets', async (t) => {
  const served = new ServedVersions(fakeSource([]).source, { lagMs: 5 })
  served.served('a', null, '1.0.0')
  t.equal(served.get('a'), '1.0.0')
  served.served('a', null, '1.5.0')
  t.equal(served.get('a'), '1.5.0')
  served.served('a', '1.5.0', '2.0.0')
  t.equal(served.get('a'), null)
  served.served(null, null, '1.0.0')
  t.equal(served.size, 0, 'an anonymous pull is nobody')
})

t.test('a refresh reads from the newest check-in seen minus the lag, and skips what is pending here', async (t) => {
  const { source, asked, rows } = fakeSource([{ id: 'a', served: '1.0.0', headerless: true, at: 100 }])
  const pending = new Set<string>()
  const served = new ServedVersions(source, { lagMs: 30, isPending: (id) => pending.has(id) })
  await served.load()
  rows.push({ id: 'b', served: '1.5.0', headerless: true, at: 90 }, { id: 'c', served: '2.0.0', headerless: true, at: 150 })
  rows[0] = { id: 'a', served: '1.5.0', headerless: false, at: 140 }
  pending.add('c')
  served.served('c', null, '2.1.0')
  await served.refresh()
  t.same(asked.at(-1), { kind: 'since', arg: 70 }, 'newest seen (100) minus the lag (30)')
  t.equal(served.get('b'), '1.5.0', 'written by another replica a little behind: within the lag')
  t.equal(served.get('a'), null, 'its latest check-in said what it runs')
  t.equal(served.get('c'), '2.1.0', 'pending here: newer than the database')
  await served.refresh()
  t.same(asked.at(-1), { kind: 'since', arg: 120 }, 'the watermark moved to the newest row read')
})
