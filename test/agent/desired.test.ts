import t from 'tap'
import { computeDesired, desiredDigest } from '../../src/agent/desired.js'
import { chartReference } from '../../src/agent/spec.js'

const spec = { channel: 'stable', version: '1.0.0', chart: { url: 'https://charts.example.com', name: 'acme-app', version: '0.1.0' }, values: { a: 1, m: { x: 1, y: 2 }, list: [1, 2] } }

t.test('layers channel < user < CR with Helm semantics', async (t) => {
  const d = computeDesired(spec, { userValues: { a: 2, m: { y: 3 }, list: [9] }, crValues: { a: 3, m: { x: null } } })
  t.same(d.values, { a: 3, m: { y: 3 }, list: [9] })
  t.same(d.chart, spec.chart)
})

t.test('digest depends on chart and merged values only, not key order', async (t) => {
  const a = desiredDigest({ url: 'u://x', name: 'n', version: '1' }, { a: 1, b: { c: 2, d: 3 } })
  const b = desiredDigest({ version: '1', name: 'n', url: 'u://x' }, { b: { d: 3, c: 2 }, a: 1 })
  t.equal(a, b)
  t.match(a, /^[0-9a-f]{64}$/)
  t.not(a, desiredDigest({ url: 'u://x', name: 'n', version: '2' }, { a: 1, b: { c: 2, d: 3 } }), 'chart version changes it')
  t.not(a, desiredDigest({ url: 'u://x', name: 'n', version: '1' }, { a: 1, b: { c: 2, d: 4 } }), 'a value changes it')
})

t.test('chart references', async (t) => {
  t.equal(chartReference({ url: 'https://charts.example.com', name: 'acme-app', version: '1' }), 'acme-app')
  t.equal(chartReference({ url: 'oci://r.example.com/charts/acme-app', version: '1' }), 'oci://r.example.com/charts/acme-app')
  t.equal(chartReference({ url: 'oci://r.example.com/charts', name: 'acme-app', version: '1' }), 'oci://r.example.com/charts/acme-app')
})
