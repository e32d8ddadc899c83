import { fileURLToPath } from 'node:url'
import t from 'tap'
import { computeDesired } from '../../src/agent/desired.js'
import { readLocalInputs } from '../../src/agent/inputs.js'
import type { ChannelSpec } from '../../src/agent/spec.js'
import { workdir } from '../helpers/agent-harness.js'

// Every WeightsAndBiases example of the W&B operator guide, retyped into test/fixtures/agent
// with placeholder secrets, is accepted by --cr as written, takes its license from
// spec.values.global.license when no --license-file is given, and layers as the guide says:
// release channel values < user input values < custom resource values.

/** The layered values, read loosely: these tests check the layering, not the types. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = Record<string, any>

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/agent/${name}`, import.meta.url))

const channel: ChannelSpec = {
  channel: 'stable',
  version: '0.18.0',
  chart: { url: 'https://charts.wandb.ai', name: 'operator-wandb', version: '0.17.9' },
  values: {
    global: { host: 'https://channel-default.example', bucket: { provider: 's3', name: '' }, mysql: { port: 3306 } },
    mysql: { install: true },
    app: { image: { repository: 'wandb/local', tag: '0.59.0' } },
    ingress: { class: 'default-class' },
    channelOnly: true
  }
}

t.test('operator.yaml example: accepted, license from the CR, its chart replaces the channel chart, CR values win', async (t) => {
  const wd = await workdir()
  const user = await wd.write('user.yaml', 'global:\n  host: https://user.example\nconsole:\n  replicas: 2\n')
  const inputs = await readLocalInputs({ cr: fixture('wandb-cr-operator.yaml'), userValues: user, needLicense: true })
  t.equal(inputs.license, 'placeholder-license-operator-example')
  t.same(inputs.crChart, { url: 'http://charts.yourdomain.com', name: 'operator-wandb', version: '0.18.0' })
  const desired = computeDesired(channel, inputs)
  t.same(desired.chart, inputs.crChart, 'a chart in the CR replaces the channel chart whole')
  t.equal(desired.version, '0.18.0', 'the release version stays the channel\'s')
  const v = desired.values as Loose
  t.equal(v.global.host, 'https://wandb.yourdomain.com', 'CR over user input over channel')
  t.equal(v.global.bucket.name, 's3.yourdomain.com:port', 'the comment after the value is a comment')
  t.equal(v.global.mysql.port, 3306)
  t.equal(v.global.extraEnv.ENABLE_REGISTRY_UI, 'true', 'a quoted string stays a string')
  t.equal(v.mysql.install, false)
  t.equal(v.app.image.tag, '0.59.2')
  t.equal(v.app.image.repository, 'registry.yourdomain.com/local')
  t.same(v.console, { image: { repository: 'registry.yourdomain.com/console', tag: '2.12.2' }, replicas: 2 }, 'user input kept where the CR is silent')
  t.same(v.ingress, { annotations: { 'nginx.ingress.kubernetes.io/proxy-body-size': '64m' }, class: 'nginx' })
  t.equal(v.channelOnly, true, 'channel defaults kept where no layer above speaks')
})

t.test('configuration-reference skeleton: accepted as written, placeholders replace what they stand over', async (t) => {
  const inputs = await readLocalInputs({ cr: fixture('wandb-cr-minimal.yaml'), needLicense: true })
  t.equal(inputs.license, 'placeholder-license-minimal-example')
  t.equal(inputs.crChart, undefined)
  const desired = computeDesired(channel, inputs)
  t.same(desired.chart, channel.chart, 'no chart in the CR: the channel chart')
  const v = desired.values as Loose
  t.equal(v.global.host, 'https://<HOST_URI>')
  t.equal(v.global.bucket, '<details depend on the provider>', 'a scalar replaces a map, as with helm -f')
  t.equal(v.global.mysql, '<redacted>')
  t.same(v.ingress, { class: 'default-class', annotations: '<redacted>' })
})

t.test('full GCP example: accepted, license from the CR, layered over the channel', async (t) => {
  const inputs = await readLocalInputs({ cr: fixture('wandb-cr-gcp.yaml'), needLicense: true })
  t.equal(inputs.license, 'placeholder-license-gcp-example')
  const v = computeDesired(channel, inputs).values as Loose
  t.same(v.global.bucket, { provider: 'gcs', name: 'abc-wandb-moving-pipefish' })
  t.equal(v.global.mysql.host, '10.218.0.2')
  t.equal(v.global.mysql.port, 3306)
  t.equal(v.ingress.annotations['kubernetes.io/ingress.class'], 'gce')
  t.equal(v.ingress.class, 'default-class')
  t.equal(v.mysql.install, true, 'the GCP example says nothing about it: channel value')
})

t.test('--license-file wins over the CR\'s license', async (t) => {
  const wd = await workdir()
  const inputs = await readLocalInputs({ cr: fixture('wandb-cr-gcp.yaml'), licenseFile: wd.licenseFile, needLicense: true })
  t.equal(inputs.license, 'good-license')
})
