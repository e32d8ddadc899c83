/**
 * Debian's Chromium (/usr/bin/chromium; .ci/run installs it with apt) driven by playwright-core,
 * headless, with a fresh profile in a temp directory. A test never downloads a browser.
 * One browser per test file: open it once and reuse its page.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { AxeBuilder } from '@axe-core/playwright'

export const CHROMIUM = '/usr/bin/chromium'

/** `args`: extra Chromium switches (e.g. `--host-resolver-rules` to give 127.0.0.1 another site's name). */
export async function openBrowser ({ args = [] }: { args?: string[] } = {}): Promise<{ context: BrowserContext, page: Page, close: () => Promise<void> }> {
  const profile = mkdtempSync(path.join(tmpdir(), 'chartcast-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', ...args],
    viewport: { width: 1280, height: 900 },
    locale: 'en-GB',
    timezoneId: 'UTC'
  })
  const page = context.pages()[0] ?? await context.newPage()
  return {
    context,
    page,
    close: async () => {
      await context.close()
      rmSync(profile, { recursive: true, force: true })
    }
  }
}

/** axe-core's serious and critical violations on the page as it is now (rule id: the nodes it names). */
export async function seriousViolations (page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page }).analyze()
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)
}

/** Presses Tab until the element with this id has the focus (false after `max` presses). */
export async function tabTo (page: Page, id: string, max = 60): Promise<boolean> {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab')
    if (await page.evaluate('document.activeElement && document.activeElement.id') === id) return true
  }
  return false
}
