import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { buildTestServer, testDrivers, type TestServer, type TestServerOptions } from '../helpers/server.js'
import { assertProblem } from '../helpers/problem.js'

const basic = (user: string, password: string) => ({ authorization: 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64') })
const OPERATOR = '/api/v1/operator/channel'

/** stable: 1.0.0, 1.1.0 (head), pollInterval 1h; beta: 2.0.0-rc.1. */
async function seeded (t: Test, options: TestServerOptions): Promise<TestServer> {
  const s = await buildTestServer(t, options)
  await s.putChannel('stable', { values: { replicas: 2, image: { tag: 'x' } }, pollInterval: '1h' })
  await s.putChannel('beta', { values: { replicas: 1 } })
  for (const v of ['1.0.0', '1.1.0', '2.0.0-rc.1']) t.equal((await s.publish(v, { values: { image: { tag: v } } })).statusCode, 201)
  await s.promote('stable', '1.0.0')
  await s.promote('stable', '1.1.0')
  await s.promote('beta', '2.0.0-rc.1')
  return s
}

/** A 401 problem that challenges for Basic auth, as the W&B operator expects. */
function assertBasicChallenge (t: Test, res: LightMyRequestResponse, code: string): void {
  assertProblem(t, res, 401, code)
  t.match(res.headers['www-authenticate'], /^Basic realm="chartcast"/)
}

async function get (s: TestServer, headers: Record<string, string> = {}, url = OPERATOR): Promise<LightMyRequestResponse> {
  return await s.app.inject({ url, headers })
}

for (const driver of testDrivers()) {
  t.test(driver, async (t) => {
    t.test('Basic auth user "license" gets exactly 200 with {chart, values, metadata} and string metadata', async (t) => {
      const s = await seeded(t, { driver })
      const res = await get(s, basic('license', await s.license({ channels: ['stable'] })))
      t.equal(res.statusCode, 200, res.body)
      t.match(res.headers['content-type'], /^application\/json/)
      const body = res.json() as Record<string, unknown>
      t.same(Object.keys(body).sort(), ['chart', 'metadata', 'values'])
      t.same(body.chart, { url: 'https://charts.example.com/acme', name: 'acme-app', version: '0.1.0' })
      t.same(body.values, { replicas: 2, image: { tag: '1.1.0' } })
      t.match(body.metadata, { channel: 'stable', version: '1.1.0', pollInterval: '1h' })
      for (const [k, v] of Object.entries(body.metadata as object)) t.type(v, 'string', k)
    })

    t.test('the channel claim chooses the channel', async (t) => {
      const s = await seeded(t, { driver })
      const res = await get(s, basic('license', await s.license({ channels: ['stable', 'beta'], channel: 'beta' })))
      t.equal(res.statusCode, 200)
      t.equal(res.json().metadata.channel, 'beta')
      t.equal(res.json().metadata.version, '2.0.0-rc.1')
    })

    t.test('without a channel claim the first of channels is used', async (t) => {
      const s = await seeded(t, { driver })
      const res = await get(s, basic('license', await s.license({ channels: ['beta', 'stable'] })))
      t.equal(res.json().metadata.channel, 'beta')
    })

    t.test('a wildcard-only license names no channel: 404 CHANNEL_NOT_FOUND', async (t) => {
      const s = await seeded(t, { driver })
      assertProblem(t, await get(s, basic('license', await s.license({ channels: ['*'] }))), 404, 'CHANNEL_NOT_FOUND')
    })

    t.test('a channel claim outside channels is 403 CHANNEL_NOT_ENTITLED', async (t) => {
      const s = await seeded(t, { driver })
      assertProblem(t, await get(s, basic('license', await s.license({ channels: ['stable'], channel: 'beta' }))), 403, 'CHANNEL_NOT_ENTITLED')
    })

    t.test('the body is byte-identical on repeat and never 304', async (t) => {
      const s = await seeded(t, { driver })
      const headers = basic('license', await s.license({ channels: ['stable'] }))
      const a = await get(s, headers)
      const b = await get(s, { ...headers, 'if-none-match': a.headers.etag as string })
      t.equal(b.statusCode, 200)
      t.equal(a.body, b.body)
    })

    t.test('/release/:version pins a version of the license\'s channel', async (t) => {
      const s = await seeded(t, { driver })
      const res = await get(s, basic('license', await s.license({ channels: ['stable'] })), `${OPERATOR}/release/1.0.0`)
      t.equal(res.statusCode, 200, res.body)
      t.same(res.json().values, { replicas: 2, image: { tag: '1.0.0' } })
      t.equal(res.json().metadata.version, '1.0.0')
    })

    t.test('/release/:version of a version not in the channel is 404 RELEASE_NOT_FOUND', async (t) => {
      const s = await seeded(t, { driver })
      assertProblem(t, await get(s, basic('license', await s.license({ channels: ['stable'] })), `${OPERATOR}/release/2.0.0-rc.1`), 404, 'RELEASE_NOT_FOUND')
    })

    t.test('/release/:version that is not semver is 400 VALIDATION_FAILED', async (t) => {
      const s = await seeded(t, { driver })
      assertProblem(t, await get(s, basic('license', await s.license({ channels: ['stable'] })), `${OPERATOR}/release/v1`), 400, 'VALIDATION_FAILED')
    })

    t.test('no license is 401 LICENSE_MISSING with a Basic challenge', async (t) => {
      const s = await seeded(t, { driver })
      for (const url of [OPERATOR, `${OPERATOR}/release/1.0.0`]) {
        const res = await get(s, {}, url)
        assertBasicChallenge(t, res, 'LICENSE_MISSING')
      }
    })

    t.test('an empty password is 401 LICENSE_MISSING with a Basic challenge', async (t) => {
      const s = await seeded(t, { driver })
      const res = await get(s, basic('license', ''))
      assertBasicChallenge(t, res, 'LICENSE_MISSING')
    })

    t.test('another Basic user name is 401 LICENSE_INVALID', async (t) => {
      const s = await seeded(t, { driver })
      const res = await get(s, basic('admin', await s.license({ channels: ['stable'] })))
      assertBasicChallenge(t, res, 'LICENSE_INVALID')
    })

    t.test('a Bearer license is refused on this endpoint with 401 LICENSE_INVALID and a Basic challenge', async (t) => {
      const s = await seeded(t, { driver })
      const res = await get(s, { authorization: `Bearer ${await s.license({ channels: ['stable'] })}` })
      assertBasicChallenge(t, res, 'LICENSE_INVALID')
    })

    t.test('an invalid license in Basic auth is 401 LICENSE_INVALID with a Basic challenge', async (t) => {
      const s = await seeded(t, { driver })
      const res = await get(s, basic('license', 'a.b.c'))
      assertBasicChallenge(t, res, 'LICENSE_INVALID')
    })

    t.test('an expired license is 401 LICENSE_EXPIRED with a Basic challenge', async (t) => {
      let clock = Date.now()
      const s = await seeded(t, { driver, now: () => clock })
      const headers = basic('license', await s.license({ channels: ['stable'], expiresIn: 10 }))
      t.equal((await get(s, headers)).statusCode, 200)
      clock += 11_000
      const res = await get(s, headers)
      assertBasicChallenge(t, res, 'LICENSE_EXPIRED')
    })

    t.test('a revoked license is 403 LICENSE_REVOKED', async (t) => {
      const s = await seeded(t, { driver })
      const headers = basic('license', await s.license({ channels: ['stable'], jti: 'op-1' }))
      t.equal((await get(s, headers)).statusCode, 200)
      await s.app.inject({ method: 'POST', url: '/licenses/revocations', headers: { authorization: `Bearer ${s.tokens.admin}` }, payload: { jti: 'op-1', reason: 'test' } })
      assertProblem(t, await get(s, headers), 403, 'LICENSE_REVOKED')
    })

    t.test('a header remembered for its verified license never stands in for another header with the same tail', async (t) => {
      const s = await seeded(t, { driver })
      const license = await s.license({ channels: ['stable'] })
      t.equal((await get(s, basic('license', license))).statusCode, 200)
      // A user name of the same length keeps the base64 of the token, so the header's tail, the same.
      const other = basic('licenss', license)
      t.equal(other.authorization.slice(-64), basic('license', license).authorization.slice(-64))
      assertBasicChallenge(t, await get(s, other), 'LICENSE_INVALID')
      t.equal((await get(s, basic('license', license))).statusCode, 200)
    })

    t.test('ANONYMOUS_CHANNEL serves that channel without a license', async (t) => {
      const s = await seeded(t, { driver, env: { ANONYMOUS_CHANNEL: 'beta' } })
      const res = await get(s)
      t.equal(res.statusCode, 200, res.body)
      t.equal(res.json().metadata.channel, 'beta')
      t.equal((await get(s, {}, `${OPERATOR}/release/2.0.0-rc.1`)).statusCode, 200)
    })

    t.test('with ANONYMOUS_CHANNEL a license still selects its own channel', async (t) => {
      const s = await seeded(t, { driver, env: { ANONYMOUS_CHANNEL: 'beta' } })
      const res = await get(s, basic('license', await s.license({ channels: ['stable'] })))
      t.equal(res.json().metadata.channel, 'stable')
      assertProblem(t, await get(s, basic('license', 'garbage.token.here')), 401, 'LICENSE_INVALID')
    })

    t.test('ANONYMOUS_CHANNEL does not open the Bearer spec endpoint', async (t) => {
      const s = await seeded(t, { driver, env: { ANONYMOUS_CHANNEL: 'beta' } })
      assertProblem(t, await s.app.inject({ url: '/channels/beta/spec' }), 401, 'LICENSE_MISSING')
    })

    t.test('every answer of both operator paths, refusals included, carries Vary: Authorization', async (t) => {
      const s = await seeded(t, { driver })
      await s.putChannel('dev')
      const license = basic('license', await s.license({ channels: ['stable'], jti: 'op-vary' }))
      const answers: Array<[string, LightMyRequestResponse]> = [
        ['200', await get(s, license)],
        ['200 pinned', await get(s, license, `${OPERATOR}/release/1.0.0`)],
        ['404 pinned', await get(s, license, `${OPERATOR}/release/9.9.9`)],
        ['404 empty', await get(s, basic('license', await s.license({ channels: ['dev'] })))],
        ['401 missing', await get(s)],
        ['401 invalid', await get(s, basic('license', 'a.b.c'))]
      ]
      await s.app.inject({ method: 'POST', url: '/licenses/revocations', headers: { authorization: `Bearer ${s.tokens.admin}` }, payload: { jti: 'op-vary', reason: 'test' } })
      answers.push(['403 revoked', await get(s, license)])
      t.same(answers.map(([, res]) => res.statusCode), [200, 200, 404, 404, 401, 401, 403])
      for (const [name, res] of answers) t.equal(res.headers.vary, 'Authorization', name)

      // With ANONYMOUS_CHANNEL the same URL answers differently with and without a license.
      const open = await seeded(t, { driver, env: { ANONYMOUS_CHANNEL: 'beta' } })
      const anonymous = await get(open)
      const licensed = await get(open, basic('license', await open.license({ channels: ['stable'] })))
      t.not(anonymous.json().metadata.channel, licensed.json().metadata.channel)
      t.equal(anonymous.headers.vary, 'Authorization')
      t.equal(licensed.headers.vary, 'Authorization')
    })

    t.test('an empty channel is 404 CHANNEL_EMPTY', async (t) => {
      const s = await seeded(t, { driver })
      await s.putChannel('dev')
      assertProblem(t, await get(s, basic('license', await s.license({ channels: ['dev'] }))), 404, 'CHANNEL_EMPTY')
    })
  })
}
