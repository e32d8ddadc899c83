/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core) against a real
 * server on 127.0.0.1 (PGlite): sign in with a token, publish through the API and promote with
 * a 10% rollout using the keyboard only, watch failure reports pause it live, resume, complete,
 * freeze, withdraw with a rollback; releases, fleet and audit pages; a reader sees no actions.
 * axe-core checks every page. Screenshots go to $TMPDIR/chartcast-ui-screenshots.
 */
import { mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import type { Page } from 'playwright-core'
import { openBrowser, seriousViolations, tabTo } from '../helpers/browser.js'
import { buildDashboard } from '../helpers/dashboard.js'
import { buildTestServer, type TestServer } from '../helpers/server.js'
import { issuePublisherToken } from '../../src/token-tools.js'

const SCREENSHOTS = path.join(tmpdir(), 'chartcast-ui-screenshots')

async function signIn (page: Page, base: string, token: string): Promise<void> {
  await page.goto(`${base}/ui/`)
  await page.getByLabel('Publisher token').fill(token)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('heading', { level: 1, name: 'Channels' }).waitFor()
}

/** A link of the main navigation (pages have links of the same name elsewhere, e.g. breadcrumbs). */
const nav = (page: Page, name: string) => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true })

async function signOut (page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Sign out' }).click()
  await page.getByRole('heading', { name: 'Sign in to chartcast' }).waitFor()
}

async function pullAs (s: TestServer, sub: string, applied: string): Promise<string> {
  const license = await s.license({ sub, channels: ['stable'] })
  const res = await s.app.inject({ url: '/channels/stable/spec', headers: { authorization: `Bearer ${license}`, 'chartcast-applied': applied } })
  if (res.statusCode !== 200) throw new Error(`pull answered ${res.statusCode}`)
  return license
}

t.test('the dashboard in Chromium', async (t) => {
  mkdirSync(SCREENSHOTS, { recursive: true })
  const s = await buildTestServer(t, { dashboardDir: await buildDashboard(), env: { CHECKIN_FLUSH_INTERVAL: '200ms' } })
  const base = await s.listen()
  const browser = await openBrowser()
  t.teardown(browser.close)
  const { page } = browser
  const axe = async (t: Test, name: string) => {
    t.same(await seriousViolations(page), [], `${name}: no serious or critical axe violation`)
    await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true })
  }

  t.test('sign in with a publisher token; a wrong token shows the problem title and detail', async (t) => {
    await page.goto(`${base}/ui/`)
    await page.getByRole('heading', { name: 'Sign in to chartcast' }).waitFor()
    t.equal(await page.getByRole('link', { name: 'Sign in with single sign-on' }).count(), 0, 'no single sign-on without OIDC')
    await axe(t, 'login')
    await page.getByLabel('Publisher token').fill('not-a-token')
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByRole('alert').waitFor()
    t.match(await page.getByRole('alert').innerText(), /Authentication required/)
    await page.getByLabel('Publisher token').fill(s.tokens.publisher)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByRole('heading', { level: 1, name: 'Channels' }).waitFor()
    t.match(await page.getByText('Signed in as').innerText(), /rita-release \(publisher\)/)
    t.equal(await page.getByRole('link', { name: 'Audit log' }).count(), 0, 'the audit log is for admins: no link')
  })

  t.test('the channels page is empty, then shows a channel created through the API without a reload', async (t) => {
    await page.getByText('No channels yet').waitFor()
    await page.getByRole('status', { name: 'Live updates: Live' }).waitFor()
    await axe(t, 'channels-empty')
    t.equal((await s.putChannel('stable', { description: 'What customers run' })).statusCode, 201)
    for (const v of ['1.0.0', '1.1.0']) t.equal((await s.publish(v, { values: { image: { tag: v }, replicas: v === '1.0.0' ? 2 : 3 } })).statusCode, 201)
    t.equal((await s.promote('stable', '1.0.0')).statusCode, 201)
    await page.getByRole('link', { name: 'stable', exact: true }).waitFor()
    for (let i = 1; i <= 6; i++) await pullAs(s, `cluster-${i}`, '1.0.0')
    await s.app.checkins.flush()
    await page.getByText('6 running').waitFor()
    t.pass('the fleet chart shows the six deployments, from the fleet event')
  })

  t.test('promote 1.1.0 with a 10% rollout using the keyboard only, and see the progress bar', async (t) => {
    await page.goto(`${base}/ui/channels/stable`)
    await page.getByRole('heading', { level: 1, name: 'Channel stable' }).waitFor()
    await axe(t, 'channel')
    t.ok(await tabTo(page, 'promote-version'), 'Tab reaches the release list')
    t.equal(await page.getByLabel('Release', { exact: true }).inputValue(), '1.1.0')
    t.ok(await tabTo(page, 'promote-staged', 2), 'Tab reaches the staged rollout checkbox')
    await page.keyboard.press('Space')
    t.ok(await tabTo(page, 'promote-steps', 2), 'Tab reaches the steps')
    await page.keyboard.press('ControlOrMeta+A')
    await page.keyboard.type('10% 0s, 100% 24h')
    t.ok(await tabTo(page, 'promote-submit'), 'Tab reaches Promote')
    await page.keyboard.press('Enter')
    const bar = page.getByRole('progressbar', { name: 'Rollout of 1.1.0' })
    await bar.waitFor()
    t.equal(await bar.getAttribute('aria-valuenow'), '10')
    await page.getByText('1.1.0 is rolling out in stable.').waitFor()
    await axe(t, 'channel-rollout')
    await nav(page, 'Channels').click()
    const onChannels = page.getByRole('progressbar', { name: 'Rollout of 1.1.0' })
    await onChannels.waitFor()
    t.equal(await onChannels.getAttribute('aria-valuenow'), '10')
    await axe(t, 'channels-rollout')
    await page.screenshot({ path: path.join(SCREENSHOTS, 'dashboard-channels.png') })
  })

  t.test('failure reports pause the rollout, and the open page shows it without a reload', async (t) => {
    await page.getByRole('link', { name: 'stable', exact: true }).click()
    await page.getByRole('progressbar', { name: 'Rollout of 1.1.0' }).waitFor()
    for (let i = 1; i <= 5; i++) {
      const license = await s.license({ sub: `cluster-${i}`, channels: ['stable'] })
      const res = await s.app.inject({ method: 'POST', url: '/channels/stable/reports', headers: { authorization: `Bearer ${license}` }, payload: { version: '1.1.0', outcome: 'failed', detail: 'helm: timed out waiting for the condition' } })
      t.equal(res.statusCode, 202)
    }
    await s.app.checkins.flush()
    const reason = page.getByText(/^Paused: /)
    await reason.waitFor()
    t.match(await reason.innerText(), /5 of 5 deployments failed to apply 1\.1\.0/)
    t.equal(await page.getByRole('progressbar', { name: 'Rollout of 1.1.0' }).getAttribute('aria-valuetext'), '10%, paused')
    await axe(t, 'channel-paused')
  })

  t.test('while the channel is frozen, its paused rollout offers no Resume or Complete', async (t) => {
    const freeze = await s.app.inject({ method: 'POST', url: '/channels/stable/freeze', headers: { authorization: `Bearer ${s.tokens.publisher}` }, payload: { reason: 'incident review' } })
    t.equal(freeze.statusCode, 201)
    await page.reload()
    await page.getByText('Resume and complete wait for the channel to be unfrozen.').waitFor()
    t.equal(await page.getByRole('button', { name: 'Resume 1.1.0' }).count(), 0)
    t.equal(await page.getByRole('button', { name: 'Complete 1.1.0' }).count(), 0)
    const unfreeze = await s.app.inject({ method: 'DELETE', url: '/channels/stable/freeze', headers: { authorization: `Bearer ${s.tokens.publisher}` } })
    t.equal(unfreeze.statusCode, 204)
    await page.reload()
    await page.getByRole('button', { name: 'Resume 1.1.0' }).waitFor()
  })

  t.test('resume, then complete after confirming', async (t) => {
    await page.getByRole('button', { name: 'Resume 1.1.0' }).click()
    await page.getByRole('button', { name: 'Pause 1.1.0' }).waitFor()
    await page.getByRole('button', { name: 'Complete 1.1.0' }).click()
    const dialog = page.getByRole('dialog', { name: 'Complete the rollout of 1.1.0?' })
    await dialog.waitFor()
    await axe(t, 'confirm-complete')
    await dialog.getByRole('button', { name: 'Complete 1.1.0' }).click()
    const bar = page.getByRole('progressbar', { name: 'Rollout of 1.1.0' })
    await page.getByRole('progressbar', { name: 'Rollout of 1.1.0' }).and(page.locator('[aria-valuenow="100"]')).waitFor()
    t.equal(await bar.getAttribute('aria-valuetext'), '100%, complete')
    t.equal(await page.getByRole('button', { name: 'Complete 1.1.0' }).count(), 0, 'a complete rollout has no actions')
  })

  t.test('freeze and unfreeze the channel', async (t) => {
    await page.getByRole('button', { name: 'Freeze channel' }).click()
    const dialog = page.getByRole('dialog', { name: 'Freeze stable?' })
    await dialog.getByLabel('Reason').fill('year-end change freeze')
    await dialog.getByRole('button', { name: 'Freeze' }).click()
    await page.getByText('year-end change freeze').first().waitFor()
    await page.getByText(/The channel is frozen/).waitFor()
    await page.getByRole('button', { name: 'Unfreeze channel' }).click()
    await page.getByRole('dialog', { name: 'Unfreeze stable?' }).getByRole('button', { name: 'Unfreeze' }).click()
    await page.getByRole('button', { name: 'Freeze channel' }).waitFor()
    t.pass('frozen and unfrozen from the page')
  })

  t.test('withdraw 1.1.0 with a reason and a sanctioned rollback', async (t) => {
    await page.getByRole('button', { name: 'Withdraw 1.1.0' }).click()
    const dialog = page.getByRole('dialog', { name: 'Withdraw 1.1.0 from stable?' })
    await dialog.getByLabel('Reason').fill('breaks the database migration')
    await dialog.getByLabel(/Roll back deployments/).check()
    await axe(t, 'confirm-withdraw')
    await dialog.getByRole('button', { name: 'Withdraw 1.1.0' }).click()
    await dialog.waitFor({ state: 'detached' })
    // The dialog closes before the channel is drawn again from the withdrawal's answer.
    await page.getByRole('button', { name: 'Withdraw 1.1.0' }).waitFor({ state: 'detached' })
    t.equal(await page.getByRole('button', { name: 'Withdraw 1.1.0' }).count(), 0, '1.1.0 has left the channel')
    await page.getByRole('cell', { name: 'breaks the database migration' }).waitFor()
    const detail = (await s.app.inject({ url: '/channels/stable', headers: { authorization: `Bearer ${s.tokens.reader}` } })).json()
    t.equal(detail.head, '1.0.0')
    const audit = (await s.app.inject({ url: '/audit', headers: { authorization: `Bearer ${s.tokens.admin}` } })).json()
    const withdrawal = audit.entries.find((e: { action: string }) => e.action === 'channel.withdraw')
    t.equal(withdrawal?.actor, 'rita-release', 'the audit row names the signed-in person')
  })

  t.test('releases: search by version, values as YAML, a diff of two releases', async (t) => {
    await nav(page, 'Releases').click()
    await page.getByRole('heading', { level: 2, name: '1.1.0' }).waitFor()
    await page.getByLabel('Search by version').fill('1.1')
    await page.getByRole('button', { name: 'Search' }).click()
    await page.getByRole('heading', { level: 2, name: '1.0.0' }).waitFor({ state: 'detached' })
    // The list is re-rendered: 1.0.0 can be gone before the search's answer is drawn.
    await page.getByRole('heading', { level: 2, name: '1.1.0' }).first().waitFor()
    t.equal(await page.getByRole('heading', { level: 2, name: '1.1.0' }).count(), 1)
    await page.getByText('Values of 1.1.0 (YAML)').click()
    t.match(await page.locator('pre.yaml').innerText(), /image:\n\s+tag: 1\.1\.0\nreplicas: 3/)
    await page.getByLabel('From version').fill('1.0.0')
    await page.getByLabel('To version').fill('1.1.0')
    await page.getByRole('button', { name: 'Compare' }).click()
    const diff = page.getByLabel('Changes from 1.0.0 to 1.1.0')
    await diff.waitFor()
    const text = await diff.innerText()
    t.match(text, /^-\s+tag: 1\.0\.0$/m)
    t.match(text, /^\+\s+tag: 1\.1\.0$/m)
    t.match(text, /^-\s+replicas: 2$/m)
    t.match(text, /^\s+url: https:\/\/charts\.example\.com\/acme$/m, 'unchanged lines are shown too')
    await axe(t, 'releases')
  })

  t.test('fleet: deployments filtered by status, with their latest reports', async (t) => {
    await nav(page, 'Fleet').click()
    await page.getByRole('rowheader', { name: 'cluster-6' }).waitFor()
    await page.getByLabel('Status', { exact: true }).selectOption('failed')
    await page.getByRole('button', { name: 'Filter' }).click()
    await page.getByRole('rowheader', { name: 'cluster-6' }).waitFor({ state: 'detached' })
    // The table is drawn again from the filtered answer after the old rows go.
    await page.getByRole('rowheader').first().waitFor()
    t.equal(await page.getByRole('rowheader').count(), 5, 'the five that reported a failure')
    await page.getByRole('button', { name: 'Reports of cluster-1' }).click()
    await page.getByRole('table', { name: 'Latest reports of cluster-1' }).getByText('helm: timed out waiting for the condition').waitFor()
    await axe(t, 'fleet')
  })

  t.test('the audit log, for an admin; a publisher is told it is not allowed', async (t) => {
    await page.goto(`${base}/ui/audit`)
    await page.getByRole('alert').getByText('Not allowed for this role').waitFor()
    await signOut(page)
    await signIn(page, base, s.tokens.admin)
    await nav(page, 'Audit log').click()
    await page.getByRole('cell', { name: 'channel.withdraw' }).waitFor()
    await axe(t, 'audit')
  })

  t.test('a reader sees no action buttons, with a rollout running', async (t) => {
    // A rolling rollout, so the page has a rollout that a publisher could pause or complete.
    t.equal((await s.publish('1.2.0')).statusCode, 201)
    const staged = await s.app.inject({ method: 'POST', url: '/channels/stable/releases', headers: { authorization: `Bearer ${s.tokens.publisher}` }, payload: { version: '1.2.0', rollout: { steps: [{ percent: 10, after: '0s' }, { percent: 100, after: '24h' }] } } })
    t.equal(staged.statusCode, 201)
    await signOut(page)
    await signIn(page, base, s.tokens.reader)
    await page.getByRole('progressbar', { name: 'Rollout of 1.2.0' }).waitFor()
    t.equal(await page.getByRole('main').getByRole('button').count(), 0, 'no button at all on the channels page')
    await page.getByRole('link', { name: 'stable', exact: true }).click()
    await page.getByRole('heading', { level: 2, name: 'Releases in stable' }).waitFor()
    await page.getByRole('progressbar', { name: 'Rollout of 1.2.0' }).waitFor()
    for (const name of ['Promote', 'Withdraw 1.0.0', 'Freeze channel', 'Pause 1.2.0', 'Complete 1.2.0']) t.equal(await page.getByRole('button', { name }).count(), 0, `no ${name} button`)
    t.equal(await page.getByRole('main').getByRole('button').count(), 0, 'no button at all on the channel page')
    t.equal(await page.getByRole('heading', { name: 'Promote' }).count(), 0, 'no promote form')
    await axe(t, 'channel-reader')
  })

  t.test('revoking the signed-in token brings the sign-in page up without a click', async (t) => {
    const temporary = await issuePublisherToken(s.authSecret, { sub: 'tom-temp', role: 'publisher', expiresIn: 3600 })
    await signOut(page)
    await signIn(page, base, temporary.token)
    // The releases page reloads on no live event, so no API call of its own can find the 401.
    await nav(page, 'Releases').click()
    await page.getByRole('heading', { level: 1, name: 'Releases' }).waitFor()
    await page.getByRole('status', { name: 'Live updates: Live' }).waitFor()
    const revoked = await s.app.inject({ method: 'POST', url: '/tokens/revocations', headers: { authorization: `Bearer ${s.tokens.admin}` }, payload: { jti: temporary.jti, reason: 'left the team' } })
    t.equal(revoked.statusCode, 201)
    // The server ends the stream; the browser's reconnect is refused with 401, and the page asks whether it is still signed in.
    await page.getByRole('heading', { name: 'Sign in to chartcast' }).waitFor({ timeout: 30_000 })
    t.pass('the sign-in page, with nothing clicked')
  })

  t.comment(`screenshots in ${SCREENSHOTS}`)
})
