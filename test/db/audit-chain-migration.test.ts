/**
 * Migration 0003 on a database that already has audit rows: they stay unchained and the chain
 * starts after them.
 */
import t from 'tap'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { drizzle } from 'drizzle-orm/pglite'
import { migrate } from 'drizzle-orm/pglite/migrator'
import { sql } from 'drizzle-orm'
import { MIGRATIONS_DIR } from '../../src/db/index.js'
import { createStore } from '../../src/db/store.js'
import type { AppDatabase } from '../../src/db/index.js'
import * as schema from '../../src/db/schema.js'
import { normaliseRelease } from '../../src/domain/release.js'

/** A copy of the migrations folder holding only the migrations before 0003. */
function migrationsBefore0003 (t: { teardown (fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'chartcast-migrations-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(path.join(dir, 'meta'))
  const journal = JSON.parse(readFileSync(path.join(MIGRATIONS_DIR, 'meta', '_journal.json'), 'utf8')) as { entries: Array<{ idx: number, tag: string }> }
  journal.entries = journal.entries.filter((e) => e.idx < 2)
  for (const entry of journal.entries) cpSync(path.join(MIGRATIONS_DIR, `${entry.tag}.sql`), path.join(dir, `${entry.tag}.sql`))
  writeFileSync(path.join(dir, 'meta', '_journal.json'), JSON.stringify(journal))
  return dir
}

t.test('rows written before migration 0003 are reported as not covered, and the chain after them verifies', async (t) => {
  const client = new PGlite()
  t.teardown(async () => { await client.close() })
  await migrate(drizzle(client), { migrationsFolder: migrationsBefore0003(t) })
  const raw = drizzle(client)
  await raw.execute(sql`INSERT INTO audit_log (actor, action, target, detail) VALUES ('old', 'release.publish', 'release:0.9.0', '{"digest":"x"}'), ('old', 'license.revoke', 'license:sub:a', '{}')`)
  await migrate(drizzle(client), { migrationsFolder: MIGRATIONS_DIR })

  const db = drizzle(client, { schema }) as unknown as AppDatabase
  const store = createStore(db)
  const before = await store.verifyAuditChain()
  t.equal(before.broken, null, 'right after the migration')
  t.same(before.unchained, { count: 2, firstId: 1, lastId: 2 })

  await store.publishRelease(normaliseRelease({ version: '1.0.0', chart: { url: 'https://charts.example.com/acme', name: 'acme-app', version: '0.1.0' } }), 'rita')
  await store.upsertChannel('stable', {}, 'alice')
  const after = await store.verifyAuditChain()
  t.equal(after.broken, null)
  t.same(after.unchained, { count: 2, firstId: 1, lastId: 2 })
  t.same(after.chained, { count: 2, firstId: 3, lastId: 4 })
})
