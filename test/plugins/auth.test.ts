/**
 * The publisher-token guard runs before the body is read: an unauthenticated write is refused
 * without fastify parsing (or even waiting for) what it sends.
 */
import t from 'tap'
import { buildTestServer, testDrivers } from '../helpers/server.js'
import { issuePublisherToken } from '../../src/token-tools.js'
import { assertProblem, auth } from '../helpers/problem.js'
import { portOf, rawRequest } from '../helpers/raw-http.js'

for (const driver of testDrivers()) {
  t.test(driver, async (t) => {
    t.test('an unauthenticated write with a body that does not parse answers 401, not 400', async (t) => {
      const s = await buildTestServer(t, { driver })
      for (const [method, url] of [['POST', '/releases'], ['PUT', '/channels/stable'], ['POST', '/channels/stable/releases'], ['POST', '/licenses/revocations']] as const) {
        const json = await s.app.inject({ method, url, headers: { 'content-type': 'application/json' }, payload: '{"unclosed": ' })
        assertProblem(t, json, 401, 'UNAUTHORIZED')
        const yaml = await s.app.inject({ method, url, headers: { 'content-type': 'application/yaml' }, payload: 'a: 1\na: 2\n' })
        assertProblem(t, yaml, 401, 'UNAUTHORIZED')
      }
    })

    t.test('a body of the wrong media type is refused 401 before its type is looked at', async (t) => {
      const s = await buildTestServer(t, { driver })
      assertProblem(t, await s.app.inject({ method: 'POST', url: '/releases', headers: { 'content-type': 'text/plain' }, payload: 'hello' }), 401, 'UNAUTHORIZED')
    })

    t.test('a reader token is refused 403 on a write before its body is parsed', async (t) => {
      const s = await buildTestServer(t, { driver })
      const res = await s.app.inject({ method: 'POST', url: '/releases', headers: { ...auth(s.tokens.reader), 'content-type': 'application/json' }, payload: '{"unclosed": ' })
      assertProblem(t, res, 403, 'FORBIDDEN')
    })

    t.test('a valid token still has its body parsed and checked', async (t) => {
      const s = await buildTestServer(t, { driver })
      const res = await s.app.inject({ method: 'POST', url: '/releases', headers: { ...auth(s.tokens.publisher), 'content-type': 'application/json' }, payload: '{"unclosed": ' })
      assertProblem(t, res, 400, 'MALFORMED_BODY')
    })

    t.test('a validly signed token whose sub or jti the database cannot store is refused 401 UNAUTHORIZED, never 500, and stores nothing', async (t) => {
      const s = await buildTestServer(t, { driver })
      const auditBefore = (await s.app.inject({ url: '/audit?limit=500', headers: auth(s.tokens.admin) })).json().entries.length as number
      const release = { version: '1.0.0', chart: { url: 'https://charts.example.com/acme', name: 'acme-app', version: '0.1.0' } }
      for (const claims of [{ sub: 'rita\u0000' }, { sub: 'rita\uD800' }, { sub: 'rita', jti: 'tok\u0000' }]) {
        const { token } = await issuePublisherToken(s.authSecret, { role: 'admin', expiresIn: 3600, ...claims })
        const write = assertProblem(t, await s.app.inject({ method: 'POST', url: '/releases', headers: auth(token), payload: release }), 401, 'UNAUTHORIZED')
        t.match(write.detail, /cannot be stored/, JSON.stringify(claims))
        assertProblem(t, await s.app.inject({ url: '/releases', headers: auth(token) }), 401, 'UNAUTHORIZED')
        // Signing in to the dashboard would store the sub as the session's owner.
        assertProblem(t, await s.app.inject({ method: 'POST', url: '/auth/session', payload: { token } }), 401, 'UNAUTHORIZED')
      }
      t.same((await s.app.inject({ url: '/releases', headers: auth(s.tokens.reader) })).json().releases, [])
      t.equal((await s.app.inject({ url: '/audit?limit=500', headers: auth(s.tokens.admin) })).json().entries.length, auditBefore)
    })

    t.test('over a real socket, a write announcing 1 MB it never sends is answered 401 at once and the connection closed', async (t) => {
      const s = await buildTestServer(t, { driver })
      const port = portOf(await s.listen())
      const res = await rawRequest(port, 'POST /releases HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{"version":', true)
      t.equal(res.status, 401)
      t.equal(res.json().code, 'UNAUTHORIZED')
      t.equal(res.headers.connection, 'close')
      t.ok(res.closed, 'the server closed the socket instead of waiting for the rest of the body')
    })

    t.test('an authenticated bodyless request keeps its connection open', async (t) => {
      const s = await buildTestServer(t, { driver })
      const port = portOf(await s.listen())
      const res = await rawRequest(port, `GET /releases HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${s.tokens.reader}\r\n\r\n`)
      t.equal(res.status, 200)
      t.not(res.headers.connection, 'close')
      t.notOk(res.closed)
    })
  })
}
