/** Requests no route matches: 405 with Allow on a known path, 404 otherwise, body never parsed. */
import t from 'tap'
import { buildTestServer } from '../helpers/server.js'
import { assertProblem, auth } from '../helpers/problem.js'
import { portOf, rawRequest } from '../helpers/raw-http.js'

t.test('a wrong method on a known path answers 405 with the allowed methods', async (t) => {
  const s = await buildTestServer(t)
  const cases: Array<[string, string, string]> = [
    ['DELETE', '/releases', 'GET, HEAD, POST'],
    ['PUT', '/releases/1.0.0', 'GET, HEAD'],
    ['POST', '/channels/stable', 'GET, HEAD, PUT'],
    ['PUT', '/channels/stable/releases/1.0.0', 'DELETE, PATCH'],
    ['POST', '/channels/stable/spec', 'GET, HEAD']
  ]
  for (const [method, url, allow] of cases) {
    const res = await s.app.inject({ method: method as 'GET', url, headers: auth(s.tokens.admin) })
    const body = assertProblem(t, res, 405, 'METHOD_NOT_ALLOWED')
    t.equal(res.headers.allow, allow, `${method} ${url}`)
    t.match(body.detail, allow)
  }
})

t.test('a query string does not hide the path from the 405 check', async (t) => {
  const s = await buildTestServer(t)
  const res = await s.app.inject({ method: 'DELETE', url: '/releases?limit=1' })
  assertProblem(t, res, 405, 'METHOD_NOT_ALLOWED')
})

t.test('an unknown path answers 404 without an Allow header', async (t) => {
  const s = await buildTestServer(t)
  const res = await s.app.inject({ method: 'GET', url: '/nothing/here' })
  assertProblem(t, res, 404, 'NOT_FOUND')
  t.equal(res.headers.allow, undefined)
})

t.test('a body sent to an unknown path is not parsed: 404, not 400', async (t) => {
  const s = await buildTestServer(t)
  const json = await s.app.inject({ method: 'POST', url: '/nothing', headers: { 'content-type': 'application/json' }, payload: '{"unclosed": ' })
  assertProblem(t, json, 404, 'NOT_FOUND')
  const yaml = await s.app.inject({ method: 'PUT', url: '/nothing', headers: { 'content-type': 'application/yaml' }, payload: 'a: 1\na: 2\n' })
  assertProblem(t, yaml, 404, 'NOT_FOUND')
  const wrongMethod = await s.app.inject({ method: 'PUT', url: '/releases', headers: { 'content-type': 'application/json' }, payload: '{"unclosed": ' })
  assertProblem(t, wrongMethod, 405, 'METHOD_NOT_ALLOWED')
})

t.test('over a real socket, a body announced to an unknown path is not waited for', async (t) => {
  const s = await buildTestServer(t)
  const port = portOf(await s.listen())
  const res = await rawRequest(port, 'POST /nothing HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n[', true)
  t.equal(res.status, 404)
  t.equal(res.json().code, 'NOT_FOUND')
  t.ok(res.closed, 'closed rather than reading the announced body')
})
