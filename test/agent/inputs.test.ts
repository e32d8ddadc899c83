import t from 'tap'
import { licenseFromValues, parseCustomResource, readLocalInputs } from '../../src/agent/inputs.js'
import { workdir } from '../helpers/agent-harness.js'

t.test('a plain values document is the CR values layer', async (t) => {
  t.same(parseCustomResource({ replicas: 3 }, 'cr'), { values: { replicas: 3 } })
})

t.test('a WeightsAndBiases resource gives values and an optional chart', async (t) => {
  const cr = parseCustomResource({
    apiVersion: 'apps.wandb.com/v1',
    kind: 'WeightsAndBiases',
    metadata: { name: 'acme' },
    spec: { chart: { url: 'https://charts.example.com', name: 'acme-app', version: '1.0.0' }, values: { a: 1 } }
  }, 'cr')
  t.same(cr, { values: { a: 1 }, chart: { url: 'https://charts.example.com', name: 'acme-app', version: '1.0.0' } })
  t.same(parseCustomResource({ apiVersion: 'apps.wandb.com/v1', kind: 'WeightsAndBiases', spec: {} }, 'cr'), { values: {} })
})

t.test('other resources and malformed charts are refused', async (t) => {
  t.throws(() => parseCustomResource({ apiVersion: 'v1', kind: 'ConfigMap', data: {} }, 'cr'), { message: /expected kind WeightsAndBiases/ })
  t.throws(() => parseCustomResource({ apiVersion: 'apps.wandb.com/v1', kind: 'WeightsAndBiases', spec: { values: [1] } }, 'cr'), { message: /spec.values must be a mapping/ })
  const bad = (chart: unknown) => () => parseCustomResource({ apiVersion: 'apps.wandb.com/v1', kind: 'WeightsAndBiases', spec: { chart } }, 'cr')
  t.throws(bad({ url: 'https://charts.example.com', version: '1.0.0' }), { message: /chart.name is required for an https/ })
  t.throws(bad({ url: 'https://charts.example.com', name: '--post-renderer=/bin/x', version: '1.0.0' }), { message: /chart.name must be a chart name/ })
  t.throws(bad({ url: 'https://charts.example.com', name: 'acme', version: '--devel' }), { message: /chart.version/ })
  t.throws(bad({ url: 'file:///etc', name: 'acme', version: '1' }), { message: /must start with http:\/\/, https:\/\/ or oci:\/\// })
  t.throws(bad({ url: 'oci://r.example.com/acme' }), { message: /chart.version/ })
})

t.test('license: from the file, else from the CR values, else an error', async (t) => {
  const wd = await workdir()
  const cr = await wd.write('cr.yaml', 'apiVersion: apps.wandb.com/v1\nkind: WeightsAndBiases\nspec:\n  values:\n    global: { license: from-cr }\n')
  t.equal((await readLocalInputs({ licenseFile: wd.licenseFile, cr, needLicense: true })).license, 'good-license', 'file wins and is trimmed')
  t.equal((await readLocalInputs({ cr, needLicense: true })).license, 'from-cr')
  const plain = await wd.write('plain.yaml', 'global: { license: plain-cr }\n')
  t.equal((await readLocalInputs({ cr: plain, needLicense: true })).license, 'plain-cr')
  const none = await wd.write('none.yaml', 'global: {}\n')
  await t.rejects(readLocalInputs({ cr: none, needLicense: true }), { name: 'ConfigError', message: /no license/ })
  t.equal((await readLocalInputs({ cr: none, needLicense: false })).license, undefined, 'air-gapped needs none')
  const empty = await wd.write('empty.jwt', '\n')
  await t.rejects(readLocalInputs({ licenseFile: empty, needLicense: true }), { message: /is empty/ })
  const twoLines = await wd.write('two.jwt', 'abc\ndef\n')
  await t.rejects(readLocalInputs({ licenseFile: twoLines, needLicense: true }), { message: /single line/ })
  await t.rejects(readLocalInputs({ licenseFile: '/nonexistent/license', needLicense: true }), { message: /cannot read license file .*ENOENT/ })
  t.equal(licenseFromValues({ global: { license: 42 } }), undefined)
})
