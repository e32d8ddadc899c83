/** Publisher tokens and roles (reader < publisher < admin) on every protected route. */
import t, { type Test } from 'tap'
import { createHmac } from 'node:crypto'
import { buildTestServer, testDrivers, type TestServer } from '../helpers/server.js'
import { assertProblem } from '../helpers/problem.js'

type Role = 'reader' | 'publisher' | 'admin'
const chart = { url: 'https://charts.example.com/acme', name: 'acme-app', version: '0.1.0' }

/** Each protected route with the least role it needs and a valid payload. */
const routes: Array<{ method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, role: Role, payload?: Record<string, unknown> }> = [
  { method: 'GET', url: '/releases', role: 'reader' },
  { method: 'GET', url: '/releases/1.0.0', role: 'reader' },
  { method: 'GET', url: '/channels', role: 'reader' },
  { method: 'GET', url: '/channels/stable', role: 'reader' },
  { method: 'GET', url: '/channels/stable/releases', role: 'reader' },
  { method: 'POST', url: '/releases', role: 'publisher', payload: { version: '2.0.0', chart } },
  { method: 'POST', url: '/channels/stable/releases', role: 'publisher', payload: { version: '1.0.0' } },
  { method: 'DELETE', url: '/channels/stable/releases/1.0.0', role: 'publisher' },
  { method: 'PUT', url: '/channels/stable', role: 'admin', payload: { description: 'changed' } },
  { method: 'POST', url: '/licenses/revocations', role: 'admin', payload: { jti: 'x', reason: 'r' } },
  { method: 'GET', url: '/licenses/revocations', role: 'admin' },
  { method: 'POST', url: '/licenses/revocations/1/lift', role: 'admin', payload: { reason: 'r' } },
  { method: 'POST', url: '/tokens/revocations', role: 'admin', payload: { jti: 'x', reason: 'r' } },
  { method: 'GET', url: '/tokens/revocations', role: 'admin' },
  { method: 'GET', url: '/audit', role: 'admin' }
]
const ORDER: Role[] = ['reader', 'publisher', 'admin']

async function seeded (t: Test, driver: 'pglite' | 'postgres'): Promise<TestServer> {
  const s = await buildTestServer(t, { driver })
  await s.putChannel('stable')
  await s.publish('1.0.0')
  return s
}

function hs256 (secret: string, payload: Record<string, unknown>, header: Record<string, unknown> = { alg: 'HS256', typ: 'JWT' }): string {
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`
}

for (const driver of testDrivers()) {
  t.test(driver, async (t) => {
    t.test('each protected route refuses lesser roles with 403 FORBIDDEN and admits its role', async (t) => {
      for (const route of routes) {
        const s = await seeded(t, driver)
        const needed = ORDER.indexOf(route.role)
        for (const role of ORDER.slice(0, needed)) {
          const res = await s.app.inject({ method: route.method, url: route.url, headers: { authorization: `Bearer ${s.tokens[role]}` }, ...(route.payload !== undefined && { payload: route.payload }) })
          assertProblem(t, res, 403, 'FORBIDDEN')
        }
        const ok = await s.app.inject({ method: route.method, url: route.url, headers: { authorization: `Bearer ${s.tokens[route.role]}` }, ...(route.payload !== undefined && { payload: route.payload }) })
        t.ok(ok.statusCode < 300 || ok.statusCode === 404, `${route.method} ${route.url} as ${route.role}: ${ok.statusCode} ${ok.body}`)
      }
    })

    t.test('every protected route without a token is 401 UNAUTHORIZED with WWW-Authenticate: Bearer', async (t) => {
      const s = await seeded(t, driver)
      for (const route of routes) {
        const res = await s.app.inject({ method: route.method, url: route.url, ...(route.payload !== undefined && { payload: route.payload }) })
        assertProblem(t, res, 401, 'UNAUTHORIZED')
        t.match(res.headers['www-authenticate'], /^Bearer realm="chartcast"/, `${route.method} ${route.url}`)
      }
    })

    t.test('a non-Bearer Authorization header is 401 UNAUTHORIZED', async (t) => {
      const s = await seeded(t, driver)
      for (const authorization of ['Basic YWRtaW46YWRtaW4=', s.tokens.admin, 'Bearer', 'Bearer a b']) {
        assertProblem(t, await s.app.inject({ url: '/releases', headers: { authorization } }), 401, 'UNAUTHORIZED')
      }
    })

    t.test('a token signed with another secret is 401 with error="invalid_token"', async (t) => {
      const s = await seeded(t, driver)
      const res = await s.app.inject({ url: '/releases', headers: { authorization: `Bearer ${hs256('another-secret-another-secret-xx', { sub: 'mallory', role: 'admin' })}` } })
      assertProblem(t, res, 401, 'UNAUTHORIZED')
      t.match(res.headers['www-authenticate'], /error="invalid_token"/)
    })

    t.test('an expired publisher token is 401 UNAUTHORIZED', async (t) => {
      const s = await seeded(t, driver)
      const token = hs256(s.authSecret, { sub: 'old', role: 'admin', exp: Math.floor(Date.now() / 1000) - 60 })
      assertProblem(t, await s.app.inject({ url: '/releases', headers: { authorization: `Bearer ${token}` } }), 401, 'UNAUTHORIZED')
    })

    t.test('an alg:none publisher token is 401 UNAUTHORIZED', async (t) => {
      const s = await seeded(t, driver)
      const token = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"sub":"mallory","role":"admin"}').toString('base64url')}.`
      assertProblem(t, await s.app.inject({ url: '/audit', headers: { authorization: `Bearer ${token}` } }), 401, 'UNAUTHORIZED')
    })

    t.test('a well-signed token without a known role is 401 UNAUTHORIZED', async (t) => {
      const s = await seeded(t, driver)
      for (const payload of [{ sub: 'x', role: 'root' }, { sub: 'x' }, { role: 'admin' }]) {
        assertProblem(t, await s.app.inject({ url: '/releases', headers: { authorization: `Bearer ${hs256(s.authSecret, payload)}` } }), 401, 'UNAUTHORIZED')
      }
    })

    t.test('a well-signed publisher token without exp is 401 UNAUTHORIZED: it would never end', async (t) => {
      const s = await seeded(t, driver)
      const token = hs256(s.authSecret, { sub: 'old', role: 'admin', jti: 'tok-1', iat: Math.floor(Date.now() / 1000) })
      const res = await s.app.inject({ url: '/releases', headers: { authorization: `Bearer ${token}` } })
      t.match(assertProblem(t, res, 401, 'UNAUTHORIZED').detail, /no "exp"/)
      t.match(res.headers['www-authenticate'], /error="invalid_token"/)
    })

    t.test('a well-signed publisher token without jti is 401 UNAUTHORIZED: it could not be revoked', async (t) => {
      const s = await seeded(t, driver)
      const now = Math.floor(Date.now() / 1000)
      const token = hs256(s.authSecret, { sub: 'old', role: 'admin', iat: now, exp: now + 3600 })
      t.match(assertProblem(t, await s.app.inject({ url: '/releases', headers: { authorization: `Bearer ${token}` } }), 401, 'UNAUTHORIZED').detail, /no "jti"/)
    })

    t.test('a publisher token living longer than the default maximum (90d) is 401 UNAUTHORIZED', async (t) => {
      const s = await seeded(t, driver)
      const now = Math.floor(Date.now() / 1000)
      const long = hs256(s.authSecret, { sub: 'x', role: 'reader', jti: 'tok-1', iat: now, exp: now + 91 * 86400 })
      t.match(assertProblem(t, await s.app.inject({ url: '/releases', headers: { authorization: `Bearer ${long}` } }), 401, 'UNAUTHORIZED').detail, /PUBLISHER_TOKEN_MAX_LIFETIME/)
      const noIat = hs256(s.authSecret, { sub: 'x', role: 'reader', jti: 'tok-2', exp: now + 91 * 86400 })
      assertProblem(t, await s.app.inject({ url: '/releases', headers: { authorization: `Bearer ${noIat}` } }), 401, 'UNAUTHORIZED')
      const within = hs256(s.authSecret, { sub: 'x', role: 'reader', jti: 'tok-3', iat: now, exp: now + 89 * 86400 })
      t.equal((await s.app.inject({ url: '/releases', headers: { authorization: `Bearer ${within}` } })).statusCode, 200)
    })

    t.test('PUBLISHER_TOKEN_MAX_LIFETIME sets the maximum', async (t) => {
      const s = await buildTestServer(t, { driver, env: { PUBLISHER_TOKEN_MAX_LIFETIME: '2h' } })
      const now = Math.floor(Date.now() / 1000)
      const threeHours = hs256(s.authSecret, { sub: 'x', role: 'reader', jti: 'tok-1', iat: now, exp: now + 3 * 3600 })
      t.match(assertProblem(t, await s.app.inject({ url: '/releases', headers: { authorization: `Bearer ${threeHours}` } }), 401, 'UNAUTHORIZED').detail, /maximum of 2h/)
      const twoHours = hs256(s.authSecret, { sub: 'x', role: 'reader', jti: 'tok-2', iat: now, exp: now + 2 * 3600 })
      t.equal((await s.app.inject({ url: '/releases', headers: { authorization: `Bearer ${twoHours}` } })).statusCode, 200)
    })

    t.test('a license is not a publisher token', async (t) => {
      const s = await seeded(t, driver)
      const license = await s.license()
      assertProblem(t, await s.app.inject({ url: '/releases', headers: { authorization: `Bearer ${license}` } }), 401, 'UNAUTHORIZED')
    })

    t.test('a publisher token is not a license', async (t) => {
      const s = await seeded(t, driver)
      await s.promote('stable', '1.0.0')
      assertProblem(t, await s.app.inject({ url: '/channels/stable/spec', headers: { authorization: `Bearer ${s.tokens.admin}` } }), 401, 'LICENSE_INVALID')
    })
  })
}
