import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { sql, type SQL } from 'drizzle-orm'
import { openDatabase } from '../../src/db/index.js'
import { describeAuditChainReport } from '../../src/cli/audit-commands.js'
import { runCli, type CliResult } from '../helpers/cli.js'
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

/** PGlite starting in a child process takes seconds, many more on a loaded machine. */
const CLI_TIMEOUT_MS = 180_000

async function cli (args: string[], env: Record<string, string>): Promise<CliResult> {
  return await runCli(args, env, CLI_TIMEOUT_MS)
}

for (const driver of testDrivers()) {
  t.test(`${driver}: chartcast audit verify passes an untouched log (exit 0) and names a changed row (exit 2)`, async (t) => {
    const env = await databaseEnv(t, driver)
    // Three channel files, three audit rows.
    const sync = await cli(['sync', 'channels'], env)
    t.equal(sync.code, 0, sync.stderr)
    const intact = await cli(['audit', 'verify'], env)
    t.equal(intact.code, 0, intact.stderr)
    t.match(intact.stdout, /^audit chain intact: 3 rows \(ids 1-3\), head [0-9a-f]{64}\n$/)

    await tamper(env, sql`UPDATE audit_log SET actor = 'mallory' WHERE id = 2`)
    const broken = await cli(['audit', 'verify'], env)
    t.equal(broken.code, 2)
    t.match(broken.stderr, /^audit chain BROKEN at row 2: row 2's content does not match its hash/)
    t.match(broken.stderr, /verified before the break: 1 row \(ids 1-1\)/)
  })
}

t.test('chartcast audit verify on a database without the chain (never migrated) is an error, not a pass', async (t) => {
  const env = await databaseEnv(t, testDrivers().includes('postgres') ? 'postgres' : 'pglite')
  const result = await cli(['audit', 'verify'], env)
  t.equal(result.code, 1)
  t.match(result.stderr, /this database has no audit chain yet: run chartcast migrate/)
})

t.test('the report names rows from before the chain as not covered', async (t) => {
  const lines = describeAuditChainReport({
    unchained: { count: 2, firstId: 1, lastId: 2 },
    chained: { count: 3, firstId: 3, lastId: 5 },
    headHash: 'a'.repeat(64),
    broken: null
  })
  t.same(lines, [
    `audit chain intact: 3 rows (ids 3-5), head ${'a'.repeat(64)}`,
    'not covered: 2 rows (ids 1-2) written before the chain existed (migration 0003 starts it at the next row)'
  ])
})
