/**
 * The publisher-token guard runs before the body is read: an unauthenticated write is refused
 * without fastify parsing (or even waiting for) what it sends.
 */
import t from 'tap'
import { buildTestServer, testDrivers } from '../helpers/server.js'
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
