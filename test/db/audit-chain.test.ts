import t from 'tap'
import { asc, sql, type SQL } from 'drizzle-orm'
import { createStore } from '../../src/db/store.js'
import { auditLog } from '../../src/db/schema.js'
import type { Database } from '../../src/db/index.js'
import { normaliseRelease } from '../../src/domain/release.js'
import { buildTestServer, testDrivers } from '../helpers/server.js'

const chart = { url: 'https://charts.example.com/acme', name: 'acme-app', version: '0.3.0' }

/** Runs statements the way an attacker with superuser rights would: with every trigger off. */
async function asSuperuserWithoutTriggers (database: Database, ...statements: SQL[]): Promise<void> {
  await database.db.transaction(async (tx) => {
    await tx.execute(sql`SET LOCAL session_replication_role = replica`)
    for (const statement of statements) await tx.execute(statement)
  })
}

/** The SQLSTATE of a failed query, wherever the driver wrapper put it. */
function sqlState (error: unknown): string | undefined {
  const e = error as { code?: string, cause?: { code?: string } }
  return e.cause?.code ?? e.code
}

async function useEveryMutation (database: Database): Promise<void> {
  const store = createStore(database.db)
  await store.upsertChannel('stable', { accepts: '>=1.0.0', values: { replicas: 3 } }, 'alice')
  await store.publishRelease(normaliseRelease({ version: '1.0.0', chart, values: { a: { b: [1, 2.5, null] } }, notes: 'ü and "quotes"' }), 'rita')
  await store.publishRelease(normaliseRelease({ version: '1.1.0', chart }), 'rita')
  await store.promote('stable', '1.0.0', 'rita', () => {})
  await store.promote('stable', '1.1.0', 'rita', () => {})
  await store.withdraw('stable', '1.1.0', 'rita', 'broken migration')
  await store.revoke({ sub: 'acme-prod', reason: 'contract ended' }, 'alice')
  await store.syncChannels([{ name: 'beta', description: '', values: {}, accepts: null, pollInterval: '5m', file: 'beta.yaml' }], 'sync:test')
}

for (const driver of testDrivers()) {
  t.test(`${driver}: audit hash chain`, async (t) => {
    t.test('after every kind of mutation the chain verifies and the head names the last row', async (t) => {
      const { database } = await buildTestServer(t, { driver })
      await useEveryMutation(database)
      const rows = await database.db.select().from(auditLog).orderBy(asc(auditLog.id))
      t.equal(rows.length, 8)
      const report = await createStore(database.db).verifyAuditChain()
      t.equal(report.broken, null)
      t.same(report.chained, { count: 8, firstId: rows[0]!.id, lastId: rows[7]!.id })
      t.equal(report.headHash, rows[7]!.hash)
      t.same(report.unchained, { count: 0, firstId: null, lastId: null })
      for (let i = 1; i < rows.length; i++) {
        t.equal(rows[i]!.prevHash, rows[i - 1]!.hash, `row ${rows[i]!.id} links to row ${rows[i - 1]!.id}`)
        t.ok(rows[i]!.at >= rows[i - 1]!.at, 'written in order')
      }
    })

    t.test('a row changed with the triggers off is named by the verifier', async (t) => {
      const { database } = await buildTestServer(t, { driver })
      await useEveryMutation(database)
      const [, second] = await database.db.select().from(auditLog).orderBy(asc(auditLog.id))
      await asSuperuserWithoutTriggers(database, sql`UPDATE audit_log SET actor = 'mallory' WHERE id = ${second!.id}`)
      const report = await createStore(database.db).verifyAuditChain()
      t.equal(report.broken?.id, second!.id)
      t.match(report.broken?.problem, /content does not match its hash/)
    })

    t.test('a changed detail (the jsonb column) is caught too', async (t) => {
      const { database } = await buildTestServer(t, { driver })
      await useEveryMutation(database)
      const rows = await database.db.select().from(auditLog).orderBy(asc(auditLog.id))
      const withdraw = rows.find((r) => r.action === 'channel.withdraw')!
      await asSuperuserWithoutTriggers(database, sql`UPDATE audit_log SET detail = jsonb_set(detail, '{reason}', '"routine"') WHERE id = ${withdraw.id}`)
      t.equal((await createStore(database.db).verifyAuditChain()).broken?.id, withdraw.id)
    })

    t.test('a row deleted from the middle is named at the row after it', async (t) => {
      const { database } = await buildTestServer(t, { driver })
      await useEveryMutation(database)
      const rows = await database.db.select().from(auditLog).orderBy(asc(auditLog.id))
      await asSuperuserWithoutTriggers(database, sql`DELETE FROM audit_log WHERE id = ${rows[3]!.id}`)
      const report = await createStore(database.db).verifyAuditChain()
      t.equal(report.broken?.id, rows[4]!.id)
      t.match(report.broken?.problem, new RegExp(`prev_hash \\S+ is not the hash of row ${rows[2]!.id}`))
    })

    t.test('rows deleted from the end are caught by the head', async (t) => {
      const { database } = await buildTestServer(t, { driver })
      await useEveryMutation(database)
      const rows = await database.db.select().from(auditLog).orderBy(asc(auditLog.id))
      await asSuperuserWithoutTriggers(database, sql`DELETE FROM audit_log WHERE id >= ${rows[6]!.id}`)
      const report = await createStore(database.db).verifyAuditChain()
      t.equal(report.broken?.id, null)
      t.match(report.broken?.problem, `the chain head names row ${rows[7]!.id}`)
    })

    t.test('TRUNCATE is refused on every append-only table and on the chain head', async (t) => {
      const { database } = await buildTestServer(t, { driver })
      await useEveryMutation(database)
      const before = await database.db.select().from(auditLog)
      for (const table of ['releases', 'channel_events', 'audit_log', 'revocations', 'revocation_lifts', 'token_revocations', 'audit_chain_head']) {
        // CASCADE, so that the trigger and not a foreign key is what refuses.
        const error = await database.db.execute(sql.raw(`TRUNCATE ${table} CASCADE`)).then(() => null, (e: unknown) => e)
        t.equal(sqlState(error), '23001', `${table}: restrict_violation`)
        t.match(String((error as { cause?: Error }).cause?.message ?? (error as Error).message), `table ${table} is append-only`, table)
      }
      t.equal((await database.db.select().from(auditLog)).length, before.length, 'nothing was emptied')
      t.equal((await createStore(database.db).verifyAuditChain()).broken, null)
    })

    t.test('20 publishes and 20 promotions at once leave one linear chain', async (t) => {
      const s = await buildTestServer(t, { driver, env: { RATE_LIMIT_API: '0' } })
      t.equal((await s.putChannel('stable')).statusCode, 201)
      for (let i = 0; i < 20; i++) t.equal((await s.publish(`1.0.${i}`)).statusCode, 201)
      const responses = await Promise.all([
        ...Array.from({ length: 20 }, async (_, i) => await s.publish(`2.0.${i}`)),
        ...Array.from({ length: 20 }, async (_, i) => await s.promote('stable', `1.0.${i}`))
      ])
      t.same(responses.map((r) => r.statusCode), Array.from({ length: 40 }, () => 201))
      const report = await createStore(s.database.db).verifyAuditChain()
      t.equal(report.broken, null)
      t.equal(report.chained.count, 61)
    })
  })
}
