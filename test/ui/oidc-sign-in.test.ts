/**
 * Single sign-on in a real browser (Debian's Chromium through playwright-core): the dashboard's
 * "Sign in with single sign-on" button, a real OpenID provider started in this process
 * (oidc-provider, test/helpers/oidc-provider.ts; its login step signs in the account the test
 * names, without a form), and a real chartcast server on PGlite listening at its PUBLIC_URL.
 *
 * The app is reached as http://chartcast.test:PORT (Chromium maps the name to 127.0.0.1) and the
 * provider as http://127.0.0.1:PORT, so they are different sites, as in production. Here the
 * provider's login has no form, so the whole sign-in is one navigation begun on the app's page
 * and Chromium sends the SameSite=Strict cookie with the /ui/ load that ends it. With a real
 * provider the way back starts on the provider's page, and that load comes without the cookie;
 * a separate step opens /ui/ from a page on the provider's site to check the page signs in
 * regardless (its own API calls carry the cookie).
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { Page, Request } from 'playwright-core'
import { openBrowser } from '../helpers/browser.js'
import { buildDashboard } from '../helpers/dashboard.js'
import { startTestProvider } from '../helpers/oidc-provider.js'
import { buildTestServer } from '../helpers/server.js'

const APP_HOST = 'chartcast.test'
const ROLES = 'chartcast-admins=admin,chartcast-release=publisher,chartcast-viewers=reader'
const ACCOUNTS = {
  ada: { email: 'ada@example.com', email_verified: true, groups: ['chartcast-admins', 'staff'] },
  rex: { email: 'rex@example.com', email_verified: true, groups: ['chartcast-viewers'] }
}

/** A port that was free a moment ago (the app must listen at PUBLIC_URL, which names it). */
async function freePort (): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const port = (probe.address() as AddressInfo).port
  await new Promise((resolve) => probe.close(resolve))
  return port
}

/** What the page's own script gets from the API (same origin, with whatever cookies the browser sends). */
async function pageFetch (page: Page, path: string): Promise<number> {
  return await page.evaluate(async (p) => (await fetch(p)).status, path)
}

const SIGNED_IN_AS = (page: Page) => page.locator('header').getByText('Signed in as')

t.test('single sign-on through the OIDC provider in Chromium', async (t) => {
  const port = await freePort()
  const base = `http://${APP_HOST}:${port}`
  const provider = await startTestProvider(`${base}/auth/oidc/callback`, ACCOUNTS)
  t.teardown(provider.close)
  const s = await buildTestServer(t, {
    dashboardDir: await buildDashboard(),
    env: {
      PUBLIC_URL: base,
      OIDC_ISSUER: provider.issuer,
      OIDC_CLIENT_ID: provider.clientId,
      OIDC_CLIENT_SECRET: provider.clientSecret,
      OIDC_ROLES: ROLES,
      OIDC_SCOPES: 'openid email groups'
    }
  })
  await s.app.listen({ port, host: '127.0.0.1' })
  t.equal((await s.putChannel('stable', { description: 'What customers run' })).statusCode, 201)
  for (const v of ['1.0.0', '1.1.0']) t.equal((await s.publish(v)).statusCode, 201)
  t.equal((await s.promote('stable', '1.0.0')).statusCode, 201)

  const browser = await openBrowser({ args: [`--host-resolver-rules=MAP ${APP_HOST} 127.0.0.1`] })
  t.teardown(browser.close)
  const { page, context } = browser
  t.not(new URL(provider.issuer).hostname, APP_HOST, 'the provider is on another site than the app')

  const signInWithSso = async (account: string): Promise<void> => {
    provider.signInAs(account)
    await page.goto(`${base}/ui/`)
    await page.getByRole('heading', { name: 'Sign in to chartcast' }).waitFor()
    await page.getByRole('link', { name: 'Sign in with single sign-on' }).click()
    await page.getByRole('heading', { level: 1, name: 'Channels' }).waitFor()
  }

  t.test('an admin-mapped account signs in through the provider and lands on /ui/ with actions', async (t) => {
    // The navigation requests the browser made, redirects included.
    const urls: string[] = []
    const onRequest = (request: Request): void => { if (request.isNavigationRequest() && request.frame() === page.mainFrame()) urls.push(request.url()) }
    page.on('request', onRequest)
    await signInWithSso('ada')
    page.off('request', onRequest)
    t.ok(urls.some((url) => url.startsWith(`${provider.issuer}/auth`)), `the browser went to the provider's authorization endpoint (${urls.join(' -> ')})`)
    const callback = urls.findIndex((url) => url.startsWith(`${base}/auth/oidc/callback?`))
    t.ok(callback > 0, 'and came back to the callback')
    t.equal(new URL(page.url()).href, `${base}/ui/`, 'back on /ui/ of the app')
    t.match(await SIGNED_IN_AS(page).innerText(), /Signed in as ada@example\.com \(admin\)/)
    t.equal(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit log', exact: true }).count(), 1, 'an admin has the audit log')
    await page.getByRole('link', { name: 'stable', exact: true }).click()
    await page.getByRole('heading', { level: 2, name: 'Releases in stable' }).waitFor()
    await page.getByRole('heading', { name: 'Promote' }).waitFor()
    t.equal(await page.getByRole('button', { name: 'Freeze channel' }).count(), 1, 'a Freeze channel button')
    t.equal(await page.getByRole('button', { name: 'Withdraw 1.0.0' }).count(), 1, 'a Withdraw button')
  })

  t.test('the browser holds the session only as an HttpOnly, SameSite=Strict cookie', async (t) => {
    const documentCookie = await page.evaluate('document.cookie') as string
    t.notMatch(documentCookie, /chartcast_session/, 'page script cannot read the session cookie')
    const cookies = await context.cookies(base)
    const session = cookies.find((c) => c.name === 'chartcast_session')
    t.ok(session, 'the browser has the session cookie')
    t.equal(session?.httpOnly, true, 'HttpOnly')
    t.equal(session?.sameSite, 'Strict', 'SameSite=Strict')
    t.equal(session?.domain, APP_HOST, 'for the app host only')
    t.equal(cookies.find((c) => c.name === 'chartcast_oidc'), undefined, 'the login transaction cookie is gone')
    t.equal(await pageFetch(page, '/auth/session'), 200, 'the page\'s requests carry it')
  })

  t.test('/ui/ opened from a page on the provider\'s site loads without the Strict cookie and still shows the person signed in', async (t) => {
    // A page at the provider's origin (answered by the test, not the provider) linking back to the app.
    const elsewhere = `${provider.issuer}/a-page-on-the-provider-site`
    await page.route(elsewhere, async (route) => { await route.fulfill({ contentType: 'text/html', body: `<!doctype html><title>provider</title><a href="${base}/ui/">Back to chartcast</a>` }) })
    await page.goto(elsewhere)
    const documentLoad = page.waitForRequest((r) => r.isNavigationRequest() && r.url() === `${base}/ui/`)
    await page.getByRole('link', { name: 'Back to chartcast' }).click()
    const cookie = (await (await documentLoad).allHeaders()).cookie
    t.notOk(cookie?.includes('chartcast_session='), 'the cross-site navigation did not carry the SameSite=Strict cookie')
    await page.getByRole('heading', { level: 1, name: 'Channels' }).waitFor()
    t.match(await SIGNED_IN_AS(page).innerText(), /Signed in as ada@example\.com \(admin\)/)
    await page.unroute(elsewhere)
  })

  t.test('sign out: the cookie is gone and the API answers 401 to the page', async (t) => {
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByRole('heading', { name: 'Sign in to chartcast' }).waitFor()
    t.equal((await context.cookies(base)).find((c) => c.name === 'chartcast_session'), undefined, 'no session cookie left')
    t.equal(await pageFetch(page, '/auth/session'), 401)
    t.equal(await pageFetch(page, '/channels'), 401)
    await page.reload()
    await page.getByRole('heading', { name: 'Sign in to chartcast' }).waitFor()
    t.pass('a reload shows the sign-in page')
  })

  t.test('a reader-mapped account signs in and sees no action buttons', async (t) => {
    // Forget the provider's own session for ada, so its next login interaction signs in rex.
    await context.clearCookies({ domain: new URL(provider.issuer).hostname })
    await signInWithSso('rex')
    t.match(await SIGNED_IN_AS(page).innerText(), /Signed in as rex@example\.com \(reader\)/)
    t.equal(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit log', exact: true }).count(), 0, 'no audit log for a reader')
    await page.getByRole('link', { name: 'stable', exact: true }).click()
    await page.getByRole('heading', { level: 2, name: 'Releases in stable' }).waitFor()
    for (const name of ['Promote', 'Withdraw 1.0.0', 'Freeze channel']) t.equal(await page.getByRole('button', { name }).count(), 0, `no ${name} button`)
    t.equal(await page.getByRole('heading', { name: 'Promote' }).count(), 0, 'no promote form')
  })
})
