/** License attack matrix: each forged, stale or misplaced license gets its exact refusal code. */
import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { createHmac } from 'node:crypto'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { buildTestServer, testDrivers, type TestServer, type TestServerOptions } from '../helpers/server.js'
import { assertProblem } from '../helpers/problem.js'

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
const nowSeconds = (): number => Math.floor(Date.now() / 1000)
const goodClaims = (): Record<string, unknown> => ({ sub: 'cluster-1', channels: ['stable'], exp: nowSeconds() + 3600, iat: nowSeconds(), jti: 'lic-x' })

async function seeded (t: Test, options: TestServerOptions): Promise<TestServer> {
  const s = await buildTestServer(t, options)
  await s.putChannel('stable')
  await s.putChannel('beta')
  await s.publish('1.0.0')
  await s.promote('stable', '1.0.0')
  await s.promote('beta', '1.0.0')
  return s
}

async function pull (s: TestServer, license: string): Promise<LightMyRequestResponse> {
  return await s.app.inject({ url: '/channels/stable/spec', headers: { authorization: `Bearer ${license}` } })
}

for (const driver of testDrivers()) {
  t.test(driver, async (t) => {
    t.test('the genuine license is accepted (control)', async (t) => {
      const s = await seeded(t, { driver })
      t.equal((await pull(s, await s.license({ channels: ['stable'] }))).statusCode, 200)
    })

    t.test('alg "none" (any spelling) is LICENSE_INVALID', async (t) => {
      const s = await seeded(t, { driver })
      for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
        const token = `${b64({ alg, typ: 'JWT' })}.${b64(goodClaims())}.`
        assertProblem(t, await pull(s, token), 401, 'LICENSE_INVALID')
      }
    })

    t.test('HS256 signed with the public key PEM as the secret is LICENSE_INVALID', async (t) => {
      const s = await seeded(t, { driver })
      for (const alg of ['HS256', 'HS384', 'HS512']) {
        const input = `${b64({ alg, typ: 'JWT' })}.${b64(goodClaims())}`
        const hash = alg === 'HS256' ? 'sha256' : alg === 'HS384' ? 'sha384' : 'sha512'
        const token = `${input}.${createHmac(hash, s.keyPair.publicPem).update(input).digest('base64url')}`
        assertProblem(t, await pull(s, token), 401, 'LICENSE_INVALID')
      }
    })

    t.test('a tampered payload (widened channels) is LICENSE_INVALID', async (t) => {
      const s = await seeded(t, { driver })
      const [h, p, sig] = (await s.license({ channels: ['beta'] })).split('.') as [string, string, string]
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>
      assertProblem(t, await pull(s, `${h}.${b64({ ...claims, channels: ['*'] })}.${sig}`), 401, 'LICENSE_INVALID')
    })

    t.test('a tampered payload (extended exp) is LICENSE_INVALID', async (t) => {
      const s = await seeded(t, { driver })
      const [h, p, sig] = (await s.license({ expiresIn: 60 })).split('.') as [string, string, string]
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>
      assertProblem(t, await pull(s, `${h}.${b64({ ...claims, exp: nowSeconds() + 10 * 365 * 86400 })}.${sig}`), 401, 'LICENSE_INVALID')
    })

    t.test('a tampered, truncated or stripped signature is LICENSE_INVALID', async (t) => {
      const s = await seeded(t, { driver })
      const [h, p, sig] = (await s.license()).split('.') as [string, string, string]
      const flipped = sig.slice(0, 10) + (sig[10] === 'A' ? 'B' : 'A') + sig.slice(11)
      for (const token of [`${h}.${p}.${flipped}`, `${h}.${p}.${sig.slice(0, -4)}`, `${h}.${p}.`]) {
        assertProblem(t, await pull(s, token), 401, 'LICENSE_INVALID')
      }
    })

    t.test('a key embedded in the header (jwk) by the attacker is not trusted: LICENSE_INVALID', async (t) => {
      const s = await seeded(t, { driver })
      const { privateKey, publicKey } = await generateKeyPair('ES256')
      const token = await new SignJWT(goodClaims()).setProtectedHeader({ alg: 'ES256', jwk: await exportJWK(publicKey) }).sign(privateKey)
      assertProblem(t, await pull(s, token), 401, 'LICENSE_INVALID')
      const jku = await new SignJWT(goodClaims()).setProtectedHeader({ alg: 'ES256', jku: 'https://evil.example/jwks.json', kid: 'evil' }).sign(privateKey)
      assertProblem(t, await pull(s, jku), 401, 'LICENSE_INVALID')
    })

    t.test('an expired license is LICENSE_EXPIRED', async (t) => {
      const s = await seeded(t, { driver })
      const expired = await s.license({ expiresIn: 60 }, nowSeconds() - 3600)
      assertProblem(t, await pull(s, expired), 401, 'LICENSE_EXPIRED')
    })

    t.test('a license whose nbf is in the future is LICENSE_NOT_YET_VALID', async (t) => {
      const s = await seeded(t, { driver })
      assertProblem(t, await pull(s, await s.license({ notBefore: 3600 })), 401, 'LICENSE_NOT_YET_VALID')
    })

    t.test('a wrong issuer is LICENSE_INVALID when LICENSE_ISSUER is set', async (t) => {
      const s = await seeded(t, { driver, env: { LICENSE_ISSUER: 'https://vendor.example' } })
      assertProblem(t, await pull(s, await s.license({ iss: 'https://vendor.example.evil' })), 401, 'LICENSE_INVALID')
      assertProblem(t, await pull(s, await s.license()), 401, 'LICENSE_INVALID')
    })

    t.test('a wrong audience is LICENSE_INVALID when LICENSE_AUDIENCE is set', async (t) => {
      const s = await seeded(t, { driver, env: { LICENSE_AUDIENCE: 'chartcast' } })
      assertProblem(t, await pull(s, await s.license({ aud: 'someone-else' })), 401, 'LICENSE_INVALID')
      assertProblem(t, await pull(s, await s.license()), 401, 'LICENSE_INVALID')
    })

    t.test('an unknown kid is LICENSE_INVALID', async (t) => {
      const s = await seeded(t, { driver })
      assertProblem(t, await pull(s, await s.license({ kid: 'rotated-2019' })), 401, 'LICENSE_INVALID')
    })

    t.test('a kid with path characters is LICENSE_INVALID and reads no file', async (t) => {
      const s = await seeded(t, { driver })
      for (const kid of ['../../etc/passwd', '/etc/passwd', '..\\..\\windows\\win.ini', 'key\u0000.pem', "' OR 1=1 --"]) {
        const body = assertProblem(t, await pull(s, await s.license({ kid })), 401, 'LICENSE_INVALID')
        t.notMatch(String(body.detail), /root:|passwd/, JSON.stringify(kid))
      }
    })

    t.test('a revoked jti is LICENSE_REVOKED', async (t) => {
      const s = await seeded(t, { driver })
      const license = await s.license({ jti: 'lic-stolen' })
      await s.app.inject({ method: 'POST', url: '/licenses/revocations', headers: { authorization: `Bearer ${s.tokens.admin}` }, payload: { jti: 'lic-stolen', reason: 'posted publicly' } })
      assertProblem(t, await pull(s, license), 403, 'LICENSE_REVOKED')
    })

    t.test('a revoked sub is LICENSE_REVOKED for a license issued before the revocation, even one not seen before', async (t) => {
      const s = await seeded(t, { driver })
      await s.app.inject({ method: 'POST', url: '/licenses/revocations', headers: { authorization: `Bearer ${s.tokens.admin}` }, payload: { sub: 'cluster-evil', reason: 'fraud' } })
      assertProblem(t, await pull(s, await s.license({ sub: 'cluster-evil', jti: 'fresh' }, nowSeconds() - 60)), 403, 'LICENSE_REVOKED')
    })

    t.test('a channel the license does not cover is CHANNEL_NOT_ENTITLED', async (t) => {
      const s = await seeded(t, { driver })
      const res = await s.app.inject({ url: '/channels/beta/spec', headers: { authorization: `Bearer ${await s.license({ channels: ['stable'] })}` } })
      assertProblem(t, res, 403, 'CHANNEL_NOT_ENTITLED')
    })

    t.test('a channel name that only starts like an entitled one is CHANNEL_NOT_ENTITLED', async (t) => {
      const s = await seeded(t, { driver })
      await s.putChannel('stable-canary')
      const res = await s.app.inject({ url: '/channels/stable-canary/spec', headers: { authorization: `Bearer ${await s.license({ channels: ['stable'] })}` } })
      assertProblem(t, res, 403, 'CHANNEL_NOT_ENTITLED')
    })

    t.test('a 100 kB token is LICENSE_INVALID without being verified', async (t) => {
      const s = await seeded(t, { driver })
      const huge = await s.license({ extra: { pad: 'x'.repeat(100 * 1024) } })
      t.ok(huge.length > 100 * 1024)
      assertProblem(t, await pull(s, huge), 401, 'LICENSE_INVALID')
      assertProblem(t, await pull(s, 'A'.repeat(100 * 1024)), 401, 'LICENSE_INVALID')
    })

    t.test('a 100 kB token over real HTTP is refused with a 4xx, never a 5xx', async (t) => {
      const s = await seeded(t, { driver })
      const base = await s.listen()
      const res = await fetch(`${base}/channels/stable/spec`, { headers: { authorization: `Bearer ${'A'.repeat(100 * 1024)}` } })
      t.ok(res.status >= 400 && res.status < 500, String(res.status))
      await res.arrayBuffer()
    })

    t.test('Basic auth with another user name is LICENSE_INVALID on the operator endpoint', async (t) => {
      const s = await seeded(t, { driver })
      const license = await s.license({ channels: ['stable'] })
      for (const user of ['admin', 'License', 'license ', '']) {
        const res = await s.app.inject({ url: '/api/v1/operator/channel', headers: { authorization: 'Basic ' + Buffer.from(`${user}:${license}`).toString('base64') } })
        assertProblem(t, res, 401, 'LICENSE_INVALID')
        t.match(res.headers['www-authenticate'], /^Basic/)
      }
    })

    t.test('Basic auth on the Bearer spec endpoint is LICENSE_INVALID', async (t) => {
      const s = await seeded(t, { driver })
      const license = await s.license({ channels: ['stable'] })
      const res = await s.app.inject({ url: '/channels/stable/spec', headers: { authorization: 'Basic ' + Buffer.from(`license:${license}`).toString('base64') } })
      assertProblem(t, res, 401, 'LICENSE_INVALID')
    })

    t.test('a license in the wrong header is LICENSE_MISSING', async (t) => {
      const s = await seeded(t, { driver })
      const license = await s.license({ channels: ['stable'] })
      for (const headers of [{ 'x-license': license }, { 'x-api-key': license }, { cookie: `license=${license}` }, { 'proxy-authorization': `Bearer ${license}` }]) {
        assertProblem(t, await s.app.inject({ url: '/channels/stable/spec', headers }), 401, 'LICENSE_MISSING')
      }
      assertProblem(t, await s.app.inject({ url: `/channels/stable/spec?license=${license}` }), 400, 'VALIDATION_FAILED')
    })

    t.test('a well-signed license missing required claims is LICENSE_INVALID', async (t) => {
      const s = await seeded(t, { driver })
      const { importPKCS8 } = await import('jose')
      const key = await importPKCS8(s.keyPair.privatePem, 'ES256')
      for (const claims of [{ sub: 'x', channels: ['stable'] }, { sub: 'x', exp: nowSeconds() + 60 }, { channels: ['stable'], exp: nowSeconds() + 60 }, { sub: 'x', exp: nowSeconds() + 60, channels: 'stable' }]) {
        const token = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).sign(key)
        assertProblem(t, await pull(s, token), 401, 'LICENSE_INVALID')
      }
    })

    t.test('an exp or nbf beyond the Date range is a 401 on both spec endpoints, on every pull, never a 500', async (t) => {
      const s = await seeded(t, { driver })
      const { importPKCS8 } = await import('jose')
      const key = await importPKCS8(s.keyPair.privatePem, 'ES256')
      const cases: Array<[Record<string, unknown>, string, RegExp]> = [
        [{ exp: -1e300 }, 'LICENSE_EXPIRED', /^license expired at NumericDate -1e\+300 /],
        [{ exp: -9e15 }, 'LICENSE_EXPIRED', /^license expired at NumericDate -9000000000000000 /],
        [{ exp: nowSeconds() + 60, nbf: 9e15 }, 'LICENSE_NOT_YET_VALID', /^license is valid from NumericDate 9000000000000000 /],
        [{ exp: nowSeconds() + 60, nbf: 1e300 }, 'LICENSE_NOT_YET_VALID', /^license is valid from NumericDate 1e\+300 /]
      ]
      for (const [extra, code, detail] of cases) {
        const token = await new SignJWT({ sub: 'cluster-1', channels: ['stable'], ...extra }).setProtectedHeader({ alg: 'ES256' }).sign(key)
        // Twice each: the second pull is answered from the verified-token cache.
        for (let i = 0; i < 2; i++) {
          t.match(assertProblem(t, await pull(s, token), 401, code).detail, detail, `Bearer ${JSON.stringify(extra)}`)
          const operator = await s.app.inject({ url: '/api/v1/operator/channel', headers: { authorization: 'Basic ' + Buffer.from(`license:${token}`).toString('base64') } })
          t.match(assertProblem(t, operator, 401, code).detail, detail, `Basic ${JSON.stringify(extra)}`)
        }
      }
    })

    t.test('a far-future exp and an iat beyond the Date range do not end a license (control)', async (t) => {
      const s = await seeded(t, { driver })
      const { importPKCS8 } = await import('jose')
      const key = await importPKCS8(s.keyPair.privatePem, 'ES256')
      for (const extra of [{ exp: 1e300 }, { exp: nowSeconds() + 60, iat: 1e300 }, { exp: nowSeconds() + 60, iat: -1e300, nbf: -1e300 }]) {
        const token = await new SignJWT({ sub: 'cluster-1', channels: ['stable'], ...extra }).setProtectedHeader({ alg: 'ES256' }).sign(key)
        t.equal((await pull(s, token)).statusCode, 200, `Bearer ${JSON.stringify(extra)}`)
        const operator = await s.app.inject({ url: '/api/v1/operator/channel', headers: { authorization: 'Basic ' + Buffer.from(`license:${token}`).toString('base64') } })
        t.equal(operator.statusCode, 200, `Basic ${JSON.stringify(extra)}`)
      }
    })

    t.test('a refused token stays refused on repeat (the failure cache gives the same code)', async (t) => {
      const s = await seeded(t, { driver })
      const token = `${b64({ alg: 'none' })}.${b64(goodClaims())}.`
      for (let i = 0; i < 3; i++) assertProblem(t, await pull(s, token), 401, 'LICENSE_INVALID')
    })
  })
}
