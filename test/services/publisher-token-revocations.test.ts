import t from 'tap'
import { PublisherTokenRevocations } from '../../src/services/publisher-token-revocations.js'
import type { TokenRevocationRow } from '../../src/db/schema.js'

function row (id: number, jti: string): TokenRevocationRow {
  return { id, jti, reason: 'r', actor: 'alice', at: new Date(0) }
}

function fakeStore (answers: TokenRevocationRow[][]): { listPublisherTokenRevocations: () => Promise<TokenRevocationRow[]> } {
  return { listPublisherTokenRevocations: async () => answers.shift() ?? [] }
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
