/** How schema validation failures read in problem details. */
import t from 'tap'
import { buildTestServer } from '../helpers/server.js'
import { assertProblem, auth } from '../helpers/problem.js'

const CHART = { url: 'https://charts.example.com/acme', name: 'acme-app', version: '0.1.0' }

t.test('an unknown key in a request body names the key, the nearest allowed one and the allowed list', async (t) => {
  const s = await buildTestServer(t)
  const publish = async (payload: Record<string, unknown>) => await s.app.inject({ method: 'POST', url: '/releases', headers: auth(s.tokens.publisher), payload })
  t.equal(assertProblem(t, await publish({ version: '1.0.0', chart: CHART, note: 'x' }), 400, 'VALIDATION_FAILED').detail,
    'body: unknown key "note"; did you mean "notes"? allowed: version, chart, values, notes, upgradeFrom')
  t.equal(assertProblem(t, await publish({ version: '1.0.0', chart: { ...CHART, digets: 'x' } }), 400, 'VALIDATION_FAILED').detail,
    'body.chart: unknown key "digets"; did you mean "digest"? allowed: url, name, version, digest')
  const put = await s.putChannel('stable', { acepts: '>=1.0.0' })
  t.equal(assertProblem(t, put, 400, 'VALIDATION_FAILED').detail,
    'body: unknown key "acepts"; did you mean "accepts"? allowed: description, values, accepts, pollInterval')
  t.equal((await s.app.inject({ url: '/releases', headers: auth(s.tokens.reader) })).json().releases.length, 0, 'nothing stored')
})

t.test('an unknown query parameter is named as one, with the parameter meant', async (t) => {
  const s = await buildTestServer(t)
  const res = await s.app.inject({ method: 'DELETE', url: '/channels/stable/releases/1.0.0?reasn=broken', headers: auth(s.tokens.publisher) })
  t.equal(assertProblem(t, res, 400, 'VALIDATION_FAILED').detail, 'unknown query parameter "reasn"; did you mean "reason"? allowed: reason, rollback')
})

t.test('other validation failures keep the validator\'s message', async (t) => {
  const s = await buildTestServer(t)
  const res = await s.app.inject({ method: 'POST', url: '/releases', headers: auth(s.tokens.publisher), payload: { version: '1.0.0' } })
  t.match(assertProblem(t, res, 400, 'VALIDATION_FAILED').detail, /required property 'chart'/)
})
