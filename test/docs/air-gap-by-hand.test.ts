/**
 * docs/air-gap.md's "Checking a bundle by hand" runs as written: the node:crypto script, taken
 * from the document, against a real bundle unpacked with tar, and against a tampered one.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { sha256Digest } from '../../src/agent/chart-fetch.js'
import { makeBundle, makeTestKeys, tamperBundle } from '../helpers/bundles.js'
import { makeChartArchive } from '../helpers/chart-archive.js'

const doc = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '../../docs/air-gap.md'), 'utf8')
const script = doc.slice(doc.indexOf('## Checking a bundle by hand')).split('```js\n')[1]!.split('```')[0]!

function check (bundle: string, root: string, dir: string): Record<string, unknown> {
  const out = path.join(dir, `unpacked-${Math.random().toString(36).slice(2)}`)
  mkdirSync(out)
  execFileSync('tar', ['-xzf', bundle, '-C', out])
  const text = execFileSync(process.execPath, [path.join(dir, 'check-bundle.mjs'), out, root], { encoding: 'utf8' })
  return Object.fromEntries(['rootOk', 'sigOk', 'bodyOk', 'chartOk'].map((k) => [k, new RegExp(`${k}: (\\w+)`).exec(text)?.[1]]))
}

t.test('the documented script accepts a real bundle and catches a tampered spec and chart', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'chartcast-air-gap-doc-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  writeFileSync(path.join(dir, 'check-bundle.mjs'), script)
  const keys = await makeTestKeys()
  const archive = await makeChartArchive('acme-app', '0.18.0', 'v1')
  const bundle = await makeBundle(keys, path.join(dir, 'b.tar.gz'), { channel: 'stable', version: '1.0.0', chart: { url: 'https://charts.example.com', name: 'acme-app', version: '0.18.0', digest: sha256Digest(archive) } }, { chart: archive })
  t.same(check(bundle, keys.rootPub, dir), { rootOk: 'true', sigOk: 'true', bodyOk: 'true', chartOk: 'true' })

  const other = await makeTestKeys()
  t.equal(check(bundle, other.rootPub, dir).rootOk, 'false', 'another root')

  await tamperBundle(bundle, (f) => { f.spec = Buffer.from(f.spec.toString().replace('"acme-app"', '"evil-app"')) })
  t.match(check(bundle, keys.rootPub, dir), { sigOk: 'true', bodyOk: 'false' }, 'a tampered spec')

  const evil = await makeChartArchive('acme-app', '0.18.0', 'evil')
  const second = await makeBundle(keys, path.join(dir, 'c.tar.gz'), { channel: 'stable', version: '1.0.0', chart: { url: 'https://charts.example.com', name: 'acme-app', version: '0.18.0', digest: sha256Digest(archive) } }, { chart: archive })
  await tamperBundle(second, (f) => { f.chart = evil })
  t.match(check(second, keys.rootPub, dir), { bodyOk: 'true', chartOk: 'false' }, 'a tampered chart')
})
