/** Publisher token revocation: POST/GET /tokens/revocations, and revoked tokens refused on every replica. */
import t from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { sql } from 'drizzle-orm'
import { issuePublisherToken } from '../../src/token-tools.js'
import { buildTestServer, testDrivers, type TestServer } from '../helpers/server.js'
import { twoReplicas } from '../helpers/replicas.js'
import { assertProblem, auth } from '../helpers/problem.js'
import { pollUntil } from '../faults/support.js'

async function revoke (s: TestServer, payload: unknown, token = s.tokens.admin): Promise<LightMyRequestResponse> {
  return await s.app.inject({ method: 'POST', url: '/tokens/revocations', headers: auth(token), payload: payload as Record<string, unknown> })
}

async function list (s: TestServer): Promise<Array<Record<string, unknown>>> {
  const res = await s.app.inject({ url: '/tokens/revocations', headers: auth(s.tokens.admin) })
  return res.json().revocations
}

async function audit (s: TestServer, action: string): Promise<Array<Record<string, unknown>>> {
  const res = await s.app.inject({ url: '/audit', headers: auth(s.tokens.admin) })
  return (res.json().entries as Array<Record<string, unknown>>).filter((e) => e.action === action)
}

for (const driver of testDrivers()) {
  t.test(driver, async (t) => {
    t.test('an admin revokes a token by jti: 201, and the token is refused at once with 401 TOKEN_REVOKED', async (t) => {
      const s = await buildTestServer(t, { driver })
      const ci = await issuePublisherToken(s.authSecret, { sub: 'ci-bot', role: 'publisher', expiresIn: 3600 })
      t.equal((await s.app.inject({ url: '/releases', headers: auth(ci.token) })).statusCode, 200, 'the token works before')
      const res = await revoke(s, { jti: ci.jti, reason: 'leaked in a build log' })
      t.equal(res.statusCode, 201, res.body)
      t.match(res.json(), { jti: ci.jti, reason: 'leaked in a build log', actor: 'alice-admin' })
      t.type(res.json().id, 'number')
      t.ok(!Number.isNaN(Date.parse(res.json().at)))
      const refused = assertProblem(t, await s.app.inject({ url: '/releases', headers: auth(ci.token) }), 401, 'TOKEN_REVOKED')
      t.match(refused.detail, /revoked/)
      t.equal((await s.app.inject({ url: '/releases', headers: auth(s.tokens.publisher) })).statusCode, 200, 'other tokens still work')
    })

    t.test('a revocation writes one audit row; revoking again answers 200 with the first and writes nothing', async (t) => {
      const s = await buildTestServer(t, { driver })
      const first = await revoke(s, { jti: 'tok-1', reason: 'first' })
      t.equal(first.statusCode, 201)
      const again = await revoke(s, { jti: 'tok-1', reason: 'second' })
      t.equal(again.statusCode, 200, again.body)
      t.same(again.json(), first.json())
      t.equal((await list(s)).length, 1)
      t.match(await audit(s, 'token.revoke'), [{ actor: 'alice-admin', target: 'token:jti:tok-1', detail: { jti: 'tok-1', reason: 'first' } }])
    })

    t.test('an admin may revoke its own token; the next request with it is refused', async (t) => {
      const s = await buildTestServer(t, { driver })
      const admin = await issuePublisherToken(s.authSecret, { sub: 'bob-admin', role: 'admin', expiresIn: 3600 })
      t.equal((await revoke(s, { jti: admin.jti, reason: 'leaving' }, admin.token)).statusCode, 201)
      assertProblem(t, await s.app.inject({ url: '/tokens/revocations', headers: auth(admin.token) }), 401, 'TOKEN_REVOKED')
    })

    t.test('a revocation needs a jti and a reason, and no unknown fields: 400 VALIDATION_FAILED, nothing stored', async (t) => {
      const s = await buildTestServer(t, { driver })
      for (const payload of [{ reason: 'who?' }, { jti: 'x' }, { jti: '', reason: 'r' }, { jti: 'x', reason: '' }, { jti: 'x', reason: 'r', sub: 'y' }, { jti: 7, reason: 'r' }]) {
        assertProblem(t, await revoke(s, payload), 400, 'VALIDATION_FAILED')
      }
      t.same(await list(s), [])
      t.same(await audit(s, 'token.revoke'), [])
    })

    t.test('only an admin may revoke or list: a publisher gets 403 FORBIDDEN, nothing stored', async (t) => {
      const s = await buildTestServer(t, { driver })
      assertProblem(t, await revoke(s, { jti: 'x', reason: 'r' }, s.tokens.publisher), 403, 'FORBIDDEN')
      assertProblem(t, await s.app.inject({ url: '/tokens/revocations', headers: auth(s.tokens.publisher) }), 403, 'FORBIDDEN')
      assertProblem(t, await s.app.inject({ method: 'POST', url: '/tokens/revocations', payload: { jti: 'x', reason: 'r' } }), 401, 'UNAUTHORIZED')
      t.same(await list(s), [])
    })

    t.test('GET /tokens/revocations lists every revocation, newest first', async (t) => {
      const s = await buildTestServer(t, { driver })
      await revoke(s, { jti: 'a', reason: 'one' })
      await revoke(s, { jti: 'b', reason: 'two' })
      t.same((await list(s)).map((r) => [r.jti, r.reason]), [['b', 'two'], ['a', 'one']])
    })

    t.test('the database refuses to rewrite a token revocation', async (t) => {
      const s = await buildTestServer(t, { driver })
      await revoke(s, { jti: 'a', reason: 'one' })
      for (const statement of [sql`update token_revocations set jti = 'b'`, sql`delete from token_revocations`]) {
        await t.rejects(s.database.db.execute(statement), { cause: { message: /token_revocations is append-only/ } })
      }
      t.same((await list(s)).map((r) => r.jti), ['a'])
    })

    t.test('revocations persist: a new server on the same database refuses the token', async (t) => {
      const s = await buildTestServer(t, { driver })
      const ci = await issuePublisherToken(s.authSecret, { sub: 'ci-bot', role: 'reader', expiresIn: 3600 })
      await revoke(s, { jti: ci.jti, reason: 'gone' })
      const restarted = await buildTestServer(t, { driver, database: s.database, keyPair: s.keyPair, authSecret: s.authSecret })
      assertProblem(t, await restarted.app.inject({ url: '/releases', headers: auth(ci.token) }), 401, 'TOKEN_REVOKED')
    })

    t.test('a revocation on one replica refuses the token on another through the change notice', async (t) => {
      const { a, b } = await twoReplicas(t, driver)
      const ci = await issuePublisherToken(a.authSecret, { sub: 'ci-bot', role: 'reader', expiresIn: 3600 })
      t.equal((await b.app.inject({ url: '/releases', headers: auth(ci.token) })).statusCode, 200, 'B accepts the token before')
      t.equal((await revoke(a, { jti: ci.jti, reason: 'leaked' })).statusCode, 201)
      const refusedOnB = await pollUntil(async () => (await b.app.inject({ url: '/releases', headers: auth(ci.token) })).statusCode === 401, 10_000)
      t.not(refusedOnB, null, 'B refuses the revoked token')
      assertProblem(t, await b.app.inject({ url: '/releases', headers: auth(ci.token) }), 401, 'TOKEN_REVOKED')
    })
  })
}
