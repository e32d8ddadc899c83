import t from 'tap'
import { checkChartRef, ChartRefError, isExactChartVersion } from '../../src/domain/chart-ref.js'
import { checkChart } from '../../src/domain/release.js'
import { InvalidSpecError, parseChannelSpec } from '../../src/agent/spec.js'
import { parseCustomResource } from '../../src/agent/inputs.js'
import { ConfigError } from '../../src/agent/errors.js'

const base = { url: 'https://charts.example.com', name: 'acme', version: '1.2.0' }
const DIGEST = 'sha256:' + 'ab'.repeat(32)
const RANGES = ['^1.2.0', '~1.2.0', '>=1', '>=1.0.0 <2.0.0', '1.x', '1.2.x', '*', '1.2', '1', 'v1', '1.2.0 || 1.3.0', '=1.2.0', '1.2.*']

t.test('exact chart versions are accepted: SemVer with prereleases, build metadata and the "v" Helm allows', async (t) => {
  for (const version of ['0.0.1', '1.2.0', '1.2.0-rc.1', '1.2.0+build.7', 'v1.14.4', '10.20.30-alpha.beta.1']) {
    t.ok(isExactChartVersion(version), version)
    t.equal(checkChartRef({ ...base, version }).version, version)
  }
})

t.test('a chart version that is a range is refused, naming it a range', async (t) => {
  for (const version of RANGES) {
    t.throws(() => checkChartRef({ ...base, version }), { name: 'ChartRefError', message: /is a range/ }, version)
  }
})

t.test('a chart version that is neither exact nor a range is refused', async (t) => {
  for (const version of ['latest', '01.2.0', '1.2.0-01', '--devel', '']) {
    t.throws(() => checkChartRef({ ...base, version }), ChartRefError, JSON.stringify(version))
  }
})

t.test('chart.digest: sha256 and 64 lower-case hex digits, nothing else', async (t) => {
  t.same(checkChartRef({ ...base, digest: DIGEST }), { ...base, digest: DIGEST })
  for (const digest of ['sha256:' + 'AB'.repeat(32), 'sha256:' + 'ab'.repeat(31), 'sha512:' + 'ab'.repeat(64), 'ab'.repeat(32), ' sha256:' + 'ab'.repeat(32), 7]) {
    t.throws(() => checkChartRef({ ...base, digest }), { name: 'ChartRefError', message: /chart\.digest must be "sha256:"/ }, String(digest))
  }
})

t.test('a reference is normalised: name and digest only when given, unknown keys refused', async (t) => {
  t.same(Object.keys(checkChartRef({ digest: DIGEST, version: '1.2.0', url: 'oci://r.example.com/acme' })), ['url', 'version', 'digest'])
  t.same(Object.keys(checkChartRef({ version: '1.2.0', name: 'acme', url: 'https://charts.example.com' })), ['url', 'name', 'version'])
  t.same(checkChartRef({ url: 'oci://r.example.com/acme', name: null, version: '1.2.0', digest: null }), { url: 'oci://r.example.com/acme', version: '1.2.0' })
  t.throws(() => checkChartRef({ ...base, digets: DIGEST }), { message: /unknown key "digets"/ })
})

t.test('whitespace and control characters are refused in the url (they would reach helm as arguments)', async (t) => {
  for (const url of ['https://charts.example.com/a b', ' https://charts.example.com', 'https://charts.example.com/\n--post-renderer']) {
    t.throws(() => checkChartRef({ ...base, url }), { message: /whitespace or control/ }, JSON.stringify(url))
  }
})

t.test('the server and the agent apply the same rule: a range is refused by both', async (t) => {
  const chart = { ...base, version: '^1.2.0' }
  t.throws(() => checkChart(chart), { code: 'VALIDATION_FAILED', message: /is a range/ }, 'server: 400 VALIDATION_FAILED')
  t.throws(() => parseChannelSpec({ channel: 'stable', version: '1.0.0', chart, values: {} }, 'server answer'), { name: 'InvalidSpecError', message: /server answer: chart.version "\^1.2.0" is a range/ })
  t.throws(() => parseCustomResource({ apiVersion: 'apps.wandb.com/v1', kind: 'WeightsAndBiases', spec: { chart } }, 'cr'), ConfigError)
  t.type(new InvalidSpecError('x'), Error)
})

t.test('the server and the agent accept the same references, digest included', async (t) => {
  const chart = { url: 'oci://registry.example.com/charts/acme', version: 'v1.14.4', digest: DIGEST }
  t.same(checkChart(chart), chart)
  t.same(parseChannelSpec({ channel: 'stable', version: '1.0.0', chart, values: {} }, 'answer').chart, chart)
})
