/** The store's session records: sign-in and sign-out audit rows, ended sessions and their pruning. */
import t from 'tap'
import { sql } from 'drizzle-orm'
import { createStore } from '../../src/db/store.js'
import { auditLog, sessionRevocations } from '../../src/db/schema.js'
import { buildTestServer, testDrivers } from '../helpers/server.js'

for (const driver of testDrivers()) {
  t.test(`${driver}: startSession writes one audit row naming the person`, async (t) => {
    const s = await buildTestServer(t, { driver })
    const store = createStore(s.database.db)
    await store.startSession('sid-1', 'pat@example.com', { via: 'oidc', role: 'publisher', expiresAt: '2026-12-01T13:00:00.000Z' })
    const rows = await s.database.db.select().from(auditLog)
    t.match(rows, [{ actor: 'pat@example.com', action: 'session.start', target: 'session:sid-1', detail: { via: 'oidc', role: 'publisher' } }])
  })

  t.test(`${driver}: endSession records the id once, audits once, and the list holds it until long after it expires`, async (t) => {
    const s = await buildTestServer(t, { driver })
    const store = createStore(s.database.db)
    const later = new Date(Date.now() + 3600_000)
    t.same(await store.endSession('sid-1', later, 'pat'), { ended: true })
    t.same(await store.endSession('sid-1', later, 'pat'), { ended: false }, 'a second sign-out changes nothing')
    t.equal((await s.database.db.select().from(auditLog)).filter((r) => r.action === 'session.end').length, 1)
    t.same((await store.listSessionRevocations()).map((r) => r.sid), ['sid-1'])
  })

  t.test(`${driver}: rows of sessions expired over a day ago are not listed, and the next sign-out removes them`, async (t) => {
    const s = await buildTestServer(t, { driver })
    const store = createStore(s.database.db)
    await s.database.db.insert(sessionRevocations).values([
      { sid: 'old', expiresAt: new Date(Date.now() - 2 * 86_400_000), actor: 'a' },
      { sid: 'recent', expiresAt: new Date(Date.now() - 3600_000), actor: 'a' }
    ])
    t.same((await store.listSessionRevocations()).map((r) => r.sid).sort(), ['recent'], 'an hour past expiry is still listed (clock margin)')
    await store.endSession('new', new Date(Date.now() + 3600_000), 'a')
    const left = await s.database.db.select({ sid: sessionRevocations.sid }).from(sessionRevocations).orderBy(sql`sid`)
    t.same(left.map((r) => r.sid), ['new', 'recent'])
  })
}
