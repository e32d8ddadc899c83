/** `license issue --wariness`: the claim that places a deployment in staged rollouts. */
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { decodeJwt } from 'jose'
import { generateLicenseKeyPair } from '../../src/license-tools.js'
import { runCli } from '../helpers/cli.js'

t.test('license issue --wariness puts a number from 0 to 1 in the license, and refuses anything else', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'chartcast-wariness-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const key = path.join(dir, 'license-private.pem')
  writeFileSync(key, (await generateLicenseKeyPair('ES256')).privatePem)
  const issue = async (value: string) => await runCli(['license', 'issue', '--key', key, '--sub', 'acme', '--channels', 'stable', '--expires', '1d', '--wariness', value])
  const early = await issue('0')
  t.equal(early.code, 0, early.stderr)
  t.equal(decodeJwt(early.stdout.trim()).wariness, 0)
  t.equal(decodeJwt((await issue('0.25')).stdout.trim()).wariness, 0.25)
  for (const bad of ['1.5', '-0.1', 'late', '']) {
    const refused = await issue(bad)
    t.not(refused.code, 0, `"${bad}" refused`)
    t.match(refused.stderr, /--wariness/)
    t.equal(refused.stdout, '', 'no license printed')
  }
})
