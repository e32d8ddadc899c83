import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { buildTestServer, testDrivers, type TestServer, type TestServerOptions } from '../helpers/server.js'
import { generateLicenseKeyPair, issueLicense } from '../../src/license-tools.js'
import { assertProblem, auth } from '../helpers/problem.js'

async function pull (s: TestServer, channel: string, license: string, headers: Record<string, string> = {}, query = ''): Promise<LightMyRequestResponse> {
  return await s.app.inject({ url: `/channels/${channel}/spec${query}`, headers: { ...auth(license), ...headers } })
}

/** A server with channel `stable` holding 1.0.0 and 1.1.0 (head). */
async function seeded (t: Test, options: TestServerOptions): Promise<TestServer> {
  const s = await buildTestServer(t, options)
  t.equal((await s.putChannel('stable', { values: { replicas: 1 }, pollInterval: '15m' })).statusCode, 201)
  t.equal((await s.publish('1.0.0', { values: { tag: 'one' } })).statusCode, 201)
  t.equal((await s.publish('1.1.0', { values: { tag: 'two' } })).statusCode, 201)
  t.equal((await s.promote('stable', '1.0.0')).statusCode, 201)
  t.equal((await s.promote('stable', '1.1.0')).statusCode, 201)
  return s
}

for (const driver of testDrivers()) {
  t.test(driver, async (t) => {
    t.test('200 body is {channel, version, chart, values, metadata} as JSON', async (t) => {
      const s = await seeded(t, { driver })
      const res = await pull(s, 'stable', await s.license({ channels: ['stable'] }))
      t.equal(res.statusCode, 200, res.body)
      t.match(res.headers['content-type'], /^application\/json/)
      t.same(res.json(), {
        channel: 'stable',
        version: '1.1.0',
        chart: { url: 'https://charts.example.com/acme', name: 'acme-app', version: '0.1.0' },
        values: { replicas: 1, tag: 'two' },
        metadata: { channel: 'stable', version: '1.1.0', chartVersion: '0.1.0', pollInterval: '15m' }
      })
      t.equal(res.headers['cache-control'], 'private, no-cache')
    })

    t.test('the head is the highest semver, whatever the promotion order', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable')
      for (const v of ['1.10.0', '1.9.0', '2.0.0-rc.1', '1.2.0']) await s.publish(v)
      for (const v of ['1.10.0', '2.0.0-rc.1', '1.9.0', '1.2.0']) await s.promote('stable', v)
      t.equal((await pull(s, 'stable', await s.license())).json().version, '2.0.0-rc.1')
      await s.publish('2.0.0')
      await s.promote('stable', '2.0.0')
      t.equal((await pull(s, 'stable', await s.license())).json().version, '2.0.0')
    })

    t.test('values are the channel values deep-merged with the release values', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable', { values: { image: { repository: 'acme/app', tag: 'latest', pullPolicy: 'Always' }, hosts: ['a', 'b'], debug: true, keep: 'me' } })
      await s.publish('1.0.0', { values: { image: { tag: '1.0.0', pullPolicy: null }, hosts: ['c'], debug: null, extra: { x: 1 } } })
      await s.promote('stable', '1.0.0')
      const values = (await pull(s, 'stable', await s.license())).json().values
      t.same(values, { image: { repository: 'acme/app', tag: '1.0.0' }, hosts: ['c'], keep: 'me', extra: { x: 1 } }, 'release wins, arrays replaced, null removes')
    })

    t.test('every metadata value is a string, including channel, version and pollInterval', async (t) => {
      const s = await seeded(t, { driver })
      const metadata = (await pull(s, 'stable', await s.license())).json().metadata as Record<string, unknown>
      t.match(metadata, { channel: 'stable', version: '1.1.0', pollInterval: '15m' })
      for (const [k, v] of Object.entries(metadata)) t.type(v, 'string', k)
    })

    t.test('repeat pulls give byte-identical bodies and the same strong ETag', async (t) => {
      const s = await seeded(t, { driver })
      const a = await pull(s, 'stable', await s.license({ sub: 'one' }))
      const b = await pull(s, 'stable', await s.license({ sub: 'two' }))
      t.equal(a.body, b.body)
      t.equal(a.headers.etag, b.headers.etag)
      t.match(a.headers.etag, /^"[^"]+"$/, 'strong, quoted')
    })

    t.test('If-None-Match with the current ETag is 304 with no body', async (t) => {
      const s = await seeded(t, { driver })
      const license = await s.license()
      const first = await pull(s, 'stable', license)
      const etag = first.headers.etag as string
      const res = await pull(s, 'stable', license, { 'if-none-match': etag })
      t.equal(res.statusCode, 304)
      t.equal(res.body, '')
      t.equal(res.headers.etag, etag)
      t.equal(res.headers['x-poll-interval'], '900')
    })

    t.test('If-None-Match as a list, in W/ form or * is also 304', async (t) => {
      const s = await seeded(t, { driver })
      const license = await s.license()
      const etag = (await pull(s, 'stable', license)).headers.etag as string
      for (const header of [`"stale", ${etag}`, `W/${etag}`, '*']) t.equal((await pull(s, 'stable', license, { 'if-none-match': header })).statusCode, 304, header)
    })

    t.test('a stale ETag gets 200 with the new body after a promotion', async (t) => {
      const s = await seeded(t, { driver })
      const license = await s.license()
      const etag = (await pull(s, 'stable', license)).headers.etag as string
      await s.publish('1.2.0')
      await s.promote('stable', '1.2.0')
      const res = await pull(s, 'stable', license, { 'if-none-match': etag })
      t.equal(res.statusCode, 200)
      t.equal(res.json().version, '1.2.0')
      t.not(res.headers.etag, etag)
    })

    t.test('the poll interval is sent in seconds as X-Poll-Interval', async (t) => {
      const s = await seeded(t, { driver })
      t.equal((await pull(s, 'stable', await s.license())).headers['x-poll-interval'], '900')
    })

    t.test('a channel without pollInterval sends no X-Poll-Interval and no metadata.pollInterval', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('dev')
      await s.publish('1.0.0')
      await s.promote('dev', '1.0.0')
      const res = await pull(s, 'dev', await s.license())
      t.equal(res.headers['x-poll-interval'], undefined)
      t.notOk('pollInterval' in res.json().metadata)
    })

    t.test('?version= pins a version that is in the channel', async (t) => {
      const s = await seeded(t, { driver })
      const license = await s.license()
      const res = await pull(s, 'stable', license, {}, '?version=1.0.0')
      t.equal(res.statusCode, 200, res.body)
      t.match(res.json(), { version: '1.0.0', values: { replicas: 1, tag: 'one' }, metadata: { version: '1.0.0' } })
      t.not(res.headers.etag, (await pull(s, 'stable', license)).headers.etag)
      t.equal((await pull(s, 'stable', license, { 'if-none-match': res.headers.etag as string }, '?version=1.0.0')).statusCode, 304)
    })

    t.test('a pinned spec follows a change of the channel values', async (t) => {
      const s = await seeded(t, { driver })
      const license = await s.license()
      const before = await pull(s, 'stable', license, {}, '?version=1.0.0')
      t.same(before.json().values, { replicas: 1, tag: 'one' })
      await s.putChannel('stable', { values: { replicas: 5 } })
      const after = await pull(s, 'stable', license, {}, '?version=1.0.0')
      t.same(after.json().values, { replicas: 5, tag: 'one' })
      t.not(after.headers.etag, before.headers.etag)
    })

    t.test('?version= of the head is the head spec', async (t) => {
      const s = await seeded(t, { driver })
      const license = await s.license()
      t.equal((await pull(s, 'stable', license, {}, '?version=1.1.0')).body, (await pull(s, 'stable', license)).body)
    })

    t.test('?version= of a withdrawn version is 404 RELEASE_NOT_FOUND', async (t) => {
      const s = await seeded(t, { driver })
      t.equal((await s.app.inject({ method: 'DELETE', url: '/channels/stable/releases/1.0.0', headers: auth(s.tokens.publisher) })).statusCode, 204)
      assertProblem(t, await pull(s, 'stable', await s.license(), {}, '?version=1.0.0'), 404, 'RELEASE_NOT_FOUND')
    })

    t.test('?version= of a published version never promoted here is 404 RELEASE_NOT_FOUND', async (t) => {
      const s = await seeded(t, { driver })
      await s.publish('0.5.0')
      assertProblem(t, await pull(s, 'stable', await s.license(), {}, '?version=0.5.0'), 404, 'RELEASE_NOT_FOUND')
      assertProblem(t, await pull(s, 'stable', await s.license(), {}, '?version=9.9.9'), 404, 'RELEASE_NOT_FOUND')
    })

    t.test('?version= that is not semver is 400 VALIDATION_FAILED', async (t) => {
      const s = await seeded(t, { driver })
      assertProblem(t, await pull(s, 'stable', await s.license(), {}, '?version=latest'), 400, 'VALIDATION_FAILED')
    })

    t.test('an unknown query parameter is 400 VALIDATION_FAILED', async (t) => {
      const s = await seeded(t, { driver })
      assertProblem(t, await pull(s, 'stable', await s.license(), {}, '?verison=1.0.0'), 400, 'VALIDATION_FAILED')
    })

    t.test('a channel with no release is 404 CHANNEL_EMPTY', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('beta')
      assertProblem(t, await pull(s, 'beta', await s.license()), 404, 'CHANNEL_EMPTY')
    })

    t.test('an unknown channel is 404 CHANNEL_NOT_FOUND', async (t) => {
      const s = await seeded(t, { driver })
      assertProblem(t, await pull(s, 'nope', await s.license({ channels: ['*'] })), 404, 'CHANNEL_NOT_FOUND')
    })

    t.test('no license is 401 LICENSE_MISSING with WWW-Authenticate', async (t) => {
      const s = await seeded(t, { driver })
      const res = await s.app.inject({ url: '/channels/stable/spec' })
      assertProblem(t, res, 401, 'LICENSE_MISSING')
      t.match(res.headers['www-authenticate'], /^Bearer/)
    })

    t.test('a malformed license is 401 LICENSE_INVALID', async (t) => {
      const s = await seeded(t, { driver })
      for (const bad of ['not-a-jwt', 'a.b.c', 'eyJhbGciOiJFUzI1NiJ9.e30.']) {
        const res = await pull(s, 'stable', bad)
        assertProblem(t, res, 401, 'LICENSE_INVALID')
        t.ok(res.headers['www-authenticate'])
      }
      assertProblem(t, await s.app.inject({ url: '/channels/stable/spec', headers: { authorization: 'Token abc' } }), 401, 'LICENSE_INVALID')
    })

    t.test('every Authorization spelling the strict parse accepts is served, before and after the license is verified', async (t) => {
      const s = await seeded(t, { driver })
      const get = async (authorization: string) => await s.app.inject({ url: '/channels/stable/spec', headers: { authorization } })
      const first = await s.license({ channels: ['stable'], jti: 'spelled-first' })
      // Verified first through an unusual spelling, then through the exact one pollers send.
      t.equal((await get(`bearer   ${first}  `)).statusCode, 200)
      t.equal((await get(`Bearer ${first}`)).statusCode, 200)
      const license = await s.license({ channels: ['stable'] })
      t.equal((await get(`Bearer ${license}`)).statusCode, 200)
      for (const spelling of [`bearer ${license}`, `BEARER ${license}`, `Bearer  ${license}`, `Bearer ${license} `, `Bearer ${license}\t`]) {
        t.equal((await get(spelling)).statusCode, 200, JSON.stringify(spelling.slice(0, 8) + '...' + spelling.slice(-2)))
      }
      // The exact prefix with a verified token and something after it is not that token.
      assertProblem(t, await get(`Bearer ${license}x`), 401, 'LICENSE_INVALID')
      assertProblem(t, await get(`Bearer ${license} x`), 401, 'LICENSE_INVALID')
    })

    t.test('a license signed by another vendor key is 401 LICENSE_INVALID', async (t) => {
      const s = await seeded(t, { driver })
      const other = await generateLicenseKeyPair('ES256')
      const forged = await issueLicense(other.privatePem, { sub: 'cluster-1', channels: ['*'], expiresIn: 3600 })
      t.match(assertProblem(t, await pull(s, 'stable', forged), 401, 'LICENSE_INVALID').detail, /signature/)
    })

    t.test('a license with an unknown kid is 401 LICENSE_INVALID', async (t) => {
      const s = await seeded(t, { driver })
      t.match(assertProblem(t, await pull(s, 'stable', await s.license({ kid: 'key-2030' })), 401, 'LICENSE_INVALID').detail, /key id/)
    })

    t.test('with LICENSE_ISSUER set, another issuer is 401 LICENSE_INVALID', async (t) => {
      const s = await seeded(t, { driver, env: { LICENSE_ISSUER: 'https://vendor.example' } })
      t.equal((await pull(s, 'stable', await s.license({ iss: 'https://vendor.example' }))).statusCode, 200)
      t.match(assertProblem(t, await pull(s, 'stable', await s.license({ iss: 'https://evil.example' })), 401, 'LICENSE_INVALID').detail, /issuer/)
      assertProblem(t, await pull(s, 'stable', await s.license()), 401, 'LICENSE_INVALID')
    })

    t.test('with LICENSE_AUDIENCE set, another audience is 401 LICENSE_INVALID', async (t) => {
      const s = await seeded(t, { driver, env: { LICENSE_AUDIENCE: 'chartcast' } })
      t.equal((await pull(s, 'stable', await s.license({ aud: 'chartcast' }))).statusCode, 200)
      t.match(assertProblem(t, await pull(s, 'stable', await s.license({ aud: 'other' })), 401, 'LICENSE_INVALID').detail, /audience/)
    })

    t.test('a license accepted once is refused with LICENSE_EXPIRED once the clock passes exp', async (t) => {
      let clock = Date.now()
      const s = await seeded(t, { driver, now: () => clock })
      const license = await s.license({ expiresIn: 60 })
      t.equal((await pull(s, 'stable', license)).statusCode, 200)
      clock += 59_000
      t.equal((await pull(s, 'stable', license)).statusCode, 200, 'still valid a second before exp')
      clock += 2_000
      const res = await pull(s, 'stable', license)
      assertProblem(t, res, 401, 'LICENSE_EXPIRED')
      t.ok(res.headers['www-authenticate'])
      const etag = '*'
      assertProblem(t, await pull(s, 'stable', license, { 'if-none-match': etag }), 401, 'LICENSE_EXPIRED')
    })

    t.test('a license before nbf is 401 LICENSE_NOT_YET_VALID, and valid once the clock reaches it', async (t) => {
      let clock = Date.now()
      const s = await seeded(t, { driver, now: () => clock })
      const license = await s.license({ notBefore: 120 })
      assertProblem(t, await pull(s, 'stable', license), 401, 'LICENSE_NOT_YET_VALID')
      clock += 121_000
      t.equal((await pull(s, 'stable', license)).statusCode, 200)
    })

    t.test('revoking a jti refuses that license on the next pull with 403 LICENSE_REVOKED', async (t) => {
      const s = await seeded(t, { driver })
      const license = await s.license({ jti: 'lic-1' })
      const sibling = await s.license({ jti: 'lic-2' })
      t.equal((await pull(s, 'stable', license)).statusCode, 200)
      const revoke = await s.app.inject({ method: 'POST', url: '/licenses/revocations', headers: auth(s.tokens.admin), payload: { jti: 'lic-1', reason: 'leaked' } })
      t.equal(revoke.statusCode, 201)
      assertProblem(t, await pull(s, 'stable', license), 403, 'LICENSE_REVOKED')
      t.equal((await pull(s, 'stable', sibling)).statusCode, 200, 'another jti of the same sub still works')
    })

    t.test('revoking a sub refuses every license of that deployment on the next pull', async (t) => {
      const s = await seeded(t, { driver })
      const a = await s.license({ sub: 'acme-prod' })
      const b = await s.license({ sub: 'acme-prod' })
      const other = await s.license({ sub: 'acme-dev' })
      t.equal((await pull(s, 'stable', a)).statusCode, 200)
      t.equal((await s.app.inject({ method: 'POST', url: '/licenses/revocations', headers: auth(s.tokens.admin), payload: { sub: 'acme-prod', reason: 'contract ended' } })).statusCode, 201)
      assertProblem(t, await pull(s, 'stable', a), 403, 'LICENSE_REVOKED')
      assertProblem(t, await pull(s, 'stable', b), 403, 'LICENSE_REVOKED')
      t.equal((await pull(s, 'stable', other)).statusCode, 200)
    })

    t.test('a license without the channel is 403 CHANNEL_NOT_ENTITLED', async (t) => {
      const s = await seeded(t, { driver })
      await s.putChannel('beta')
      const license = await s.license({ channels: ['beta'] })
      t.match(assertProblem(t, await pull(s, 'stable', license), 403, 'CHANNEL_NOT_ENTITLED').detail, /stable/)
    })

    t.test('pulls are counted by channel and outcome in /metrics', async (t) => {
      const s = await seeded(t, { driver })
      const license = await s.license()
      const etag = (await pull(s, 'stable', license)).headers.etag as string
      await pull(s, 'stable', license, { 'if-none-match': etag })
      await s.app.inject({ url: '/channels/stable/spec' })
      const metrics = (await s.app.inject({ url: '/metrics' })).body
      t.match(metrics, /chartcast_spec_pulls_total\{endpoint="spec",channel="stable",outcome="ok"\} 1/)
      t.match(metrics, /chartcast_spec_pulls_total\{endpoint="spec",channel="stable",outcome="not_modified"\} 1/)
      t.match(metrics, /chartcast_spec_pulls_total\{endpoint="spec",channel="stable",outcome="LICENSE_MISSING"\} 1/)
    })
  })
}
