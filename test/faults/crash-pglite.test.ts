/** kill -9 of the real server on the embedded PGlite data directory (DATABASE_URL unset); see crash-scenario.ts. */
import t from 'tap'
import { crashScenario } from './crash-scenario.js'

t.test('kill -9 on the embedded PGlite data directory', async (t) => {
  await crashScenario(t, {})
})
