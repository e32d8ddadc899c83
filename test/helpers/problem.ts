/** Assertions shared by the API tests. */
import type { Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'

/** Asserts an RFC 9457 problem response with this status and code, and returns its body. */
export function assertProblem (t: Test, res: LightMyRequestResponse, status: number, code: string): Record<string, unknown> {
  t.equal(res.statusCode, status, res.body)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  const body = res.json() as Record<string, unknown>
  t.equal(body.code, code)
  t.equal(body.status, status)
  t.type(body.title, 'string')
  t.type(body.detail, 'string')
  t.notMatch(res.body, /at .*\.ts:\d+|node_modules|\b(SELECT|INSERT|UPDATE|DELETE FROM)\b/, 'no stack trace or SQL')
  if (status === 401) t.ok(res.headers['www-authenticate'], 'a 401 carries WWW-Authenticate')
  return body
}

/** Headers carrying a bearer token. */
export const auth = (token: string): { authorization: string } => ({ authorization: `Bearer ${token}` })
