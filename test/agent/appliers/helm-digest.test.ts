import { mkdtemp, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { HelmApplier } from '../../../src/agent/appliers/helm.js'
import { ChartDigestMismatchError, sha256Digest } from '../../../src/agent/chart-fetch.js'
import { computeDesired } from '../../../src/agent/desired.js'
import type { ChartRef } from '../../../src/schemas.js'
import { FakeSpecServer, makeSpec } from '../../helpers/agent-fake-server.js'
import { makeReconciler, workdir } from '../../helpers/agent-harness.js'
import { captureLogs } from '../../helpers/agent-log.js'
import { StandinHelm, standinOciManifestDigest } from '../../helpers/agent-standin-helm.js'
import { makeChartArchive } from '../../helpers/chart-archive.js'

// No Helm binary, chart repository or cluster exists on our machines: the stand-in helm
// (test/helpers/agent-standin-helm.ts) serves real .tgz chart archives to `helm pull`, so the
// digest the applier checks is the sha256 of real bytes, and records what `upgrade` was given.

const target = { release: 'acme', namespace: 'acme-ns' }
const REPO = 'https://charts.example.com'
const OCI = 'oci://registry.example.com/charts/acme-app'

async function setup (t: Test) {
  const helm = await StandinHelm.create()
  const tmp = await mkdtemp(join(tmpdir(), 'chartcast-helm-digest-'))
  const applier = new HelmApplier({ helmBin: helm.bin, timeoutMs: 600_000, tmpDir: tmp })
  const good = await makeChartArchive('acme-app', '0.18.0', 'published')
  const tampered = await makeChartArchive('acme-app', '0.18.0', 'tampered')
  t.not(sha256Digest(good), sha256Digest(tampered), 'the two archives differ')
  return { helm, tmp, applier, good, tampered }
}

const desiredFor = (chart: ChartRef) => computeDesired({ channel: 'stable', version: '1.4.0', chart, values: { replicas: 2 } }, { userValues: {}, crValues: {} })
const failure = async (promise: Promise<unknown>): Promise<unknown> => await promise.then(() => null, (e: unknown) => e)

t.test('http(s) chart with a digest: pulled into a private directory, checked, installed from the verified file', async (t) => {
  const { helm, tmp, applier, good } = await setup(t)
  await helm.serveChart({ repo: REPO, name: 'acme-app', version: '0.18.0', archive: good })
  await applier.apply(desiredFor({ url: REPO, name: 'acme-app', version: '0.18.0', digest: sha256Digest(good) }), target)
  const [pull, upgrade, ...rest] = await helm.changingCalls()
  t.equal(rest.length, 0)
  t.same(pull?.argv.slice(0, 6), ['pull', 'acme-app', '--repo', REPO, '--version', '0.18.0'])
  t.equal(pull?.destinationMode, 0o700, 'the pull lands in a private directory')
  t.ok(pull?.argv[pull.argv.indexOf('--destination') + 1]?.startsWith(tmp))
  t.equal(upgrade?.argv[0], 'upgrade')
  t.equal(upgrade?.chartFileDigest, sha256Digest(good), 'helm installed the very file that was checked')
  t.notOk(upgrade?.argv.includes('--repo'), 'nothing for helm to resolve again')
  t.notOk(upgrade?.argv.includes('--version'))
  t.same(await readdir(tmp), [], 'archive and values removed afterwards')
})

t.test('http(s) chart whose archive does not match the digest: nothing installed, a mismatch error naming both digests', async (t) => {
  const { helm, tmp, applier, good, tampered } = await setup(t)
  await helm.serveChart({ repo: REPO, name: 'acme-app', version: '0.18.0', archive: tampered })
  const err = await failure(applier.apply(desiredFor({ url: REPO, name: 'acme-app', version: '0.18.0', digest: sha256Digest(good) }), target))
  t.type(err, ChartDigestMismatchError)
  t.match((err as Error).message, `pins ${sha256Digest(good)}`)
  t.match((err as Error).message, `is ${sha256Digest(tampered)}`)
  t.same((await helm.changingCalls()).map((c) => c.argv[0]), ['pull'], 'helm upgrade never ran')
  t.same(await readdir(tmp), [], 'the pulled archive is removed too')
})

t.test('a chart without a digest is installed as before: no pull, helm resolves it', async (t) => {
  const { helm, applier } = await setup(t)
  await applier.apply(desiredFor({ url: REPO, name: 'acme-app', version: '0.18.0' }), target)
  const calls = await helm.changingCalls()
  t.same(calls.map((c) => c.argv.slice(0, 4)), [['upgrade', '--install', 'acme', 'acme-app']])
})

t.test('oci chart pinned by its archive digest: one pull by version, installed from the file', async (t) => {
  const { helm, applier, good } = await setup(t)
  await helm.serveChart({ repo: OCI, name: 'acme-app', version: '0.18.0', archive: good })
  await applier.apply(desiredFor({ url: OCI, version: '0.18.0', digest: sha256Digest(good) }), target)
  const [pull, upgrade] = await helm.changingCalls()
  t.same(pull?.argv.slice(0, 4), ['pull', OCI, '--version', '0.18.0'])
  t.equal(upgrade?.chartFileDigest, sha256Digest(good))
})

t.test('oci chart pinned by its manifest digest: pulled by that digest, installed from the file', async (t) => {
  const { helm, applier, good } = await setup(t)
  await helm.serveChart({ repo: OCI, name: 'acme-app', version: '0.18.0', archive: good })
  const manifest = standinOciManifestDigest(good)
  await applier.apply(desiredFor({ url: OCI, version: '0.18.0', digest: manifest }), target)
  const [byVersion, byDigest, upgrade] = await helm.changingCalls()
  t.equal(byVersion?.argv[1], OCI)
  t.equal(byDigest?.argv[1], `${OCI}@${manifest}`, 'the second pull names the manifest digest')
  t.equal(upgrade?.chartFileDigest, sha256Digest(good))
})

t.test('oci chart whose digest is neither the archive\'s nor a manifest the registry has: nothing installed', async (t) => {
  const { helm, applier, good, tampered } = await setup(t)
  await helm.serveChart({ repo: OCI, name: 'acme-app', version: '0.18.0', archive: tampered })
  const err = await failure(applier.apply(desiredFor({ url: OCI, version: '0.18.0', digest: sha256Digest(good) }), target))
  t.type(err, ChartDigestMismatchError)
  t.match((err as Error).message, /neither the sha256 of the chart archive/)
  t.same((await helm.changingCalls()).map((c) => c.argv[0]), ['pull', 'pull'])
})

t.test('a chart archive carried with the spec (bundle) is checked and installed without any pull', async (t) => {
  const { helm, applier, good, tampered } = await setup(t)
  const desired = { ...desiredFor({ url: REPO, name: 'acme-app', version: '0.18.0', digest: sha256Digest(good) }), chartArchive: good }
  await applier.apply(desired, target)
  const calls = await helm.changingCalls()
  t.same(calls.map((c) => c.argv[0]), ['upgrade'])
  t.equal(calls[0]?.chartFileDigest, sha256Digest(good))

  const err = await failure(applier.apply({ ...desired, chartArchive: tampered }, target))
  t.type(err, ChartDigestMismatchError)
  t.match((err as Error).message, /from the bundle/)
  t.equal((await helm.changingCalls()).length, 1, 'a tampered bundled chart changes nothing in helm')
})

t.test('through the reconciler: a mismatch applies nothing, records nothing as applied and reports failed with the reason', async (t) => {
  const { helm, good, tampered } = await setup(t)
  await helm.serveChart({ repo: REPO, name: 'acme-app', version: '0.18.0', archive: tampered })
  const server = await FakeSpecServer.start()
  t.teardown(() => server.stop().catch(() => {}))
  const wd = await workdir()
  const logs = captureLogs()
  server.publish(makeSpec('1.4.0', { chart: { url: REPO, name: 'acme-app', version: '0.18.0', digest: sha256Digest(good) } }))
  const r = makeReconciler({
    server: server.url,
    stateDir: wd.stateDir,
    inputs: { licenseFile: wd.licenseFile, needLicense: true },
    applier: new HelmApplier({ helmBin: helm.bin, timeoutMs: 60_000 }),
    logger: logs.logger,
    report: true
  })
  t.equal((await r.reconcile(new AbortController().signal)).outcome, 'apply-failed')
  t.same((await helm.changingCalls()).map((c) => c.argv[0]), ['pull'])
  await t.rejects(readdir(join(wd.stateDir, 'applied.json')), { code: 'ENOENT' }, 'nothing recorded as applied')
  const report = server.reports[0] as { outcome: string, detail: string }
  t.equal(report.outcome, 'failed')
  t.match(report.detail, /chart digest mismatch: the release pins sha256:[0-9a-f]{64}, but the archive of acme-app 0.18.0 from https:\/\/charts.example.com is sha256:/)

  // The repository is repaired: the next cycle installs the verified chart.
  await helm.serveChart({ repo: REPO, name: 'acme-app', version: '0.18.0', archive: good })
  t.equal((await r.reconcile(new AbortController().signal)).outcome, 'applied')
  t.equal((await helm.changingCalls()).at(-1)?.chartFileDigest, sha256Digest(good))
})
