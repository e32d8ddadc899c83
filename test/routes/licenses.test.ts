import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { sql } from 'drizzle-orm'
import { buildTestServer, testDrivers, type Driver, type TestServer } from '../helpers/server.js'
import { pollUntil } from '../faults/support.js'
import { twoReplicas } from '../helpers/replicas.js'
import { assertProblem, auth } from '../helpers/problem.js'

async function revoke (s: TestServer, payload: unknown, token = s.tokens.admin): Promise<LightMyRequestResponse> {
  return await s.app.inject({ method: 'POST', url: '/licenses/revocations', headers: auth(token), payload: payload as Record<string, unknown> })
}

async function lift (s: TestServer, id: number | string, payload: unknown, token = s.tokens.admin): Promise<LightMyRequestResponse> {
  return await s.app.inject({ method: 'POST', url: `/licenses/revocations/${id}/lift`, headers: auth(token), payload: payload as Record<string, unknown> })
}

async function pull (s: TestServer, license: string): Promise<LightMyRequestResponse> {
  return await s.app.inject({ url: '/channels/stable/spec', headers: auth(license) })
}

/** A server whose channel stable serves 1.0.0. */
async function withStable (t: Test, driver: Driver): Promise<TestServer> {
  const s = await buildTestServer(t, { driver })
  await s.putChannel('stable')
  await s.publish('1.0.0')
  await s.promote('stable', '1.0.0')
  return s
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
      // Issued before the revocation: a sub revocation refuses the licenses issued up to it.
      const license = await s.license({ sub: 'cluster-9' })
      await revoke(s, { sub: 'cluster-9', reason: 'gone' })
      const replica = await buildTestServer(t, { driver, database: s.database, keyPair: s.keyPair })
      assertProblem(t, await replica.app.inject({ url: '/channels/stable/spec', headers: auth(license) }), 403, 'LICENSE_REVOKED')
    })

    t.test('lifting a revocation: 201 with the lift, and the license is served again', async (t) => {
      const s = await withStable(t, driver)
      const license = await s.license({ sub: 'acme-prod', jti: 'lic-1' })
      const revoked = (await revoke(s, { jti: 'lic-1', reason: 'unpaid invoice' })).json()
      assertProblem(t, await pull(s, license), 403, 'LICENSE_REVOKED')
      const res = await lift(s, revoked.id, { reason: 'invoice paid' })
      t.equal(res.statusCode, 201, res.body)
      t.match(res.json(), { id: revoked.id, jti: 'lic-1', reason: 'unpaid invoice', lifted: { revocationId: revoked.id, reason: 'invoice paid', actor: 'alice-admin' } })
      t.equal((await pull(s, license)).statusCode, 200)
    })

    t.test('a lift is audited, and the listing shows which revocations are lifted', async (t) => {
      const s = await buildTestServer(t, { driver })
      const first = (await revoke(s, { jti: 'a', reason: 'one' })).json()
      await revoke(s, { sub: 'b', reason: 'two' })
      await lift(s, first.id, { reason: 'mistake' })
      t.match(await list(s), [{ sub: 'b', lifted: null }, { jti: 'a', lifted: { reason: 'mistake' } }])
      const entries = (await s.app.inject({ url: '/audit', headers: auth(s.tokens.admin) })).json().entries as Array<Record<string, unknown>>
      t.match(entries.filter((e) => e.action === 'license.revocation.lift'), [{ actor: 'alice-admin', target: `revocation:${first.id}`, detail: { jti: 'a', sub: null, reason: 'mistake' } }])
    })

    t.test('a revocation is lifted once: a second lift is 409 REVOCATION_ALREADY_LIFTED, nothing stored', async (t) => {
      const s = await buildTestServer(t, { driver })
      const revoked = (await revoke(s, { jti: 'a', reason: 'one' })).json()
      t.equal((await lift(s, revoked.id, { reason: 'first' })).statusCode, 201)
      assertProblem(t, await lift(s, revoked.id, { reason: 'second' }), 409, 'REVOCATION_ALREADY_LIFTED')
      t.match(await list(s), [{ lifted: { reason: 'first' } }])
    })

    t.test('lifting an unknown revocation is 404 REVOCATION_NOT_FOUND; a bad id or body is 400', async (t) => {
      const s = await buildTestServer(t, { driver })
      assertProblem(t, await lift(s, 42, { reason: 'r' }), 404, 'REVOCATION_NOT_FOUND')
      const revoked = (await revoke(s, { jti: 'a', reason: 'one' })).json()
      for (const id of ['0', 'abc', '-1', '1.5', '9999999999999999']) assertProblem(t, await lift(s, id, { reason: 'r' }), 400, 'VALIDATION_FAILED')
      for (const body of [{}, { reason: '' }, { reason: 'r', jti: 'a' }]) assertProblem(t, await lift(s, revoked.id, body), 400, 'VALIDATION_FAILED')
      t.match(await list(s), [{ lifted: null }])
    })

    t.test('only an admin may lift a revocation: a publisher gets 403 FORBIDDEN, nothing stored', async (t) => {
      const s = await buildTestServer(t, { driver })
      const revoked = (await revoke(s, { jti: 'a', reason: 'one' })).json()
      assertProblem(t, await lift(s, revoked.id, { reason: 'r' }, s.tokens.publisher), 403, 'FORBIDDEN')
      t.match(await list(s), [{ lifted: null }])
    })

    t.test('lifting one revocation leaves another of the same deployment in force', async (t) => {
      const s = await withStable(t, driver)
      const license = await s.license({ sub: 'acme-prod', jti: 'lic-1' })
      const bySub = (await revoke(s, { sub: 'acme-prod', reason: 'contract ended' })).json()
      await revoke(s, { jti: 'lic-1', reason: 'leaked' })
      await lift(s, bySub.id, { reason: 'contract renewed' })
      assertProblem(t, await pull(s, license), 403, 'LICENSE_REVOKED')
    })

    t.test('a lifted revocation can be followed by a new revocation', async (t) => {
      const s = await withStable(t, driver)
      const license = await s.license({ sub: 'acme-prod', jti: 'lic-1' })
      const first = (await revoke(s, { jti: 'lic-1', reason: 'one' })).json()
      await lift(s, first.id, { reason: 'undo' })
      t.equal((await pull(s, license)).statusCode, 200)
      await revoke(s, { jti: 'lic-1', reason: 'again' })
      assertProblem(t, await pull(s, license), 403, 'LICENSE_REVOKED')
    })

    t.test('the database refuses to rewrite a lift', async (t) => {
      const s = await buildTestServer(t, { driver })
      const revoked = (await revoke(s, { jti: 'a', reason: 'one' })).json()
      await lift(s, revoked.id, { reason: 'undo' })
      for (const statement of [sql`update revocation_lifts set reason = 'x'`, sql`delete from revocation_lifts`]) {
        await t.rejects(s.database.db.execute(statement), { cause: { message: /revocation_lifts is append-only/ } })
      }
      t.match(await list(s), [{ lifted: { reason: 'undo' } }])
    })

    t.test('lifts persist: a new server on the same database serves the license', async (t) => {
      const s = await withStable(t, driver)
      const revoked = (await revoke(s, { sub: 'cluster-9', reason: 'gone' })).json()
      await lift(s, revoked.id, { reason: 'back' })
      const replica = await buildTestServer(t, { driver, database: s.database, keyPair: s.keyPair })
      t.equal((await pull(replica, await replica.license({ sub: 'cluster-9' }))).statusCode, 200)
    })

    t.test('a lift on one replica reaches another through the change notice', async (t) => {
      const { a: s, b: replica } = await twoReplicas(t, driver)
      await s.putChannel('stable')
      await s.publish('1.0.0')
      await s.promote('stable', '1.0.0')
      const license = await s.license({ sub: 'cluster-9' })
      const revoked = (await revoke(s, { sub: 'cluster-9', reason: 'gone' })).json()
      t.not(await pollUntil(async () => (await pull(replica, license)).statusCode === 403, 10_000), null, 'the replica refuses the license')
      t.equal((await lift(s, revoked.id, { reason: 'back' })).statusCode, 201)
      t.not(await pollUntil(async () => (await pull(replica, license)).statusCode === 200, 10_000), null, 'the replica serves the license again')
    })
  })
}
