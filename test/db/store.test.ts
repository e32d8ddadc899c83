import t from 'tap'
import { eq, sql } from 'drizzle-orm'
import { createStore } from '../../src/db/store.js'
import { auditLog, releases } from '../../src/db/schema.js'
import { normaliseRelease } from '../../src/domain/release.js'
import { ChartcastError } from '../../src/errors.js'
import pg from 'pg'
import { CHANGE_CHANNEL } from '../../src/db/index.js'
import { buildTestServer, testDrivers, type TestServer } from '../helpers/server.js'

/**
 * Listens for change notices beside the server's own listener: PGlite takes more listeners on
 * its one connection; on PostgreSQL the driver keeps a single listening connection, so the test
 * opens its own.
 */
async function listenApart (server: TestServer, onNotice: (payload: string) => void): Promise<() => Promise<void>> {
  if (server.databaseUrl === null) return await server.database.listen(onNotice, () => {})
  const client = new pg.Client({ connectionString: server.databaseUrl })
  await client.connect()
  client.on('notification', (message) => { if (message.channel === CHANGE_CHANNEL) onNotice(message.payload ?? '') })
  await client.query(`LISTEN ${CHANGE_CHANNEL}`)
  return async () => { await client.end() }
}

/** What the append-only triggers raise (migrations/0001_append_only_guards.sql), as drizzle wraps it. */

const chart = { url: 'https://charts.example.com/acme', name: 'acme-app', version: '0.3.0' }

/** What the append-only triggers raise (migrations/0001): SQLSTATE 23001 restrict_violation, through drizzle's wrapper. */
const appendOnly = (table: string) => ({ cause: { code: '23001', message: `table ${table} is append-only` } })

for (const driver of testDrivers()) {
  t.test(`${driver}: the database refuses to update or delete a release`, async (t) => {
    const { database } = await buildTestServer(t, { driver })
    const store = createStore(database.db)
    await store.publishRelease(normaliseRelease({ version: '1.0.0', chart }), 'tester')
    await t.rejects(database.db.update(releases).set({ chartVersion: '9.9.9' }).where(eq(releases.version, '1.0.0')), appendOnly('releases'))
    await t.rejects(database.db.delete(releases).where(eq(releases.version, '1.0.0')), appendOnly('releases'))
    const [row] = await database.db.select().from(releases)
    t.equal(row?.chartVersion, '0.3.0')
  })

  t.test(`${driver}: the audit log is append-only`, async (t) => {
    const { database } = await buildTestServer(t, { driver })
    const store = createStore(database.db)
    await store.publishRelease(normaliseRelease({ version: '1.0.0', chart }), 'tester')
    await t.rejects(database.db.execute(sql`delete from audit_log`), appendOnly('audit_log'))
    t.equal((await database.db.select().from(auditLog)).length, 1)
  })

  t.test(`${driver}: a failed promotion writes neither membership, event nor audit row`, async (t) => {
    const { database } = await buildTestServer(t, { driver })
    const store = createStore(database.db)
    await store.upsertChannel('stable', { accepts: '>=1.0.0 <2.0.0' }, 'tester')
    await store.publishRelease(normaliseRelease({ version: '2.0.0', chart }), 'tester')
    const auditBefore = (await database.db.select().from(auditLog)).length
    await t.rejects(store.promote('stable', '2.0.0', 'tester', () => { throw new ChartcastError('VERSION_NOT_ACCEPTED', 'no') }), { code: 'VERSION_NOT_ACCEPTED' })
    t.same(await store.listMemberships('stable'), [])
    t.same(await store.channelHistory('stable'), [])
    t.equal((await database.db.select().from(auditLog)).length, auditBefore)
  })

  t.test(`${driver}: promoting twice changes the channel once`, async (t) => {
    const { database } = await buildTestServer(t, { driver })
    const store = createStore(database.db)
    await store.upsertChannel('stable', {}, 'tester')
    await store.publishRelease(normaliseRelease({ version: '1.0.0', chart }), 'tester')
    t.match(await store.promote('stable', '1.0.0', 'tester', () => {}), { promoted: true })
    t.match(await store.promote('stable', '1.0.0', 'tester', () => {}), { promoted: false })
    t.equal((await store.channelHistory('stable')).length, 1)
  })

  t.test(`${driver}: a withdrawn release can be promoted again, and history keeps every step`, async (t) => {
    const { database } = await buildTestServer(t, { driver })
    const store = createStore(database.db)
    await store.upsertChannel('stable', {}, 'tester')
    await store.publishRelease(normaliseRelease({ version: '1.0.0', chart }), 'tester')
    await store.promote('stable', '1.0.0', 'tester', () => {})
    t.same(await store.withdraw('stable', '1.0.0', 'tester', 'bad migration'), { withdrawn: true })
    t.same(await store.withdraw('stable', '1.0.0', 'tester', null), { withdrawn: false })
    t.match(await store.promote('stable', '1.0.0', 'tester', () => {}), { promoted: true })
    t.same((await store.channelHistory('stable')).map((e) => e.action), ['promote', 'withdraw', 'promote'])
    t.same((await store.listMemberships('stable')).map((m) => m.state), ['active'])
  })

  t.test(`${driver}: syncing channel files twice writes once`, async (t) => {
    const { database } = await buildTestServer(t, { driver })
    const store = createStore(database.db)
    const defs = [{ name: 'stable', description: 'prod', values: { a: 1 }, accepts: null, pollInterval: '1h', file: 'stable.yaml' }]
    t.same(await store.syncChannels(defs, 'sync:test'), { created: ['stable'], updated: [], unchanged: [], frozen: [], unmanaged: [] })
    t.same(await store.syncChannels(defs, 'sync:test'), { created: [], updated: [], unchanged: ['stable'], frozen: [], unmanaged: [] })
    t.equal((await database.db.select().from(auditLog)).length, 1)
  })

  t.test(`${driver}: a sync leaves a frozen channel serving what it serves, and applies the file after the unfreeze`, async (t) => {
    const { database } = await buildTestServer(t, { driver })
    const store = createStore(database.db)
    const file = (values: Record<string, unknown>, description = 'prod') => [{ name: 'stable', description, values, accepts: null, pollInterval: '1h', file: 'stable.yaml' }]
    const now = Date.now()
    await store.syncChannels(file({ a: 1 }), 'sync:test', now)
    await store.freezeChannel('stable', 'incident 42', null, 'tester', now)
    const audits = (await database.db.select().from(auditLog)).length
    t.same(await store.syncChannels(file({ a: 2 }), 'sync:test', now + 1000), { created: [], updated: [], unchanged: [], frozen: ['stable'], unmanaged: [] })
    t.same((await store.getChannel('stable'))?.values, { a: 1 }, 'the frozen channel still has its values')
    t.equal((await database.db.select().from(auditLog)).length, audits, 'nothing changed, so no audit row')
    t.same((await store.syncChannels(file({ a: 1 }, 'prod, frozen'), 'sync:test', now + 2000)).updated, ['stable'], 'a description alone changes no answer, so it syncs')
    await store.unfreezeChannel('stable', 'tester', null, now + 3000)
    t.same((await store.syncChannels(file({ a: 2 }), 'sync:test', now + 4000)).updated, ['stable'])
    t.same((await store.getChannel('stable'))?.values, { a: 2 }, 'applied once unfrozen')
  })

  t.test(`${driver}: a publish sends no change notice (no spec changes until a promotion); channel changes do`, async (t) => {
    const server = await buildTestServer(t, { driver })
    const store = createStore(server.database.db)
    const notices: unknown[] = []
    let secondChannelNotice: () => void = () => {}
    const heard = new Promise<void>((resolve) => { secondChannelNotice = resolve })
    const onNotice = (payload: string): void => {
      notices.push(JSON.parse(payload))
      if (notices.filter((n) => (n as { kind?: string }).kind === 'channel').length === 2) secondChannelNotice()
    }
    t.teardown(await listenApart(server, onNotice))
    await store.upsertChannel('stable', {}, 'tester')
    await store.publishRelease(normaliseRelease({ version: '1.0.0', chart }), 'tester')
    await store.promote('stable', '1.0.0', 'tester', () => {})
    // Notices arrive in commit order, so one sent by the publish would come before the promotion's.
    await heard
    t.same(notices, [{ kind: 'channel', name: 'stable' }, { kind: 'channel', name: 'stable' }])
  })
}
