import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { HelmApplier } from '../../src/agent/appliers/helm.js'
import { sha256Digest } from '../../src/agent/chart-fetch.js'
import { runAgentCli } from '../../src/cli/agent.js'
import { makeReconciler, RecordingApplier, workdir } from '../helpers/agent-harness.js'
import { captureLogs } from '../helpers/agent-log.js'
import { StandinHelm } from '../helpers/agent-standin-helm.js'
import { makeBundle, makeTestKeys, tamperBundle, type SpecBodyInput } from '../helpers/bundles.js'
import { makeChartArchive } from '../helpers/chart-archive.js'

// `chartcast agent --from-file` with a signed air-gap bundle: the real Reconciler, bundle reader
// and verifier, and the stand-in helm (test/helpers/agent-standin-helm.ts) as the applier where
// what helm was given matters. No server: nothing is fetched from anywhere.

const once = async (r: ReturnType<typeof makeReconciler>) => await r.reconcile(new AbortController().signal)

async function setup (_t: Test) {
  const wd = await workdir()
  const keys = await makeTestKeys()
  const archive = await makeChartArchive('acme-app', '0.18.0', 'v1')
  const spec = (version: string, digest = sha256Digest(archive)): SpecBodyInput => ({ channel: 'stable', version, chart: { url: 'https://charts.example.com', name: 'acme-app', version: '0.18.0', digest }, values: { replicas: 2 } })
  const helm = await StandinHelm.create()
  const logs = captureLogs()
  const agent = (fromFile: string, extra: Partial<Parameters<typeof makeReconciler>[0]> = {}) => makeReconciler({
    fromFile,
    trustRoot: keys.rootPub,
    stateDir: wd.stateDir,
    inputs: { needLicense: false },
    applier: new HelmApplier({ helmBin: helm.bin, timeoutMs: 60_000 }),
    logger: logs.logger,
    ...extra
  })
  return { wd, keys, archive, spec, helm, logs, agent }
}

t.test('a verified bundle with its chart: installed from the bundle, no pull, nothing fetched', async (t) => {
  const { wd, keys, archive, spec, helm, agent } = await setup(t)
  const bundle = await makeBundle(keys, join(wd.dir, 'b.tar.gz'), spec('1.4.0'), { chart: archive })
  t.equal((await once(agent(bundle))).outcome, 'applied')
  const calls = await helm.changingCalls()
  t.same(calls.map((c) => c.argv[0]), ['upgrade'], 'no helm pull: the chart came with the bundle')
  t.equal(calls[0]?.chartFileDigest, sha256Digest(archive), 'helm installed the bundled archive')
  t.equal((await once(agent(bundle))).outcome, 'unchanged')
})

t.test('a verified bundle without a chart: the chart is pulled and checked as online', async (t) => {
  const { wd, keys, archive, spec, helm, agent } = await setup(t)
  await helm.serveChart({ repo: 'https://charts.example.com', name: 'acme-app', version: '0.18.0', archive })
  const bundle = await makeBundle(keys, join(wd.dir, 'b.tar.gz'), spec('1.4.0'))
  t.equal((await once(agent(bundle))).outcome, 'applied')
  t.same((await helm.changingCalls()).map((c) => c.argv[0]), ['pull', 'upgrade'])
})

t.test('each tampering is refused before helm runs, and the log names the check', async (t) => {
  const { wd, keys, archive, spec, helm, agent, logs } = await setup(t)
  const cases: Array<[string, (path: string) => Promise<void>, string]> = [
    ['spec', async (p) => { await tamperBundle(p, (f) => { f.spec = Buffer.from(f.spec.toString().replace('"replicas":2', '"replicas":20')) }) }, 'body-hash'],
    ['chart', async (p) => { const evil = await makeChartArchive('acme-app', '0.18.0', 'evil'); await tamperBundle(p, (f) => { f.chart = evil }) }, 'chart-digest'],
    ['keys', async (p) => { const other = await makeTestKeys(); await tamperBundle(p, (f) => { f.keys = Buffer.from(JSON.stringify({ keysets: other.chain })) }) }, 'keyset-not-signed-by-root'],
    ['container', async (p) => { await writeFile(p, Buffer.concat([(await readFile(p)).subarray(0, 40)])) }, 'bundle-malformed']
  ]
  for (const [what, tamper, check] of cases) {
    const path = await makeBundle(keys, join(wd.dir, `${what}.tar.gz`), spec('1.4.0'), { chart: archive })
    await tamper(path)
    const report = await once(agent(path))
    t.equal(report.outcome, 'unverified', what)
    t.equal(report.code, check, what)
    t.equal(logs.find('verification-failed').at(-1)?.check, check, `the log names ${check}`)
  }
  t.same(await helm.changingCalls(), [], 'helm changed nothing (it only read the release history)')
})

t.test('an expired bundle, one for another channel, and a replayed older revision are refused', async (t) => {
  const { wd, keys, spec, helm, agent, logs } = await setup(t)
  const expired = await makeBundle(keys, join(wd.dir, 'expired.tar.gz'), spec('1.4.0'), { nowMs: Date.now() - 2 * 86_400_000, ttlMs: 86_400_000 })
  t.match(await once(agent(expired)), { outcome: 'unverified', code: 'signature-expired' })

  const current = await makeBundle(keys, join(wd.dir, 'current.tar.gz'), spec('1.4.0'))
  t.match(await once(agent(current, { channel: 'beta' })), { outcome: 'unverified', code: 'channel' })
  t.match(logs.find('verification-failed').at(-1)?.detail, /signed for channel "stable", asked for "beta"/)

  // One agent process reads revision 7, then someone puts back an older bundle (revision 5).
  await helm.serveChart({ repo: 'https://charts.example.com', name: 'acme-app', version: '0.18.0', archive: await makeChartArchive('acme-app', '0.18.0', 'v1') })
  const path = join(wd.dir, 'site.tar.gz')
  await makeBundle(keys, path, spec('1.5.0'), { revision: 7 })
  const r = agent(path)
  t.equal((await once(r)).outcome, 'applied')
  await makeBundle(keys, path, spec('1.5.0'), { revision: 5 })
  t.match(await once(r), { outcome: 'unverified', code: 'revision-rollback' })
  t.equal((await helm.changingCalls()).filter((c) => c.argv[0] === 'upgrade').length, 1)
})

t.test('a bundle needs --trust-root; with --trust-root a plain spec file is refused; without, it works as before', async (t) => {
  const { wd, keys, spec, agent, logs } = await setup(t)
  const bundle = await makeBundle(keys, join(wd.dir, 'b.tar.gz'), spec('1.4.0'))
  const recording = new RecordingApplier()
  t.equal((await once(agent(bundle, { trustRoot: undefined, applier: recording }))).outcome, 'config-error')
  t.match(logs.find('config-error').at(-1)?.reason, /is a bundle: give --trust-root/)

  const plain = join(wd.dir, 'spec.json')
  await writeFile(plain, JSON.stringify({ channel: 'stable', version: '1.4.0', chart: { url: 'https://charts.example.com', name: 'acme-app', version: '0.18.0' }, values: {} }))
  t.match(await once(agent(plain, { applier: recording })), { outcome: 'unverified', code: 'signature-missing' })
  t.match(logs.find('verification-failed').at(-1)?.detail, /plain spec, which carries no signature/)
  t.same(recording.versions, [])

  t.equal((await once(agent(plain, { trustRoot: undefined, applier: recording }))).outcome, 'applied')
  t.same(recording.versions, ['1.4.0'])
})

t.test('a plain spec file with a chart version range is refused by the agent (the server\'s rule)', async (t) => {
  const { wd, agent, logs } = await setup(t)
  const plain = join(wd.dir, 'spec.yaml')
  await writeFile(plain, 'channel: stable\nversion: 1.4.0\nchart:\n  url: https://charts.example.com\n  name: acme-app\n  version: ^0.18.0\n')
  const recording = new RecordingApplier()
  t.equal((await once(agent(plain, { trustRoot: undefined, applier: recording }))).outcome, 'config-error')
  t.match(logs.find('config-error').at(-1)?.reason, /chart.version "\^0.18.0" is a range/)
  t.same(recording.versions, [])
})

t.test('chartcast agent --once --from-file BUNDLE --trust-root ROOT: exit 0, exit 6 for a tampered one, and a replay refused after a restart', async (t) => {
  const { wd, keys, archive, spec, helm } = await setup(t)
  const bundle = await makeBundle(keys, join(wd.dir, 'b.tar.gz'), spec('1.4.0'), { chart: archive })
  const logs = captureLogs()
  const runtime = { logger: logs.logger, env: { HELM_BIN: helm.bin }, writeErr: () => {}, writeOut: () => {} }
  const args = ['--from-file', bundle, '--trust-root', keys.rootPub, '--release', 'acme', '--namespace', 'acme-ns', '--state-dir', join(wd.dir, 'cli-state'), '--once']
  t.equal(await runAgentCli(args, runtime), 0)
  t.equal((await helm.changingCalls()).at(-1)?.chartFileDigest, sha256Digest(archive))
  await tamperBundle(bundle, (f) => { f.spec = Buffer.from(f.spec.toString().replace('"replicas":2', '"replicas":3')) })
  t.equal(await runAgentCli(args, runtime), 6)
  t.equal((await helm.changingCalls()).length, 1)

  // Revision 9 applied by one run; a later run (a new process: the revision is on disk) refuses revision 8.
  await makeBundle(keys, bundle, spec('1.5.0'), { chart: archive, revision: 9 })
  t.equal(await runAgentCli(args, runtime), 0)
  const calls = (await helm.changingCalls()).length
  await makeBundle(keys, bundle, { ...spec('1.5.0'), values: { replicas: 3 } }, { chart: archive, revision: 8 })
  t.equal(await runAgentCli(args, runtime), 6)
  t.equal(logs.find('verification-failed').at(-1)?.check, 'revision-rollback')
  t.equal((await helm.changingCalls()).length, calls, 'the replayed bundle changed nothing in helm')
})
