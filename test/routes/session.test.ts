/**
 * Dashboard sessions made from a publisher token: POST/GET/DELETE /auth/session, the cookie
 * and its flags, the cookie accepted by the API beside Bearer, the Origin check on changes,
 * logout on every replica, expiry bounded by the token, audit rows naming the person.
 */
import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { issuePublisherToken } from '../../src/token-tools.js'
import { buildTestServer, testDrivers, type TestServer } from '../helpers/server.js'
import { twoReplicas } from '../helpers/replicas.js'
import { assertProblem, auth } from '../helpers/problem.js'
import { pollUntil } from '../faults/support.js'

/** light-my-request's default Host is localhost:80, which a browser names http://localhost. */
const OWN_ORIGIN = 'http://localhost'

interface SignedIn { res: LightMyRequestResponse, setCookie: string, cookie: string }

function sessionSetCookie (res: LightMyRequestResponse): string {
  const header = [res.headers['set-cookie'] ?? []].flat().find((c) => c.startsWith('chartcast_session='))
  if (header === undefined) throw new Error(`no session cookie set: ${res.statusCode} ${res.body}`)
  return header
}

async function signIn (s: TestServer, token: string, headers: Record<string, string> = {}): Promise<SignedIn> {
  const res = await s.app.inject({ method: 'POST', url: '/auth/session', headers, payload: { token } })
  if (res.statusCode !== 200) return { res, setCookie: '', cookie: '' }
  const setCookie = sessionSetCookie(res)
  return { res, setCookie, cookie: setCookie.split(';')[0]! }
}

async function auditEntries (s: TestServer, action?: string): Promise<Array<Record<string, unknown>>> {
  const res = await s.app.inject({ url: '/audit?limit=500', headers: auth(s.tokens.admin) })
  const entries = res.json().entries as Array<Record<string, unknown>>
  return action === undefined ? entries : entries.filter((e) => e.action === action)
}

const release = (version: string): Record<string, unknown> => ({ version, chart: { url: 'https://charts.example.com/acme', name: 'acme-app', version: '0.1.0' } })

async function publishWithCookie (s: TestServer, cookie: string, version: string, origin?: string): Promise<LightMyRequestResponse> {
  return await s.app.inject({ method: 'POST', url: '/releases', headers: { cookie, ...(origin !== undefined && { origin }) }, payload: release(version) })
}

for (const driver of testDrivers()) {
  t.test(driver, async (t: Test) => {
    t.test('POST /auth/session with a token answers who is signed in and sets an HttpOnly SameSite=Strict cookie, not Secure on plain http', async (t) => {
      const s = await buildTestServer(t, { driver })
      const issued = await issuePublisherToken(s.authSecret, { sub: 'rita-release', role: 'publisher', expiresIn: 3600 })
      const { res, setCookie } = await signIn(s, issued.token)
      t.equal(res.statusCode, 200, res.body)
      t.same(res.json(), { subject: 'rita-release', role: 'publisher', expiresAt: new Date(issued.exp * 1000).toISOString(), via: 'token' })
      const attributes = setCookie.split(';').map((a) => a.trim())
      t.ok(attributes.includes('HttpOnly'), setCookie)
      t.ok(attributes.includes('SameSite=Strict'), setCookie)
      t.ok(attributes.includes('Path=/'), setCookie)
      t.notOk(attributes.includes('Secure'), 'plain http: no Secure')
      t.notMatch(setCookie, issued.token, 'the token itself is not in the cookie')
      t.notMatch(res.body, issued.token, 'nor in the answer')
    })

    t.test('the cookie is Secure behind TRUST_PROXY with X-Forwarded-Proto https, and not when the proxy is not trusted', async (t) => {
      const trusted = await buildTestServer(t, { driver, env: { TRUST_PROXY: 'true' } })
      const viaProxy = await signIn(trusted, trusted.tokens.reader, { 'x-forwarded-proto': 'https' })
      t.ok(viaProxy.setCookie.split(';').map((a) => a.trim()).includes('Secure'), viaProxy.setCookie)
      const untrusted = await buildTestServer(t, { driver })
      const spoofed = await signIn(untrusted, untrusted.tokens.reader, { 'x-forwarded-proto': 'https' })
      t.notOk(spoofed.setCookie.split(';').map((a) => a.trim()).includes('Secure'), 'an untrusted X-Forwarded-Proto is ignored')
    })

    t.test('the cookie is Secure when PUBLIC_URL is https', async (t) => {
      const s = await buildTestServer(t, { driver, env: { PUBLIC_URL: 'https://chartcast.example.com' } })
      const { setCookie } = await signIn(s, s.tokens.reader)
      t.ok(setCookie.split(';').map((a) => a.trim()).includes('Secure'), setCookie)
    })

    t.test('GET /auth/session answers the session from the cookie, and 401 without one', async (t) => {
      const s = await buildTestServer(t, { driver })
      const { cookie, res } = await signIn(s, s.tokens.admin)
      const current = await s.app.inject({ url: '/auth/session', headers: { cookie } })
      t.equal(current.statusCode, 200, current.body)
      t.same(current.json(), res.json())
      assertProblem(t, await s.app.inject({ url: '/auth/session' }), 401, 'UNAUTHORIZED')
      assertProblem(t, await s.app.inject({ url: '/auth/session', headers: { cookie: 'chartcast_session=not-a-session' } }), 401, 'UNAUTHORIZED')
    })

    t.test('GET /auth/config says whether single sign-on is set up', async (t) => {
      const s = await buildTestServer(t, { driver })
      const res = await s.app.inject({ url: '/auth/config' })
      t.equal(res.statusCode, 200)
      t.same(res.json(), { oidc: false })
    })

    t.test('a bad, revoked or over-long token signs no one in, sets no cookie and writes no audit row', async (t) => {
      const s = await buildTestServer(t, { driver })
      const before = (await auditEntries(s)).length
      const wrongKey = await issuePublisherToken('another-secret-of-at-least-32-characters!', { sub: 'mallory', role: 'admin', expiresIn: 3600 })
      for (const token of ['nonsense', wrongKey.token]) {
        const res = await s.app.inject({ method: 'POST', url: '/auth/session', payload: { token } })
        assertProblem(t, res, 401, 'UNAUTHORIZED')
        t.equal(res.headers['set-cookie'], undefined)
      }
      const revoked = await issuePublisherToken(s.authSecret, { sub: 'ci-bot', role: 'admin', expiresIn: 3600 })
      await s.app.inject({ method: 'POST', url: '/tokens/revocations', headers: auth(s.tokens.admin), payload: { jti: revoked.jti, reason: 'leaked' } })
      assertProblem(t, await s.app.inject({ method: 'POST', url: '/auth/session', payload: { token: revoked.token } }), 401, 'TOKEN_REVOKED')
      assertProblem(t, await s.app.inject({ method: 'POST', url: '/auth/session', payload: { token: s.tokens.admin, extra: 1 } }), 400, 'VALIDATION_FAILED')
      t.equal((await auditEntries(s)).length, before + 1, 'only the revocation was audited')
    })

    t.test('a sign-in posted from another origin is refused (login CSRF), from our own or with no Origin (curl) it is not', async (t) => {
      const s = await buildTestServer(t, { driver })
      const foreign = await s.app.inject({ method: 'POST', url: '/auth/session', headers: { origin: 'https://evil.example' }, payload: { token: s.tokens.admin } })
      assertProblem(t, foreign, 403, 'ORIGIN_NOT_ALLOWED')
      t.equal(foreign.headers['set-cookie'], undefined)
      t.equal((await signIn(s, s.tokens.admin, { origin: OWN_ORIGIN })).res.statusCode, 200)
      t.equal((await signIn(s, s.tokens.admin)).res.statusCode, 200)
    })

    t.test('the session cookie authenticates the API like the token would, and the role is the token\'s', async (t) => {
      const s = await buildTestServer(t, { driver })
      const reader = await signIn(s, s.tokens.reader)
      t.equal((await s.app.inject({ url: '/releases', headers: { cookie: reader.cookie } })).statusCode, 200)
      assertProblem(t, await s.app.inject({ url: '/tokens/revocations', headers: { cookie: reader.cookie } }), 403, 'FORBIDDEN')
      assertProblem(t, await publishWithCookie(s, reader.cookie, '1.0.0', OWN_ORIGIN), 403, 'FORBIDDEN')
    })

    t.test('a Bearer token is judged alone: a cookie beside it changes nothing', async (t) => {
      const s = await buildTestServer(t, { driver })
      const admin = await signIn(s, s.tokens.admin)
      assertProblem(t, await s.app.inject({ url: '/tokens/revocations', headers: { ...auth(s.tokens.reader), cookie: admin.cookie } }), 403, 'FORBIDDEN')
      assertProblem(t, await s.app.inject({ url: '/releases', headers: { authorization: 'Bearer nonsense', cookie: admin.cookie } }), 401, 'UNAUTHORIZED')
      const changed = await s.app.inject({ method: 'POST', url: '/releases', headers: { ...auth(s.tokens.publisher), cookie: admin.cookie }, payload: release('1.0.0') })
      t.equal(changed.statusCode, 201, 'a Bearer change needs no Origin')
    })

    t.test('a change made with the cookie needs this server\'s Origin: missing or wrong is 403 ORIGIN_NOT_ALLOWED and stores nothing', async (t) => {
      const s = await buildTestServer(t, { driver })
      const { cookie } = await signIn(s, s.tokens.publisher)
      const missing = assertProblem(t, await publishWithCookie(s, cookie, '1.0.0'), 403, 'ORIGIN_NOT_ALLOWED')
      t.match(missing.detail, /missing/)
      for (const origin of ['https://evil.example', 'http://localhost:8080', 'https://localhost', 'null']) {
        assertProblem(t, await publishWithCookie(s, cookie, '1.0.0', origin), 403, 'ORIGIN_NOT_ALLOWED')
      }
      t.equal((await s.app.inject({ url: '/releases/1.0.0', headers: auth(s.tokens.reader) })).statusCode, 404, 'nothing was published')
      t.equal((await publishWithCookie(s, cookie, '1.0.0', OWN_ORIGIN)).statusCode, 201, 'from our own origin it is published')
      t.equal((await s.app.inject({ url: '/releases', headers: { cookie } })).statusCode, 200, 'a read needs no Origin')
    })

    t.test('a Host header that is no host refuses a cookie change with 403, not a server error', async (t) => {
      const s = await buildTestServer(t, { driver })
      const { cookie } = await signIn(s, s.tokens.publisher)
      const res = await s.app.inject({ method: 'POST', url: '/releases', headers: { cookie, host: 'bad host:x', origin: 'http://bad host:x' }, payload: release('1.0.0') })
      assertProblem(t, res, 403, 'ORIGIN_NOT_ALLOWED')
    })

    t.test('with PUBLIC_URL set, the Origin must be PUBLIC_URL\'s, whatever the Host header says', async (t) => {
      const s = await buildTestServer(t, { driver, env: { PUBLIC_URL: 'https://chartcast.example.com' } })
      const { cookie } = await signIn(s, s.tokens.publisher)
      assertProblem(t, await publishWithCookie(s, cookie, '1.0.0', OWN_ORIGIN), 403, 'ORIGIN_NOT_ALLOWED')
      t.equal((await publishWithCookie(s, cookie, '1.0.0', 'https://chartcast.example.com')).statusCode, 201)
    })

    t.test('audit rows made through a session name the token\'s subject; sign-in and sign-out are audited too', async (t) => {
      const s = await buildTestServer(t, { driver })
      const person = await issuePublisherToken(s.authSecret, { sub: 'pat.person@example.com', role: 'publisher', expiresIn: 3600 })
      const { cookie } = await signIn(s, person.token)
      t.equal((await publishWithCookie(s, cookie, '1.0.0', OWN_ORIGIN)).statusCode, 201)
      t.match(await auditEntries(s, 'release.publish'), [{ actor: 'pat.person@example.com', target: 'release:1.0.0' }])
      t.match(await auditEntries(s, 'session.start'), [{ actor: 'pat.person@example.com', detail: { via: 'token', role: 'publisher' } }])
      t.equal((await s.app.inject({ method: 'DELETE', url: '/auth/session', headers: { cookie, origin: OWN_ORIGIN } })).statusCode, 204)
      t.match(await auditEntries(s, 'session.end'), [{ actor: 'pat.person@example.com' }])
    })

    t.test('logout clears the cookie and a kept copy of it is refused afterwards', async (t) => {
      const s = await buildTestServer(t, { driver })
      const { cookie } = await signIn(s, s.tokens.admin)
      const other = await signIn(s, s.tokens.admin)
      const res = await s.app.inject({ method: 'DELETE', url: '/auth/session', headers: { cookie, origin: OWN_ORIGIN } })
      t.equal(res.statusCode, 204)
      const cleared = sessionSetCookie(res)
      t.match(cleared, /^chartcast_session=;/)
      t.match(cleared, /Max-Age=0/)
      const kept = assertProblem(t, await s.app.inject({ url: '/releases', headers: { cookie } }), 401, 'UNAUTHORIZED')
      t.match(kept.detail, /signed out/)
      assertProblem(t, await s.app.inject({ url: '/auth/session', headers: { cookie } }), 401, 'UNAUTHORIZED')
      t.equal((await s.app.inject({ url: '/releases', headers: { cookie: other.cookie } })).statusCode, 200, 'another session of the same token lives on')
      t.equal((await s.app.inject({ url: '/releases', headers: auth(s.tokens.admin) })).statusCode, 200, 'and so does the token')
      const restarted = await buildTestServer(t, { driver, database: s.database, keyPair: s.keyPair, authSecret: s.authSecret })
      assertProblem(t, await restarted.app.inject({ url: '/releases', headers: { cookie } }), 401, 'UNAUTHORIZED')
    })

    t.test('logout with the cookie needs our Origin; without a live session it just clears the cookie', async (t) => {
      const s = await buildTestServer(t, { driver })
      const { cookie } = await signIn(s, s.tokens.admin)
      assertProblem(t, await s.app.inject({ method: 'DELETE', url: '/auth/session', headers: { cookie, origin: 'https://evil.example' } }), 403, 'ORIGIN_NOT_ALLOWED')
      t.equal((await s.app.inject({ url: '/releases', headers: { cookie } })).statusCode, 200, 'the session lives on')
      for (const headers of [{}, { cookie: 'chartcast_session=garbage' }]) {
        const res = await s.app.inject({ method: 'DELETE', url: '/auth/session', headers })
        t.equal(res.statusCode, 204)
        t.match(sessionSetCookie(res), /Max-Age=0/)
      }
    })

    t.test('revoking the token ends the sessions made from it', async (t) => {
      const s = await buildTestServer(t, { driver })
      const ci = await issuePublisherToken(s.authSecret, { sub: 'ci-bot', role: 'publisher', expiresIn: 3600 })
      const { cookie } = await signIn(s, ci.token)
      t.equal((await s.app.inject({ url: '/releases', headers: { cookie } })).statusCode, 200)
      await s.app.inject({ method: 'POST', url: '/tokens/revocations', headers: auth(s.tokens.admin), payload: { jti: ci.jti, reason: 'leaked' } })
      assertProblem(t, await s.app.inject({ url: '/releases', headers: { cookie } }), 401, 'TOKEN_REVOKED')
    })

    t.test('a session ends when its token does: expiresAt is the token\'s exp, and past it the cookie is refused', async (t) => {
      let now = Date.now()
      const s = await buildTestServer(t, { driver, now: () => now })
      const short = await issuePublisherToken(s.authSecret, { sub: 'brief', role: 'reader', expiresIn: 120 }, Math.floor(now / 1000))
      const { res, cookie, setCookie } = await signIn(s, short.token)
      t.equal(res.json().expiresAt, new Date(short.exp * 1000).toISOString())
      const maxAge = Number(/Max-Age=(\d+)/.exec(setCookie)?.[1])
      t.ok(maxAge <= 120 && maxAge > 100, `the cookie's Max-Age (${maxAge}) is within the token's life`)
      t.equal((await s.app.inject({ url: '/releases', headers: { cookie } })).statusCode, 200)
      now = (short.exp + 1) * 1000
      assertProblem(t, await s.app.inject({ url: '/releases', headers: { cookie } }), 401, 'UNAUTHORIZED')
    })

    t.test('SESSION_MAX_AGE caps a session made from a long-lived token', async (t) => {
      let now = Date.now()
      const s = await buildTestServer(t, { driver, env: { SESSION_MAX_AGE: '10m' }, now: () => now })
      const { res, cookie } = await signIn(s, s.tokens.reader)
      const expiresAt = Date.parse(res.json().expiresAt)
      t.ok(expiresAt <= now + 600_000 && expiresAt > now + 590_000, res.body)
      now += 601_000
      assertProblem(t, await s.app.inject({ url: '/releases', headers: { cookie } }), 401, 'UNAUTHORIZED')
    })

    t.test('a cookie sealed with another AUTH_SECRET or altered is refused', async (t) => {
      const s = await buildTestServer(t, { driver })
      const other = await buildTestServer(t, { driver })
      const { cookie } = await signIn(other, other.tokens.admin)
      assertProblem(t, await s.app.inject({ url: '/releases', headers: { cookie } }), 401, 'UNAUTHORIZED')
      const mine = await signIn(s, s.tokens.admin)
      const flipped = mine.cookie.slice(0, -3) + (mine.cookie.endsWith('AAA') ? 'BBB' : 'AAA')
      assertProblem(t, await s.app.inject({ url: '/releases', headers: { cookie: flipped } }), 401, 'UNAUTHORIZED')
    })

    t.test('a session made on one replica works on another, and a logout on one is refused on the other', async (t) => {
      const { a, b } = await twoReplicas(t, driver)
      const { cookie } = await signIn(a, a.tokens.publisher)
      t.equal((await b.app.inject({ url: '/auth/session', headers: { cookie } })).statusCode, 200, 'B reads A\'s session')
      t.equal((await publishWithCookie(b, cookie, '1.0.0', OWN_ORIGIN)).statusCode, 201, 'and B accepts a change made with it')
      t.equal((await a.app.inject({ method: 'DELETE', url: '/auth/session', headers: { cookie, origin: OWN_ORIGIN } })).statusCode, 204)
      const refusedOnB = await pollUntil(async () => (await b.app.inject({ url: '/releases', headers: { cookie } })).statusCode === 401, 10_000)
      t.not(refusedOnB, null, 'B refuses the signed-out session')
    })
  })
}
