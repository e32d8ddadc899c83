import t from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { buildTestServer, testDrivers, type TestServer } from '../helpers/server.js'
import { assertProblem, auth } from '../helpers/problem.js'

async function revoke (s: TestServer, payload: unknown, token = s.tokens.admin): Promise<LightMyRequestResponse> {
  return await s.app.inject({ method: 'POST', url: '/licenses/revocations', headers: auth(token), payload: payload as Record<string, unknown> })
}

async function list (s: TestServer): Promise<Array<Record<string, unknown>>> {
  const res = await s.app.inject({ url: '/licenses/revocations', headers: auth(s.tokens.admin) })
  return res.json().revocations
}

for (const driver of testDrivers()) {
  t.test(driver, async (t) => {
    t.test('an admin revokes by jti: 201 with the stored revocation', async (t) => {
      const s = await buildTestServer(t, { driver })
      const res = await revoke(s, { jti: 'lic-1', reason: 'leaked on a forum' })
      t.equal(res.statusCode, 201, res.body)
      t.match(res.json(), { jti: 'lic-1', sub: null, reason: 'leaked on a forum', actor: 'alice-admin' })
      t.type(res.json().id, 'number')
      t.ok(!Number.isNaN(Date.parse(res.json().at)))
    })

    t.test('an admin revokes by sub, or by both', async (t) => {
      const s = await buildTestServer(t, { driver })
      t.match((await revoke(s, { sub: 'acme-prod', reason: 'contract ended' })).json(), { jti: null, sub: 'acme-prod' })
      t.match((await revoke(s, { sub: 'acme-dev', jti: 'lic-9', reason: 'both' })).json(), { jti: 'lic-9', sub: 'acme-dev' })
    })

    t.test('a revocation needs a jti or a sub: 400 VALIDATION_FAILED, nothing stored', async (t) => {
      const s = await buildTestServer(t, { driver })
      t.match(assertProblem(t, await revoke(s, { reason: 'who?' }), 400, 'VALIDATION_FAILED').detail, /jti.*sub/)
      t.same(await list(s), [])
    })

    t.test('a revocation needs a reason, no unknown fields and no empty strings', async (t) => {
      const s = await buildTestServer(t, { driver })
      assertProblem(t, await revoke(s, { jti: 'x' }), 400, 'VALIDATION_FAILED')
      assertProblem(t, await revoke(s, { jti: 'x', reason: 'r', extra: 1 }), 400, 'VALIDATION_FAILED')
      assertProblem(t, await revoke(s, { jti: '', reason: 'r' }), 400, 'VALIDATION_FAILED')
      assertProblem(t, await revoke(s, { jti: 'x', reason: '' }), 400, 'VALIDATION_FAILED')
      t.same(await list(s), [])
    })

    t.test('only an admin may revoke: a publisher gets 403 FORBIDDEN, nothing stored', async (t) => {
      const s = await buildTestServer(t, { driver })
      assertProblem(t, await revoke(s, { jti: 'x', reason: 'r' }, s.tokens.publisher), 403, 'FORBIDDEN')
      t.same(await list(s), [])
    })

    t.test('revoking without a token is 401 UNAUTHORIZED', async (t) => {
      const s = await buildTestServer(t, { driver })
      const res = await s.app.inject({ method: 'POST', url: '/licenses/revocations', payload: { jti: 'x', reason: 'r' } })
      assertProblem(t, res, 401, 'UNAUTHORIZED')
      t.ok(res.headers['www-authenticate'])
    })

    t.test('GET /licenses/revocations lists every revocation, newest first', async (t) => {
      const s = await buildTestServer(t, { driver })
      await revoke(s, { jti: 'a', reason: 'one' })
      await revoke(s, { sub: 'b', reason: 'two' })
      t.same((await list(s)).map((r) => [r.jti, r.sub, r.reason]), [[null, 'b', 'two'], ['a', null, 'one']])
    })

    t.test('listing revocations needs the admin role', async (t) => {
      const s = await buildTestServer(t, { driver })
      assertProblem(t, await s.app.inject({ url: '/licenses/revocations', headers: auth(s.tokens.reader) }), 403, 'FORBIDDEN')
    })

    t.test('revocations persist: a new server on the same database refuses the license', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable')
      await s.publish('1.0.0')
      await s.promote('stable', '1.0.0')
      await revoke(s, { sub: 'cluster-9', reason: 'gone' })
      const replica = await buildTestServer(t, { driver, database: s.database, keyPair: s.keyPair })
      const license = await replica.license({ sub: 'cluster-9' })
      assertProblem(t, await replica.app.inject({ url: '/channels/stable/spec', headers: auth(license) }), 403, 'LICENSE_REVOKED')
    })
  })
}
