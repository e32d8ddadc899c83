import t from 'tap'
import { PublisherTokenRevocations } from '../../src/services/publisher-token-revocations.js'
import type { SessionRevocationRow, TokenRevocationRow } from '../../src/db/schema.js'

function row (id: number, jti: string): TokenRevocationRow {
  return { id, jti, reason: 'r', actor: 'alice', at: new Date(0) }
}

function fakeStore (answers: TokenRevocationRow[][], sessions: SessionRevocationRow[][] = []) {
  return { listPublisherTokenRevocations: async () => answers.shift() ?? [], listSessionRevocations: async () => sessions.shift() ?? [] }
}

function ended (sid: string): SessionRevocationRow {
  return { sid, expiresAt: new Date(0), actor: 'alice', at: new Date(0) }
}

t.test('load reads the stored revocations', async (t) => {
  const revocations = new PublisherTokenRevocations(fakeStore([[row(2, 'b'), row(1, 'a')]]))
  t.same([...revocations.jtis].sort(), [])
  await revocations.load()
  t.same([...revocations.jtis].sort(), ['a', 'b'])
})

t.test('add takes effect without a load', async (t) => {
  const revocations = new PublisherTokenRevocations(fakeStore([]))
  revocations.add('c')
  t.ok(revocations.jtis.has('c'))
})

t.test('a load that read an older state does not bring back a revoked token', async (t) => {
  const revocations = new PublisherTokenRevocations(fakeStore([[row(1, 'a'), row(2, 'b')], [row(1, 'a')]]))
  await revocations.load()
  await revocations.load()
  t.ok(revocations.jtis.has('b'))
})

t.test('load reads the ended sessions, and a later load that misses one keeps it ended', async (t) => {
  const revocations = new PublisherTokenRevocations(fakeStore([], [[ended('s1'), ended('s2')], [ended('s1')]]))
  await revocations.load()
  t.same([...revocations.sessions].sort(), ['s1', 's2'])
  await revocations.load()
  t.ok(revocations.sessions.has('s2'))
})

t.test('endSession takes effect without a load', async (t) => {
  const revocations = new PublisherTokenRevocations(fakeStore([]))
  revocations.endSession('s3')
  t.ok(revocations.sessions.has('s3'))
  t.notOk(revocations.jtis.has('s3'), 'a session id is not a token id')
})
