/**
 * A real OpenID provider (panva's oidc-provider, the certified implementation) started inside
 * the test process on 127.0.0.1, with one confidential client that must use PKCE, and test
 * accounts whose ID tokens carry `email` and a `groups` claim. Its own login and consent pages
 * are replaced by a programmatic login: the next interaction signs in whichever account the
 * test named with `signInAs`, and consents to what the client asked. Everything else (the
 * authorization endpoint, codes, PKCE, the token endpoint, signed ID tokens, discovery, JWKS)
 * is the provider's own.
 *
 * A tiny cookie jar and `browse` follow redirects the way a browser would, across the
 * provider (real HTTP) and the app (fastify inject, at PUBLIC_URL's origin).
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import Provider from 'oidc-provider'

export interface TestAccount {
  email?: string
  email_verified?: boolean
  groups?: string[]
}

export interface TestProvider {
  issuer: string
  clientId: string
  clientSecret: string
  /** The account the next login interaction signs in. */
  signInAs: (accountId: string) => void
  close: () => Promise<void>
}

export const CLIENT_ID = 'chartcast-dashboard'
export const CLIENT_SECRET = 'a-client-secret-for-the-test-provider-only'

export async function startTestProvider (redirectUri: string, accounts: Record<string, TestAccount>, { idTokenTtlSeconds = 3600 } = {}): Promise<TestProvider> {
  let nextAccount: string | null = null
  const server: Server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: [redirectUri],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic'
    }],
    pkce: { required: () => true },
    scopes: ['openid', 'email', 'groups'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'] },
    // Put the scopes' claims in the ID token (as Keycloak's and Dex's groups mappers do), not only at userinfo.
    conformIdTokenClaims: false,
    ttl: { IdToken: idTokenTtlSeconds, AccessToken: 3600, AuthorizationCode: 60, Interaction: 600, Session: 3600, Grant: 3600 },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    cookies: { keys: ['test-provider-cookie-key-0123456789'] },
    findAccount: async (_ctx: unknown, id: string) => {
      const account = accounts[id]
      if (account === undefined) return undefined
      return { accountId: id, claims: async () => ({ sub: id, ...account }) }
    }
  })
  const callback = provider.callback()
  server.on('request', (req, res) => {
    if (req.url?.startsWith('/interaction/') !== true) { callback(req, res); return }
    void (async () => {
      const details = await provider.interactionDetails(req, res)
      if (details.prompt.name === 'login') {
        if (nextAccount === null) throw new Error('the test named no account to sign in (signInAs)')
        await provider.interactionFinished(req, res, { login: { accountId: nextAccount } }, { mergeWithLastSubmission: false })
        return
      }
      const grant = details.grantId === undefined
        ? new provider.Grant({ accountId: details.session!.accountId, clientId: String(details.params.client_id) })
        : (await provider.Grant.find(details.grantId))!
      const missing = details.prompt.details
      if (Array.isArray(missing.missingOIDCScope)) grant.addOIDCScope(missing.missingOIDCScope.join(' '))
      if (Array.isArray(missing.missingOIDCClaims)) grant.addOIDCClaims(missing.missingOIDCClaims as string[])
      await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true })
    })().catch((error: unknown) => {
      res.statusCode = 500
      res.end(String(error))
    })
  })
  return {
    issuer,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    signInAs: (accountId) => { nextAccount = accountId },
    close: async () => { await new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => { resolve() }) }) }
  }
}

/** Cookies per origin, by name (paths and expiry beyond Max-Age=0 are not needed here). */
export class CookieJar {
  private readonly jar = new Map<string, Map<string, string>>()

  store (origin: string, setCookies: string[]): void {
    const cookies = this.jar.get(origin) ?? new Map<string, string>()
    for (const line of setCookies) {
      const [pair, ...attributes] = line.split(';')
      const eq = pair!.indexOf('=')
      const name = pair!.slice(0, eq).trim()
      const value = pair!.slice(eq + 1).trim()
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=Thu, 01 Jan 1970/i.test(a))
      if (expired || value === '') cookies.delete(name)
      else cookies.set(name, value)
    }
    this.jar.set(origin, cookies)
  }

  header (origin: string): string | undefined {
    const cookies = this.jar.get(origin)
    if (cookies === undefined || cookies.size === 0) return undefined
    return [...cookies].map(([name, value]) => `${name}=${value}`).join('; ')
  }

  get (origin: string, name: string): string | undefined {
    return this.jar.get(origin)?.get(name)
  }

  set (origin: string, name: string, value: string): void {
    const cookies = this.jar.get(origin) ?? new Map<string, string>()
    cookies.set(name, value)
    this.jar.set(origin, cookies)
  }
}

export interface Hop { url: string, status: number, location: string | null, setCookies: string[], body: string }

/**
 * GETs `url` and follows redirects, like a browser, keeping cookies in `jar`; URLs at
 * `app.origin` go to the fastify app through inject, others over HTTP. Stops at the first
 * answer that is not a redirect, or before following a redirect for which `stopAt` is true.
 */
export async function browse (jar: CookieJar, app: { origin: string, fastify: FastifyInstance }, url: string, stopAt: (url: URL) => boolean = () => false): Promise<Hop[]> {
  const hops: Hop[] = []
  let next: URL | null = new URL(url)
  for (let i = 0; next !== null && i < 20; i++) {
    const target: URL = next
    const cookie = jar.header(target.origin)
    let hop: Hop
    if (target.origin === app.origin) {
      const res = await app.fastify.inject({ method: 'GET', url: target.pathname + target.search, headers: { host: target.host, ...(cookie !== undefined && { cookie }) } })
      const setCookies = [res.headers['set-cookie'] ?? []].flat()
      hop = { url: target.href, status: res.statusCode, location: typeof res.headers.location === 'string' ? res.headers.location : null, setCookies, body: res.body }
    } else {
      const res = await fetch(target, { redirect: 'manual', headers: cookie === undefined ? {} : { cookie } })
      hop = { url: target.href, status: res.status, location: res.headers.get('location'), setCookies: res.headers.getSetCookie(), body: await res.text() }
    }
    jar.store(target.origin, hop.setCookies)
    hops.push(hop)
    next = hop.status >= 300 && hop.status < 400 && hop.location !== null ? new URL(hop.location, target) : null
    if (next !== null && stopAt(next)) break
  }
  return hops
}
