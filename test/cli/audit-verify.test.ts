import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { sql, type SQL } from 'drizzle-orm'
import { openDatabase } from '../../src/db/index.js'
import { runCli } from '../helpers/cli.js'
import { createThrowawayDatabase, testDrivers, type Driver } from '../helpers/server.js'

/** Where the CLI finds the database: DATABASE_URL for PostgreSQL, DATA_DIR for the embedded one. */
async function databaseEnv (t: { teardown (fn: () => unknown): void }, driver: Driver): Promise<Record<string, string>> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'chartcast-audit-cli-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  if (driver === 'pglite') return { DATA_DIR: dataDir }
  const throwaway = await createThrowawayDatabase()
  t.teardown(async () => { await throwaway.drop() })
  return { DATA_DIR: dataDir, DATABASE_URL: throwaway.url }
}

/** Runs statements against the CLI's database from outside, with every trigger off, as a superuser could. */
async function tamper (env: Record<string, string>, ...statements: SQL[]): Promise<void> {
  const database = await openDatabase({ databaseUrl: env.DATABASE_URL ?? null, dataDir: env.DATA_DIR! })
  try {
    await database.db.transaction(async (tx) => {
      await tx.execute(sql`SET LOCAL session_replication_role = replica`)
      for (const statement of statements) await tx.execute(statement)
    })
  } finally {
    await database.close()
  }
}

for (const driver of testDrivers()) {
  t.test(`${driver}: chartcast audit verify`, async (t) => {
    t.test('an untouched log verifies (exit 0); a changed row is named (exit 2)', async (t) => {
      const env = await databaseEnv(t, driver)
      // Three channel files, three audit rows.
      const sync = await runCli(['sync', 'channels'], env)
      t.equal(sync.code, 0, sync.stderr)
      const intact = await runCli(['audit', 'verify'], env)
      t.equal(intact.code, 0, intact.stderr)
      t.match(intact.stdout, /^audit chain intact: 3 rows \(ids 1-3\), head [0-9a-f]{64}\n$/)

      await tamper(env, sql`UPDATE audit_log SET actor = 'mallory' WHERE id = 2`)
      const broken = await runCli(['audit', 'verify'], env)
      t.equal(broken.code, 2)
      t.match(broken.stderr, /^audit chain BROKEN at row 2: row 2's content does not match its hash/)
      t.match(broken.stderr, /verified before the break: 1 row \(ids 1-1\)/)
    })

    t.test('a deleted row is named at the row after it', async (t) => {
      const env = await databaseEnv(t, driver)
      t.equal((await runCli(['sync', 'channels'], env)).code, 0)
      await tamper(env, sql`DELETE FROM audit_log WHERE id = 1`)
      const broken = await runCli(['audit', 'verify'], env)
      t.equal(broken.code, 2)
      t.match(broken.stderr, /BROKEN at row 2: row 2's prev_hash \S+ is not the genesis value/)
    })

    t.test('a database without the chain (never migrated) is an error, not a pass', async (t) => {
      const env = await databaseEnv(t, driver)
      const result = await runCli(['audit', 'verify'], env)
      t.equal(result.code, 1)
      t.match(result.stderr, /this database has no audit chain yet: run chartcast migrate/)
    })
  })
}

t.test('rows from before the chain are reported as not covered', async (t) => {
  const env = await databaseEnv(t, 'pglite')
  t.equal((await runCli(['migrate'], env)).code, 0)
  // What migration 0003 leaves on an older database: rows without hashes, the head after the last of them.
  await tamper(env,
    sql`INSERT INTO audit_log (actor, action, target, detail) VALUES ('old', 'release.publish', 'release:0.9.0', '{}'), ('old', 'release.publish', 'release:0.9.1', '{}')`,
    sql`UPDATE audit_chain_head SET last_id = 2`)
  t.equal((await runCli(['sync', 'channels'], env)).code, 0)
  const result = await runCli(['audit', 'verify'], env)
  t.equal(result.code, 0, result.stderr)
  t.match(result.stdout, /audit chain intact: 3 rows \(ids 3-5\)/)
  t.match(result.stdout, /not covered: 2 rows \(ids 1-2\) written before the chain existed/)
})
