import t from 'tap'
import { checkChart, checkValues, checkVersion, normaliseRelease, releaseDigest } from '../../src/domain/release.js'

const chart = { url: 'https://charts.example.com/acme', name: 'acme-app', version: '0.1.0' }

t.test('checkVersion accepts strict semver, prereleases included', async (t) => {
  for (const good of ['0.0.1', '1.4.0', '2.0.0-rc.1', '10.20.30', '1.0.0-alpha.beta.1']) t.equal(checkVersion(good), good)
})

t.test('checkVersion refuses shorthand, prefixes, leading zeros and padding', async (t) => {
  for (const bad of ['1.0', 'v1.0.0', '01.0.0', '1.00.0', '1', ' 1.0.0', '1.0.0 ', '=1.0.0', '1.0.0-01', 'latest', '']) {
    t.throws(() => checkVersion(bad), { code: 'VALIDATION_FAILED' }, JSON.stringify(bad))
  }
})

t.test('checkVersion refuses build metadata, which precedence ignores', async (t) => {
  t.throws(() => checkVersion('1.0.0+build.5'), { code: 'VALIDATION_FAILED', message: /build metadata/ })
})

t.test('checkChart accepts http, https and oci URLs', async (t) => {
  t.same(checkChart(chart), chart)
  t.same(checkChart({ url: 'http://charts.internal/x', name: 'x', version: '1.0.0' }).url, 'http://charts.internal/x')
  t.same(checkChart({ url: 'oci://registry.example.com/charts/acme', version: '1.0.0' }).url, 'oci://registry.example.com/charts/acme')
})

t.test('checkChart refuses other schemes, naming the scheme', async (t) => {
  for (const url of ['file:///etc/passwd', 'javascript:alert(1)', 'ftp://example.com/c', 'data:text/plain,hi']) {
    t.throws(() => checkChart({ url, name: 'x', version: '1.0.0' }), { code: 'VALIDATION_FAILED', message: /must start with/ }, url)
  }
})

t.test('checkChart refuses text that is not a URL', async (t) => {
  t.throws(() => checkChart({ url: 'charts.example.com/acme', name: 'x', version: '1.0.0' }), { code: 'VALIDATION_FAILED', message: /not a URL/ })
})

t.test('checkChart refuses credentials in the URL', async (t) => {
  t.throws(() => checkChart({ url: 'https://user:secret@charts.example.com/acme', name: 'x', version: '1.0.0' }), { code: 'VALIDATION_FAILED', message: /credentials/ })
})

t.test('checkChart needs a name for http(s) repositories but not for oci', async (t) => {
  t.throws(() => checkChart({ url: 'https://charts.example.com/acme', version: '1.0.0' }), { code: 'VALIDATION_FAILED', message: /chart.name/ })
  t.doesNotThrow(() => checkChart({ url: 'oci://r.example.com/acme', version: '1.0.0' }))
})

t.test('checkValues accepts maps and refuses arrays, strings and null', async (t) => {
  t.same(checkValues({ a: 1 }, 'values'), { a: 1 })
  for (const bad of [[], 'text', null, 3]) t.throws(() => checkValues(bad, 'values'), { code: 'VALIDATION_FAILED', message: /values must be a map/ })
})

t.test('checkValues refuses forbidden keys at any depth with FORBIDDEN_KEY', async (t) => {
  t.throws(() => checkValues(JSON.parse('{"a":{"__proto__":{"x":1}}}'), 'values'), { code: 'FORBIDDEN_KEY', message: /a\.__proto__/ })
  t.throws(() => checkValues({ list: [{ constructor: 1 }] }, 'values'), { code: 'FORBIDDEN_KEY' })
})

t.test('normaliseRelease fills defaults and digests the content', async (t) => {
  const r = normaliseRelease({ version: '1.0.0', chart })
  t.same(r.values, {})
  t.equal(r.notes, null)
  t.match(r.digest, /^sha256:[0-9a-f]{64}$/)
})

t.test('the digest does not depend on key order but does on content', async (t) => {
  const a = normaliseRelease({ version: '1.0.0', chart, values: { x: 1, y: { b: 2, a: 1 } }, notes: 'n' })
  const b = normaliseRelease({ version: '1.0.0', chart: { version: chart.version, name: chart.name, url: chart.url }, values: { y: { a: 1, b: 2 }, x: 1 }, notes: 'n' })
  t.equal(a.digest, b.digest)
  t.not(normaliseRelease({ version: '1.0.0', chart, values: { x: 2 } }).digest, normaliseRelease({ version: '1.0.0', chart, values: { x: 1 } }).digest)
  t.not(normaliseRelease({ version: '1.0.0', chart, notes: 'a' }).digest, normaliseRelease({ version: '1.0.0', chart }).digest)
  t.not(releaseDigest('1.0.0', chart, {}, null), releaseDigest('1.0.1', chart, {}, null))
})

t.test('normaliseRelease drops an undefined chart name for oci charts', async (t) => {
  const r = normaliseRelease({ version: '1.0.0', chart: { url: 'oci://r.example.com/a', version: '1.0.0' } })
  t.same(Object.keys(r.chart).sort(), ['url', 'version'])
})
