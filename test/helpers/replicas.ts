/**
 * Two app instances on one database, as two replicas would run: on PostgreSQL each with its own
 * pool and LISTEN connection, on PGlite sharing the one embedded instance (whose notices reach
 * every listener). Both sign with the same license key and AUTH_SECRET.
 */
import type { Test } from 'tap'
import { openDatabase } from '../../src/db/index.js'
import { buildTestServer, createThrowawayDatabase, type Driver, type TestServer, type TestServerOptions } from './server.js'

/** `options` (environment, clock) apply to both replicas. */
export async function twoReplicas (t: Test, driver: Driver, options: Pick<TestServerOptions, 'env' | 'now'> = {}): Promise<{ a: TestServer, b: TestServer }> {
  if (driver === 'pglite') {
    const a = await buildTestServer(t, options)
    const b = await buildTestServer(t, { ...options, database: a.database, keyPair: a.keyPair, authSecret: a.authSecret })
    return { a, b }
  }
  const throwaway = await createThrowawayDatabase()
  const dbA = await openDatabase({ databaseUrl: throwaway.url, dataDir: '/nonexistent' })
  const dbB = await openDatabase({ databaseUrl: throwaway.url, dataDir: '/nonexistent' })
  await dbA.migrate()
  // Closed here, in this order, so the databases are closed after both apps and dropped last.
  const later = { teardown: () => {} }
  const a = await buildTestServer(later, { ...options, database: dbA })
  const b = await buildTestServer(later, { ...options, database: dbB, keyPair: a.keyPair, authSecret: a.authSecret })
  t.teardown(async () => {
    await a.close()
    await b.close()
    await dbA.close()
    await dbB.close()
    await throwaway.drop()
  })
  return { a, b }
}
