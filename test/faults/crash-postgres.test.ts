/** kill -9 of the real server on PostgreSQL (a throwaway database); see crash-scenario.ts. */
import t from 'tap'
import { createThrowawayDatabase } from '../helpers/server.js'
import { crashScenario } from './crash-scenario.js'
import { NEEDS_POSTGRES, postgresUrl } from './support.js'

t.test('kill -9 on PostgreSQL', { skip: postgresUrl() === null ? NEEDS_POSTGRES : false }, async (t) => {
  const throwaway = await createThrowawayDatabase()
  t.teardown(async () => { await throwaway.drop() })
  await crashScenario(t, { DATABASE_URL: throwaway.url })
})
