/** How schema validation failures read in problem details. */
import t from 'tap'
import { buildTestServer } from '../helpers/server.js'
import { assertProblem, auth } from '../helpers/problem.js'
import { DrizzleQueryError } from 'drizzle-orm'
import { logSafeReason } from '../../src/plugins/problems.js'

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

t.test('logSafeReason: a failed query is its SQLSTATE, never its SQL or parameters; our own errors keep their message', async (t) => {
  const driverError = Object.assign(new Error('duplicate key value violates unique constraint "releases_pkey"'), { code: '23505' })
  const failed = new DrizzleQueryError('INSERT INTO releases (version, notes) VALUES ($1, $2)', ['1.0.0', 'secret note'], driverError)
  t.match(failed.message, /secret note/, 'drizzle\'s own message carries the parameters')
  t.equal(logSafeReason(failed), 'the database refused the query (SQLSTATE 23505)')
  const noCode = new DrizzleQueryError('SELECT * FROM licenses WHERE jti = $1', ['a-jti'], new Error('something odd'))
  t.equal(logSafeReason(noCode), 'a database query failed')
  const lost = new DrizzleQueryError('SELECT 1', [], Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }))
  t.equal(logSafeReason(lost), 'the database is unreachable')
  t.equal(logSafeReason(new Error('the signing key has no kid')), 'the signing key has no kid')
  t.equal(logSafeReason('thrown text'), 'an unknown failure')
})
