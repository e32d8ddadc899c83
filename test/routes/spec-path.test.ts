/**
 * The spec path as a deployment sees it: the Chartcast-Applied header, Vary on every answer,
 * licenses that entitle nothing, renewed licenses after a sub revocation, and one rate window
 * per license whatever spelling of its base64url is sent (both endpoints).
 */
import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { importPKCS8, SignJWT } from 'jose'
import { buildTestServer, testDrivers, type TestServer, type TestServerOptions } from '../helpers/server.js'
import { assertProblem } from '../helpers/problem.js'

const VARY = 'Authorization, Chartcast-Applied'
const OPERATOR = '/api/v1/operator/channel'
const nowSeconds = (): number => Math.floor(Date.now() / 1000)
const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })
const basicCredentials = (password: string): string => Buffer.from(`license:${password}`).toString('base64')
const basic = (password: string): Record<string, string> => ({ authorization: 'Basic ' + basicCredentials(password) })

/** stable: 1.0.0, 1.1.0 (head). */
async function seeded (t: Test, options: TestServerOptions): Promise<TestServer> {
  const s = await buildTestServer(t, options)
  await s.putChannel('stable')
  await s.putChannel('empty')
  for (const v of ['1.0.0', '1.1.0']) t.equal((await s.publish(v)).statusCode, 201)
  await s.promote('stable', '1.0.0')
  await s.promote('stable', '1.1.0')
  return s
}

async function pull (s: TestServer, headers: Record<string, string>, url = '/channels/stable/spec'): Promise<LightMyRequestResponse> {
  return await s.app.inject({ url, headers })
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/** Spellings of one license that jose would decode to the same bytes. */
function respellings (token: string): Record<string, string> {
  const [h, p, s] = token.split('.') as [string, string, string]
  const spareBit = s.slice(0, -1) + BASE64URL[BASE64URL.indexOf(s.at(-1)!) ^ 1]
  return {
    'spare bits in the last character': `${h}.${p}.${spareBit}`,
    'padding': `${h}.${p}.${s}==`
  }
}

async function revokeSub (s: TestServer, sub: string): Promise<number> {
  const res = await s.app.inject({ method: 'POST', url: '/licenses/revocations', headers: bearer(s.tokens.admin), payload: { sub, reason: 'contract ended' } })
  t.equal(res.statusCode, 201, res.body)
  return Math.floor(Date.parse((res.json() as { at: string }).at) / 1000)
}

for (const driver of testDrivers()) {
  t.test(driver, async (t) => {
    t.test('Chartcast-Applied with a strict semver is accepted, absent too', async (t) => {
      const s = await seeded(t, { driver })
      const license = await s.license({ channels: ['stable'] })
      for (const applied of ['1.0.0', '2.0.0-rc.1']) {
        const res = await pull(s, { ...bearer(license), 'chartcast-applied': applied })
        t.equal(res.statusCode, 200, res.body)
        t.equal(res.json().version, '1.1.0')
      }
      t.equal((await pull(s, bearer(license))).statusCode, 200)
    })

    t.test('an invalid Chartcast-Applied is 400 VALIDATION_FAILED naming the header, on a new and a cached license', async (t) => {
      const s = await seeded(t, { driver })
      const license = await s.license({ channels: ['stable'] })
      for (const applied of ['v1.0.0', '1.0', '1.0.0+build.1', 'latest', '', ' 1.0.0x', '01.0.0']) {
        const fresh = await s.license({ channels: ['stable'], jti: `fresh-${applied}` })
        for (const token of [fresh, license]) {
          const body = assertProblem(t, await pull(s, { ...bearer(token), 'chartcast-applied': applied }), 400, 'VALIDATION_FAILED')
          t.match(body.detail, /Chartcast-Applied/, JSON.stringify(applied))
        }
      }
    })

    t.test('every answer of the spec endpoint carries Vary: Authorization, Chartcast-Applied', async (t) => {
      const s = await seeded(t, { driver, env: { RATE_LIMIT_SPEC: '4' } })
      const license = await s.license({ channels: ['stable'] })
      const ok = await pull(s, bearer(license))
      t.equal(ok.statusCode, 200)
      const answers: Array<[string, LightMyRequestResponse]> = [
        ['200', ok],
        ['304', await pull(s, { ...bearer(license), 'if-none-match': ok.headers.etag as string })],
        ['400', await pull(s, { ...bearer(license), 'chartcast-applied': 'nope' })],
        ['401 missing', await pull(s, {})],
        ['401 invalid', await pull(s, bearer('a.b.c'))],
        ['403', await pull(s, bearer(license), '/channels/empty/spec')],
        ['404', await pull(s, bearer(await s.license({ channels: ['*'] })), '/channels/nowhere/spec')]
      ]
      t.equal(answers[1]![1].statusCode, 304)
      let limited: LightMyRequestResponse
      do limited = await pull(s, bearer(license)); while (limited.statusCode === 200)
      answers.push(['429', limited])
      t.equal(limited.statusCode, 429)
      for (const [name, res] of answers) t.equal(res.headers.vary, VARY, name)
    })

    t.test('a license with "channels": [] is 403 CHANNEL_NOT_ENTITLED on both endpoints, every time', async (t) => {
      const s = await seeded(t, { driver })
      const nothing = await s.license({ channels: [] })
      const withClaim = await s.license({ channels: [], channel: 'stable', jti: 'with-claim' })
      for (let i = 0; i < 2; i++) {
        assertProblem(t, await pull(s, bearer(nothing)), 403, 'CHANNEL_NOT_ENTITLED')
        assertProblem(t, await pull(s, basic(nothing), OPERATOR), 403, 'CHANNEL_NOT_ENTITLED')
        assertProblem(t, await pull(s, basic(withClaim), OPERATOR), 403, 'CHANNEL_NOT_ENTITLED')
      }
    })

    t.test('a sub revocation refuses licenses issued up to it; a renewed license is served', async (t) => {
      const s = await seeded(t, { driver })
      const old = await s.license({ sub: 'cluster-renewed', channels: ['stable'] }, nowSeconds() - 60)
      t.equal((await pull(s, bearer(old))).statusCode, 200, 'served before the revocation (and now cached)')
      const revokedAt = await revokeSub(s, 'cluster-renewed')
      assertProblem(t, await pull(s, bearer(old)), 403, 'LICENSE_REVOKED')
      assertProblem(t, await pull(s, basic(old), OPERATOR), 403, 'LICENSE_REVOKED')
      const sameSecond = await s.license({ sub: 'cluster-renewed', channels: ['stable'], jti: 'same-second' }, revokedAt)
      assertProblem(t, await pull(s, bearer(sameSecond)), 403, 'LICENSE_REVOKED')
      const key = await importPKCS8(s.keyPair.privatePem, 'ES256')
      const noIat = await new SignJWT({ channels: ['stable'] }).setProtectedHeader({ alg: 'ES256' }).setSubject('cluster-renewed').setExpirationTime(nowSeconds() + 3600).sign(key)
      assertProblem(t, await pull(s, bearer(noIat)), 403, 'LICENSE_REVOKED')
      const renewed = await s.license({ sub: 'cluster-renewed', channels: ['stable'], jti: 'renewed' }, revokedAt + 1)
      t.equal((await pull(s, bearer(renewed))).statusCode, 200, 'issued after the revocation')
      t.equal((await pull(s, basic(renewed), OPERATOR)).statusCode, 200)
    })

    t.test('a later revocation of the same sub refuses the license renewed in between', async (t) => {
      const s = await seeded(t, { driver })
      const first = await revokeSub(s, 'cluster-twice')
      const renewed = await s.license({ sub: 'cluster-twice', channels: ['stable'] }, first + 1)
      t.equal((await pull(s, bearer(renewed))).statusCode, 200)
      // The second revocation must come in a later second than the renewal's iat.
      while (nowSeconds() <= first + 1) await new Promise((resolve) => setTimeout(resolve, 100))
      await revokeSub(s, 'cluster-twice')
      assertProblem(t, await pull(s, bearer(renewed)), 403, 'LICENSE_REVOKED')
    })

    t.test('other spellings of a license get no pulls of their own (Bearer)', async (t) => {
      const s = await seeded(t, { driver, env: { RATE_LIMIT_SPEC: '3' } })
      const license = await s.license({ channels: ['stable'] })
      for (let i = 0; i < 3; i++) t.equal((await pull(s, bearer(license))).statusCode, 200)
      for (const [name, token] of Object.entries(respellings(license))) {
        assertProblem(t, await pull(s, bearer(token)), 401, 'LICENSE_INVALID')
        t.comment(name)
      }
      assertProblem(t, await pull(s, bearer(license)), 429, 'RATE_LIMITED')
    })

    t.test('other spellings of a license get no pulls of their own (Basic)', async (t) => {
      const s = await seeded(t, { driver, env: { RATE_LIMIT_SPEC: '3' } })
      // A license whose Basic credentials end in "=" padding, so they can be sent unpadded.
      let license = await s.license({ channels: ['stable'] })
      for (let pad = 0; !basicCredentials(license).endsWith('='); pad++) license = await s.license({ channels: ['stable'], extra: { pad: 'x'.repeat(pad) } })
      const unpadded = basicCredentials(license).replace(/=+$/, '')
      t.equal((await pull(s, basic(license), OPERATOR)).statusCode, 200)
      // Another base64 spelling of the Basic credentials carries the same password: same window.
      t.equal((await pull(s, { authorization: `Basic ${unpadded}` }, OPERATOR)).statusCode, 200, 'unpadded Basic credentials')
      const [h, p, sig] = license.split('.') as [string, string, string]
      const inside = { ...respellings(license), 'a space inside': `${h}.${p}.${sig.slice(0, 20)} ${sig.slice(20)}`, 'a newline inside': `${h}.${p.slice(0, 8)}\n${p.slice(8)}.${sig}` }
      for (const [name, token] of Object.entries(inside)) {
        const res = await pull(s, basic(token), OPERATOR)
        assertProblem(t, res, 401, 'LICENSE_INVALID')
        t.match(res.headers['www-authenticate'], /^Basic/, name)
      }
      t.equal((await pull(s, basic(license), OPERATOR)).statusCode, 200)
      assertProblem(t, await pull(s, basic(license), OPERATOR), 429, 'RATE_LIMITED')
      // One window across both endpoints.
      assertProblem(t, await pull(s, bearer(license)), 429, 'RATE_LIMITED')
    })
  })
}
