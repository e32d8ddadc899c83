import t from 'tap'
import { compileSpec, ifNoneMatchHits, specMetadata, strongEtag } from '../../src/domain/spec.js'

const channel = { name: 'stable', values: { replicas: 1, image: { repository: 'acme/app', tag: 'old' }, hosts: ['a', 'b'], debug: true }, pollInterval: '15m' }
const release = { version: '1.2.0', chart: { url: 'https://charts.example.com', name: 'acme', version: '0.4.0' }, values: { image: { tag: '1.2.0' }, hosts: ['c'], debug: null } }

t.test('the spec body carries channel, version, chart, merged values and metadata', async (t) => {
  const spec = compileSpec(channel, release)
  t.same(JSON.parse(spec.body), {
    channel: 'stable',
    version: '1.2.0',
    chart: release.chart,
    values: { replicas: 1, image: { repository: 'acme/app', tag: '1.2.0' }, hosts: ['c'] },
    metadata: { channel: 'stable', version: '1.2.0', chartVersion: '0.4.0', pollInterval: '15m' }
  })
  t.equal(spec.channel, 'stable')
  t.equal(spec.version, '1.2.0')
})

t.test('the operator body is {chart, values, metadata} only', async (t) => {
  const spec = compileSpec(channel, release)
  t.same(Object.keys(JSON.parse(spec.operatorBody)).sort(), ['chart', 'metadata', 'values'])
  t.not(spec.operatorEtag, spec.etag)
})

t.test('every metadata value is a string', async (t) => {
  for (const value of Object.values(specMetadata(channel, release))) t.type(value, 'string')
})

t.test('metadata has no pollInterval when the channel sets none, and no poll seconds', async (t) => {
  const spec = compileSpec({ ...channel, pollInterval: null }, release)
  t.notOk('pollInterval' in JSON.parse(spec.body).metadata)
  t.equal(spec.pollIntervalSeconds, null)
})

t.test('the poll interval is given in whole seconds, at least 1', async (t) => {
  t.equal(compileSpec(channel, release).pollIntervalSeconds, 900)
  t.equal(compileSpec({ ...channel, pollInterval: '1h30m' }, release).pollIntervalSeconds, 5400)
  t.equal(compileSpec({ ...channel, pollInterval: '10ms' }, release).pollIntervalSeconds, 1)
})

t.test('equal inputs give byte-identical bodies and ETags regardless of key order', async (t) => {
  const a = compileSpec(channel, release)
  const reordered = { name: 'stable', pollInterval: '15m', values: { debug: true, hosts: ['a', 'b'], image: { tag: 'old', repository: 'acme/app' }, replicas: 1 } }
  const b = compileSpec(reordered, { ...release, chart: { version: '0.4.0', name: 'acme', url: 'https://charts.example.com' } })
  t.equal(a.body, b.body)
  t.equal(a.etag, b.etag)
  t.equal(a.operatorBody, b.operatorBody)
})

t.test('any change in content changes the ETag', async (t) => {
  t.not(compileSpec(channel, release).etag, compileSpec({ ...channel, values: { replicas: 2 } }, release).etag)
  t.not(compileSpec(channel, release).etag, compileSpec(channel, { ...release, version: '1.2.1' }).etag)
})

t.test('strongEtag is a quoted digest, not weak', async (t) => {
  const tag = strongEtag('body')
  t.match(tag, /^"[A-Za-z0-9_-]{32}"$/)
  t.equal(tag, strongEtag('body'))
  t.not(tag, strongEtag('body2'))
})

t.test('If-None-Match matches the exact tag, a list, the W/ form and *', async (t) => {
  const tag = '"abc"'
  t.ok(ifNoneMatchHits('"abc"', tag))
  t.ok(ifNoneMatchHits('"x", "abc" ,"y"', tag))
  t.ok(ifNoneMatchHits('W/"abc"', tag))
  t.ok(ifNoneMatchHits('*', tag))
  t.ok(ifNoneMatchHits(' * ', tag))
})

t.test('If-None-Match misses on absence, empty and other tags', async (t) => {
  const tag = '"abc"'
  t.notOk(ifNoneMatchHits(undefined, tag))
  t.notOk(ifNoneMatchHits('', tag))
  t.notOk(ifNoneMatchHits('"abd"', tag))
  t.notOk(ifNoneMatchHits('abc', tag), 'unquoted is not the same tag')
  t.notOk(ifNoneMatchHits('"x", "y"', tag))
})
