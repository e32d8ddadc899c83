import t from 'tap'
import { createHash } from 'node:crypto'
import {
  auditEntryHash, canonicalAuditForm, GENESIS_HASH, verifyAuditChain,
  type AuditChainEntry, type AuditChainHead, type StoredAuditRow
} from '../../src/domain/audit-chain.js'

async function * each<T> (items: T[]): AsyncIterable<T> {
  yield * items
}

/** A valid chain of `count` rows starting at `firstId`, linked from `prevHash`. */
function chain (count: number, firstId = 1, prevHash = GENESIS_HASH): StoredAuditRow[] {
  const rows: StoredAuditRow[] = []
  let previous = prevHash
  for (let i = 0; i < count; i++) {
    const entry: AuditChainEntry = {
      id: firstId + i,
      at: new Date(Date.UTC(2026, 11, 1, 9, 0, i, 123)),
      actor: 'rita',
      action: 'channel.promote',
      target: 'channel:stable',
      detail: { version: `1.0.${i}` },
      prevHash: previous
    }
    const hash = auditEntryHash(entry)
    rows.push({ ...entry, hash })
    previous = hash
  }
  return rows
}

function headOf (rows: StoredAuditRow[]): AuditChainHead {
  const last = rows.at(-1)
  return last === undefined ? { lastId: 0, lastHash: GENESIS_HASH } : { lastId: last.id, lastHash: last.hash! }
}

t.test('the canonical form is RFC 8785 JSON of the seven fields, keys sorted at every depth, at with milliseconds', async (t) => {
  const entry: AuditChainEntry = {
    id: 7,
    at: new Date('2026-12-01T09:47:51.5Z'),
    actor: 'alice',
    action: 'release.publish',
    target: 'release:1.0.0',
    detail: { z: 1, a: { y: 'ü', b: [2, 1.5, null, true] } },
    prevHash: 'ab'.repeat(32)
  }
  t.equal(canonicalAuditForm(entry),
    '{"action":"release.publish","actor":"alice","at":"2026-12-01T09:47:51.500Z","detail":{"a":{"b":[2,1.5,null,true],"y":"ü"},"z":1},' +
    `"id":7,"prevHash":"${'ab'.repeat(32)}","target":"release:1.0.0"}`)
})

t.test('the hash is the hex SHA-256 of the canonical form\'s UTF-8 bytes', async (t) => {
  const [row] = chain(1)
  const expected = createHash('sha256').update(Buffer.from(canonicalAuditForm({ ...row!, prevHash: row!.prevHash! }), 'utf8')).digest('hex')
  t.equal(row!.hash, expected)
  t.match(row!.hash, /^[0-9a-f]{64}$/)
})

t.test('the hash covers every field, the link included', async (t) => {
  const [row] = chain(1)
  const base = { ...row!, prevHash: row!.prevHash! }
  const variants: Array<Partial<AuditChainEntry>> = [
    { id: 2 }, { at: new Date(base.at.getTime() + 1) }, { actor: 'mallory' }, { action: 'channel.withdraw' },
    { target: 'channel:beta' }, { detail: { version: '9.9.9' } }, { prevHash: '1'.repeat(64) }
  ]
  for (const change of variants) t.not(auditEntryHash({ ...base, ...change }), row!.hash, Object.keys(change).join())
})

t.test('an intact chain verifies, and the report gives its rows and head', async (t) => {
  const rows = chain(5)
  const report = await verifyAuditChain(each(rows), headOf(rows))
  t.equal(report.broken, null)
  t.same(report.chained, { count: 5, firstId: 1, lastId: 5 })
  t.same(report.unchained, { count: 0, firstId: null, lastId: null })
  t.equal(report.headHash, rows[4]!.hash)
})

t.test('an empty log with the initial head verifies', async (t) => {
  const report = await verifyAuditChain(each([]), { lastId: 0, lastHash: GENESIS_HASH })
  t.equal(report.broken, null)
  t.equal(report.headHash, GENESIS_HASH)
})

t.test('a changed row is named, with both hashes', async (t) => {
  const rows = chain(5)
  rows[2] = { ...rows[2]!, actor: 'mallory' }
  const report = await verifyAuditChain(each(rows), headOf(rows))
  t.equal(report.broken?.id, 3)
  t.match(report.broken?.problem, /row 3's content does not match its hash .*the row was changed/)
  t.same(report.chained, { count: 2, firstId: 1, lastId: 2 })
})

t.test('a row removed from the middle is named at the row after the gap', async (t) => {
  const rows = chain(5)
  rows.splice(1, 1)
  const report = await verifyAuditChain(each(rows), headOf(rows))
  t.equal(report.broken?.id, 3)
  t.match(report.broken?.problem, /row 3's prev_hash \S+ is not the hash of row 1/)
})

t.test('rows swapped are named at the first out of place', async (t) => {
  const rows = chain(4)
  const swapped = [rows[0]!, rows[2]!, rows[1]!, rows[3]!]
  const report = await verifyAuditChain(each(swapped), headOf(rows))
  t.equal(report.broken?.id, 3)
})

t.test('a first chained row that does not link to the genesis value is named', async (t) => {
  const rows = chain(2, 1, 'f'.repeat(64))
  const report = await verifyAuditChain(each(rows), headOf(rows))
  t.equal(report.broken?.id, 1)
  t.match(report.broken?.problem, /is not the genesis value/)
})

t.test('rows removed from the end are caught by the head', async (t) => {
  const rows = chain(5)
  const head = headOf(rows)
  const report = await verifyAuditChain(each(rows.slice(0, 3)), head)
  t.equal(report.broken?.id, null)
  t.match(report.broken?.problem, /the chain head names row 5 .* but the chain ends at row 3/)
})

t.test('a missing head row is a break', async (t) => {
  const report = await verifyAuditChain(each(chain(2)), null)
  t.match(report.broken, { id: null, problem: /head row is missing/ })
})

t.test('rows from before the chain are counted as not covered, and the chain after them verifies', async (t) => {
  const legacy: StoredAuditRow[] = [1, 2].map((id) => ({ id, at: new Date(0), actor: 'a', action: 'x', target: 't', detail: {}, prevHash: null, hash: null }))
  const rows = [...legacy, ...chain(3, 3)]
  const report = await verifyAuditChain(each(rows), headOf(rows))
  t.equal(report.broken, null)
  t.same(report.unchained, { count: 2, firstId: 1, lastId: 2 })
  t.same(report.chained, { count: 3, firstId: 3, lastId: 5 })
})

t.test('a row without a hash after the chain started is a break', async (t) => {
  const rows = chain(3)
  rows[1] = { ...rows[1]!, hash: null, prevHash: null }
  const report = await verifyAuditChain(each(rows), headOf(rows))
  t.equal(report.broken?.id, 2)
  t.match(report.broken?.problem, /row 2 has no hash, but it comes after chained row 1/)
})

t.test('with only rows from before the chain, the head must name the last of them (as migration 0003 leaves it)', async (t) => {
  const legacy: StoredAuditRow[] = [1, 2].map((id) => ({ id, at: new Date(0), actor: 'a', action: 'x', target: 't', detail: {}, prevHash: null, hash: null }))
  t.equal((await verifyAuditChain(each(legacy), { lastId: 2, lastHash: GENESIS_HASH })).broken, null)
  t.match((await verifyAuditChain(each(legacy), { lastId: 5, lastHash: GENESIS_HASH })).broken, { id: null, problem: /head names row 5/ })
})
