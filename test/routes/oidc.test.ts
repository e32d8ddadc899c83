/**
 * Single sign-on against a real OpenID provider started in this process (oidc-provider, see
 * test/helpers/oidc-provider.ts): the code flow with PKCE over HTTP with a cookie jar, role
 * mapping, state/nonce/PKCE refusals, no open redirect, expiry bounded by the ID token, the
 * session on a second replica, audit rows naming the person.
 */
import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SessionSealer } from '../../src/services/session-sealer.js'
import { buildTestServer, testDrivers, type Driver, type TestServer } from '../helpers/server.js'
import { assertProblem, auth } from '../helpers/problem.js'
import { browse, CookieJar, startTestProvider, type Hop, type TestProvider } from '../helpers/oidc-provider.js'
import { openEventStream, openTenStreams } from '../helpers/event-stream.js'

const APP_ORIGIN = 'http://chartcast.test'
const REDIRECT_URI = `${APP_ORIGIN}/auth/oidc/callback`
const ROLES = 'chartcast-admins=admin,chartcast-release=publisher,chartcast-viewers=reader'

const ACCOUNTS = {
  ada: { email: 'ada@example.com', email_verified: true, groups: ['chartcast-admins', 'staff'] },
  pat: { email: 'pat@example.com', email_verified: true, groups: ['chartcast-release'] },
  rex: { email: 'rex@example.com', email_verified: true, groups: ['chartcast-viewers'] },
  both: { email: 'both@example.com', email_verified: true, groups: ['chartcast-viewers', 'chartcast-release'] },
  mo: { email: 'mo@example.com', email_verified: true, groups: ['marketing'] },
  nogroups: { email: 'nogroups@example.com', email_verified: true },
  anon: { groups: ['chartcast-release'] },
  unverified: { email: 'claimed@example.com', email_verified: false, groups: ['chartcast-release'] },
  nul: { email: 'eve\u0000@example.com', email_verified: true, groups: ['chartcast-release'] },
  surrogate: { email: 'eve\ud800@example.com', email_verified: true, groups: ['chartcast-release'] }
}

function oidcEnv (provider: Pick<TestProvider, 'issuer' | 'clientId' | 'clientSecret'>, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PUBLIC_URL: APP_ORIGIN,
    OIDC_ISSUER: provider.issuer,
    OIDC_CLIENT_ID: provider.clientId,
    OIDC_CLIENT_SECRET: provider.clientSecret,
    OIDC_ROLES: ROLES,
    OIDC_SCOPES: 'openid email groups',
    ...extra
  }
}

async function providerFor (t: Test, options: { idTokenTtlSeconds?: number } = {}): Promise<TestProvider> {
  const provider = await startTestProvider(REDIRECT_URI, ACCOUNTS, options)
  t.teardown(provider.close)
  return provider
}

async function oidcServer (t: Test, driver: Driver, provider: TestProvider, env: Record<string, string> = {}): Promise<TestServer> {
  return await buildTestServer(t, { driver, env: oidcEnv(provider, env) })
}

const isCallback = (url: URL): boolean => url.origin === APP_ORIGIN && url.pathname === '/auth/oidc/callback'
const last = (hops: Hop[]): Hop => hops[hops.length - 1]!

/** Signs `account` in through the provider; returns the hops (the last is the callback's answer) and the jar. */
async function signInThroughProvider (s: TestServer, provider: TestProvider, account: string, returnTo = '/ui/'): Promise<{ hops: Hop[], jar: CookieJar }> {
  provider.signInAs(account)
  const jar = new CookieJar()
  const hops = await browse(jar, { origin: APP_ORIGIN, fastify: s.app }, `${APP_ORIGIN}/auth/oidc/login?returnTo=${encodeURIComponent(returnTo)}`, (url) => url.origin === APP_ORIGIN && !url.pathname.startsWith('/auth/'))
  return { hops, jar }
}

/** Runs the flow up to (not into) the callback: the callback URL the provider sent, and the jar. */
async function upToCallback (s: TestServer, provider: TestProvider, account: string): Promise<{ callback: string, jar: CookieJar }> {
  provider.signInAs(account)
  const jar = new CookieJar()
  const hops = await browse(jar, { origin: APP_ORIGIN, fastify: s.app }, `${APP_ORIGIN}/auth/oidc/login`, isCallback)
  const location = last(hops).location
  if (location === null) throw new Error(`the flow did not reach the callback: ${JSON.stringify(last(hops))}`)
  return { callback: new URL(location, last(hops).url).href, jar }
}

async function callWithCookie (s: TestServer, url: string, cookie: string | undefined): Promise<import('fastify').LightMyRequestResponse> {
  const target = new URL(url)
  return await s.app.inject({ url: target.pathname + target.search, headers: { host: target.host, ...(cookie !== undefined && { cookie }) } })
}

function sessionCookieOf (hop: Hop): string | undefined {
  return hop.setCookies.find((c) => c.startsWith('chartcast_session=') && !/Max-Age=0/.test(c))
}

/** Signs `account` in and asserts the callback's refusal: this status and code, and no session cookie. */
async function assertSignInRefused (t: Test, s: TestServer, provider: TestProvider, account: string, status: number, code: string): Promise<void> {
  const { hops, jar } = await signInThroughProvider(s, provider, account)
  const res = last(hops)
  t.equal(res.status, status, `${account}: ${res.body}`)
  t.equal(JSON.parse(res.body).code, code)
  t.equal(sessionCookieOf(res), undefined, `${account}: no session cookie`)
  t.notOk(jar.get(APP_ORIGIN, 'chartcast_session'))
}

for (const driver of testDrivers()) {
  t.test(driver, async (t: Test) => {
    const provider = await providerFor(t)

    t.test('GET /auth/config says single sign-on is set up', async (t) => {
      const s = await oidcServer(t, driver, provider)
      t.same((await s.app.inject({ url: '/auth/config' })).json(), { oidc: true })
    })

    t.test('the OpenAPI document lists the sign-on routes with their redirects and refusals', async (t) => {
      const s = await oidcServer(t, driver, provider)
      const doc = (await s.app.inject({ url: '/docs/json' })).json()
      t.same(Object.keys(doc.paths['/auth/oidc/login'].get.responses).sort(), ['302', '400', '429', '502'])
      t.same(Object.keys(doc.paths['/auth/oidc/callback'].get.responses).sort(), ['302', '400', '403', '429', '502', '503'])
      t.same(doc.paths['/auth/oidc/callback'].get.responses['403'].content['application/problem+json'].schema.properties.code.enum, ['NO_ROLE'])
    })

    t.test('the full code flow with PKCE: provider login, callback, session cookie, redirect to returnTo', async (t) => {
      const s = await oidcServer(t, driver, provider)
      const { hops, jar } = await signInThroughProvider(s, provider, 'ada', '/ui/channels?tab=rollouts')
      const authorize = new URL(hops[0]!.location!)
      t.equal(hops[0]!.status, 302)
      t.equal(authorize.origin, provider.issuer, 'the login sends the browser to the provider')
      t.equal(authorize.searchParams.get('response_type'), 'code')
      t.equal(authorize.searchParams.get('code_challenge_method'), 'S256')
      t.match(authorize.searchParams.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/)
      t.ok(authorize.searchParams.get('state'), 'state')
      t.ok(authorize.searchParams.get('nonce'), 'nonce')
      t.equal(authorize.searchParams.get('redirect_uri'), REDIRECT_URI)
      const transactionCookie = hops[0]!.setCookies.find((c) => c.startsWith('chartcast_oidc='))
      t.match(transactionCookie, /HttpOnly/)
      t.match(transactionCookie, /SameSite=Lax/)
      t.match(transactionCookie, /Path=\/auth\/oidc/)
      const callback = last(hops)
      t.match(callback.url, /^http:\/\/chartcast\.test\/auth\/oidc\/callback\?/)
      t.equal(callback.status, 302, callback.body)
      t.equal(callback.location, '/ui/channels?tab=rollouts')
      const setCookie = sessionCookieOf(callback)
      t.ok(setCookie, 'the session cookie is set')
      t.match(setCookie, /HttpOnly/)
      t.match(setCookie, /SameSite=Strict/)
      t.notOk(jar.get(APP_ORIGIN, 'chartcast_oidc'), 'the login transaction cookie is cleared')
      const session = await s.app.inject({ url: '/auth/session', headers: { cookie: jar.header(APP_ORIGIN)! } })
      t.equal(session.statusCode, 200, session.body)
      t.match(session.json(), { subject: 'ada@example.com', role: 'admin', via: 'oidc' })
      t.equal((await s.app.inject({ url: '/tokens/revocations', headers: { cookie: jar.header(APP_ORIGIN)! } })).statusCode, 200, 'an admin route accepts the session')
    })

    t.test('OIDC_ROLES maps the groups claim: admin, publisher, reader, the highest of several, and none (403, no session)', async (t) => {
      const s = await oidcServer(t, driver, provider)
      for (const [account, role] of [['ada', 'admin'], ['pat', 'publisher'], ['rex', 'reader'], ['both', 'publisher']] as const) {
        const { hops, jar } = await signInThroughProvider(s, provider, account)
        t.equal(last(hops).status, 302, `${account}: ${last(hops).body}`)
        const session = await s.app.inject({ url: '/auth/session', headers: { cookie: jar.header(APP_ORIGIN)! } })
        t.equal(session.json().role, role, account)
      }
      for (const account of ['mo', 'nogroups']) await assertSignInRefused(t, s, provider, account, 403, 'NO_ROLE')
      t.equal((await s.app.inject({ url: '/audit?limit=500', headers: auth(s.tokens.admin) })).json().entries.filter((e: { actor: string }) => e.actor === 'mo@example.com').length, 0, 'no session was recorded for someone without a role')
    })

    t.test('a person whose email holds a NUL or an unpaired surrogate is refused (400 SIGN_IN_FAILED), with no session and no audit row', async (t) => {
      const s = await oidcServer(t, driver, provider)
      for (const account of ['nul', 'surrogate']) await assertSignInRefused(t, s, provider, account, 400, 'SIGN_IN_FAILED')
      const entries = (await s.app.inject({ url: '/audit?limit=500', headers: auth(s.tokens.admin) })).json().entries as Array<{ action: string }>
      t.equal(entries.filter((e) => e.action === 'session.start').length, 0)
    })

    t.test('a `*` entry gives anyone the provider signs in a role', async (t) => {
      const s = await oidcServer(t, driver, provider, { OIDC_ROLES: 'chartcast-admins=admin,*=reader' })
      const { jar } = await signInThroughProvider(s, provider, 'mo')
      t.equal((await s.app.inject({ url: '/auth/session', headers: { cookie: jar.header(APP_ORIGIN)! } })).json().role, 'reader')
      const { jar: adaJar } = await signInThroughProvider(s, provider, 'ada')
      t.equal((await s.app.inject({ url: '/auth/session', headers: { cookie: adaJar.header(APP_ORIGIN)! } })).json().role, 'admin', 'the highest match wins')
    })

    t.test('a callback whose state is not the one this browser started is refused, and makes no session', async (t) => {
      const s = await oidcServer(t, driver, provider)
      const first = await upToCallback(s, provider, 'ada')
      // A second login in another browser: its transaction cookie, with the first login's callback.
      const other = new CookieJar()
      await browse(other, { origin: APP_ORIGIN, fastify: s.app }, `${APP_ORIGIN}/auth/oidc/login`, () => true)
      const res = await callWithCookie(s, first.callback, other.header(APP_ORIGIN))
      assertProblem(t, res, 400, 'SIGN_IN_FAILED')
      t.equal([res.headers['set-cookie'] ?? []].flat().find((c) => c.startsWith('chartcast_session=')), undefined)
    })

    t.test('a person signed in twice shares 10 live event streams; signing out one session ends its own', async (t) => {
      const s = await oidcServer(t, driver, provider)
      const base = await s.listen()
      const first = (await signInThroughProvider(s, provider, 'ada')).jar.header(APP_ORIGIN)!
      const second = (await signInThroughProvider(s, provider, 'ada')).jar.header(APP_ORIGIN)!
      const streams = await openTenStreams(t, base, first, second)
      const third = (await signInThroughProvider(s, provider, 'ada')).jar.header(APP_ORIGIN)!
      for (const cookie of [first, second, third]) {
        const refused = await openEventStream(base, { cookie })
        t.equal(refused.status, 429, 'the person has 10 streams open')
        t.equal(JSON.parse(refused.body).code, 'RATE_LIMITED')
      }
      const other = await openEventStream(base, { cookie: (await signInThroughProvider(s, provider, 'pat')).jar.header(APP_ORIGIN)! })
      t.equal(other.status, 200, 'another person is not held back')
      streams.push(other)
      t.equal((await s.app.inject({ method: 'DELETE', url: '/auth/session', headers: { host: 'chartcast.test', cookie: first, origin: APP_ORIGIN } })).statusCode, 204)
      await Promise.all(streams.slice(0, 5).map(async (stream) => { await stream.ended }))
      while (s.app.events.size > 6) await new Promise((resolve) => setImmediate(resolve))
      const again = await openEventStream(base, { cookie: second })
      streams.push(again)
      t.equal(again.status, 200, 'the signed-out session\'s places are free again')
    })

    t.test('a callback without the login\'s cookie, or used a second time, is refused', async (t) => {
      const s = await oidcServer(t, driver, provider)
      const flow = await upToCallback(s, provider, 'ada')
      assertProblem(t, await callWithCookie(s, flow.callback, undefined), 400, 'SIGN_IN_FAILED')
      const cookie = flow.jar.header(APP_ORIGIN)
      t.equal((await callWithCookie(s, flow.callback, cookie)).statusCode, 302, 'the genuine callback signs in')
      assertProblem(t, await callWithCookie(s, flow.callback, cookie), 400, 'SIGN_IN_FAILED')
    })

    t.test('an ID token whose nonce is not the login\'s is refused', async (t) => {
      const s = await oidcServer(t, driver, provider)
      const flow = await upToCallback(s, provider, 'ada')
      const sealer = new SessionSealer(s.authSecret, null)
      const genuine = await sealer.openTransaction(flow.jar.get(APP_ORIGIN, 'chartcast_oidc')!, Math.floor(Date.now() / 1000))
      t.ok(genuine)
      const forged = await sealer.sealTransaction({ ...genuine!, nonce: 'a-different-nonce-0123456789' }, Math.floor(Date.now() / 1000) + 300)
      const res = await callWithCookie(s, flow.callback, `chartcast_oidc=${forged}`)
      assertProblem(t, res, 400, 'SIGN_IN_FAILED')
      t.match(res.json().detail, /nonce/)
    })

    t.test('a code redeemed with another PKCE verifier is refused by the provider', async (t) => {
      const s = await oidcServer(t, driver, provider)
      const flow = await upToCallback(s, provider, 'ada')
      const sealer = new SessionSealer(s.authSecret, null)
      const genuine = await sealer.openTransaction(flow.jar.get(APP_ORIGIN, 'chartcast_oidc')!, Math.floor(Date.now() / 1000))
      const forged = await sealer.sealTransaction({ ...genuine!, codeVerifier: 'x'.repeat(43) }, Math.floor(Date.now() / 1000) + 300)
      assertProblem(t, await callWithCookie(s, flow.callback, `chartcast_oidc=${forged}`), 400, 'SIGN_IN_FAILED')
    })

    t.test('returnTo is a path on this server only: other origins, scheme-relative and backslash tricks go to /ui/', async (t) => {
      const s = await oidcServer(t, driver, provider)
      for (const returnTo of ['https://evil.example/', '//evil.example/x', '/\\evil.example', '\\\\evil.example', 'javascript:alert(1)', '/%2F%2Fevil.example', 'ui/relative']) {
        const { hops } = await signInThroughProvider(s, provider, 'rex', returnTo)
        const location = last(hops).location!
        t.equal(new URL(location, APP_ORIGIN).origin, APP_ORIGIN, `${returnTo} -> ${location}`)
        t.ok(location.startsWith('/') && !location.startsWith('//') && !location.includes('\\'), `${returnTo} -> ${location}`)
      }
      const { hops } = await signInThroughProvider(s, provider, 'rex', 'https://evil.example/')
      t.equal(last(hops).location, '/ui/')
    })

    t.test('audit rows name the person: the email, or the provider\'s sub without a verified one', async (t) => {
      const s = await oidcServer(t, driver, provider)
      for (const [account, actor, version] of [['pat', 'pat@example.com', '1.0.0'], ['anon', 'anon', '1.0.1'], ['unverified', 'unverified', '1.0.2']] as const) {
        const { jar } = await signInThroughProvider(s, provider, account)
        const res = await s.app.inject({
          method: 'POST',
          url: '/releases',
          headers: { host: 'chartcast.test', cookie: jar.header(APP_ORIGIN)!, origin: APP_ORIGIN },
          payload: { version, chart: { url: 'https://charts.example.com/acme', name: 'acme-app', version: '0.1.0' } }
        })
        t.equal(res.statusCode, 201, res.body)
        const entries = (await s.app.inject({ url: '/audit?limit=500', headers: auth(s.tokens.admin) })).json().entries as Array<Record<string, unknown>>
        t.match(entries.find((e) => e.action === 'release.publish' && e.target === `release:${version}`), { actor }, account)
        t.match(entries.find((e) => e.action === 'session.start' && e.actor === actor), { detail: { via: 'oidc', role: 'publisher' } })
      }
    })

    t.test('an OIDC session needs this server\'s Origin for changes, and logout refuses a kept copy', async (t) => {
      const s = await oidcServer(t, driver, provider)
      const { jar } = await signInThroughProvider(s, provider, 'ada')
      const cookie = jar.header(APP_ORIGIN)!
      assertProblem(t, await s.app.inject({ method: 'PUT', url: '/channels/stable', headers: { cookie }, payload: {} }), 403, 'ORIGIN_NOT_ALLOWED')
      t.equal((await s.app.inject({ method: 'PUT', url: '/channels/stable', headers: { cookie, origin: APP_ORIGIN }, payload: {} })).statusCode, 201)
      t.equal((await s.app.inject({ method: 'DELETE', url: '/auth/session', headers: { cookie, origin: APP_ORIGIN } })).statusCode, 204)
      assertProblem(t, await s.app.inject({ url: '/channels', headers: { cookie } }), 401, 'UNAUTHORIZED')
    })

    t.test('the session is accepted by a second replica on the same database', async (t) => {
      const s = await oidcServer(t, driver, provider)
      const replica = await buildTestServer(t, { driver, database: s.database, keyPair: s.keyPair, authSecret: s.authSecret, env: oidcEnv(provider) })
      const { jar } = await signInThroughProvider(s, provider, 'pat')
      const res = await replica.app.inject({ url: '/auth/session', headers: { cookie: jar.header(APP_ORIGIN)! } })
      t.equal(res.statusCode, 200, res.body)
      t.match(res.json(), { subject: 'pat@example.com', role: 'publisher', via: 'oidc' })
    })

    t.test('the callback may land on another replica than the login', async (t) => {
      const s = await oidcServer(t, driver, provider)
      const replica = await buildTestServer(t, { driver, database: s.database, keyPair: s.keyPair, authSecret: s.authSecret, env: oidcEnv(provider) })
      const flow = await upToCallback(s, provider, 'rex')
      const res = await callWithCookie(replica, flow.callback, flow.jar.header(APP_ORIGIN))
      t.equal(res.statusCode, 302, res.body)
    })

    t.test('the provider unreachable: the login answers 502 IDENTITY_PROVIDER_UNAVAILABLE', async (t) => {
      // A port that was just free: nothing listens on it.
      const probe = createServer()
      await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
      const port = (probe.address() as AddressInfo).port
      await new Promise((resolve) => probe.close(resolve))
      const s = await buildTestServer(t, { driver, env: oidcEnv({ issuer: `http://127.0.0.1:${port}`, clientId: 'x', clientSecret: 'y' }) })
      assertProblem(t, await s.app.inject({ url: '/auth/oidc/login' }), 502, 'IDENTITY_PROVIDER_UNAVAILABLE')
      t.equal((await s.app.inject({ url: '/livez' })).statusCode, 200, 'the server runs regardless')
    })
  })
}

t.test('a session never outlives its ID token: expiresAt is the ID token\'s exp, and past it the cookie is refused', async (t) => {
  const provider = await providerFor(t, { idTokenTtlSeconds: 120 })
  let offsetMs = 0
  const s = await buildTestServer(t, { env: oidcEnv(provider), now: () => Date.now() + offsetMs })
  const started = Math.floor(Date.now() / 1000)
  const { hops, jar } = await signInThroughProvider(s, provider, 'ada')
  const ended = Math.floor(Date.now() / 1000)
  const maxAge = Number(/Max-Age=(\d+)/.exec(sessionCookieOf(last(hops)) ?? '')?.[1])
  t.ok(maxAge <= 120 && maxAge > 60, `Max-Age ${maxAge} is the ID token's 120 s, not SESSION_MAX_AGE's 12 h`)
  const cookie = jar.header(APP_ORIGIN)!
  const session = (await s.app.inject({ url: '/auth/session', headers: { cookie } })).json()
  const expiresAt = Date.parse(session.expiresAt) / 1000
  t.ok(expiresAt >= started + 120 && expiresAt <= ended + 120, `expiresAt ${session.expiresAt} is the ID token's exp`)
  t.equal((await s.app.inject({ url: '/auth/session', headers: { cookie } })).statusCode, 200, 'valid before')
  offsetMs = (expiresAt + 1) * 1000 - Date.now()
  assertProblem(t, await s.app.inject({ url: '/auth/session', headers: { cookie } }), 401, 'UNAUTHORIZED')
})
