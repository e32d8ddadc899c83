import { mkdtemp, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { HelmApplier, HelmError, observeHistory } from '../../../src/agent/appliers/helm.js'
import { computeDesired } from '../../../src/agent/desired.js'
import { StandinHelm } from '../../helpers/agent-standin-helm.js'

// No Helm binary or Kubernetes cluster exists on our machines: these tests run the applier
// against a stand-in `helm` (test/helpers/agent-standin-helm.ts) that records its argv and
// a copy of the values file, then exits 0 or 1 as told.

const target = { release: 'acme', namespace: 'acme-ns' }
const desiredFor = (chart: { url: string, name?: string, version: string }, values: Record<string, unknown> = { db: { password: 's3cret' }, replicas: 2 }) =>
  computeDesired({ channel: 'stable', version: '1.4.0', chart, values }, { userValues: {}, crValues: {} })

async function setup () {
  const helm = await StandinHelm.create()
  const tmp = await mkdtemp(join(tmpdir(), 'chartcast-helm-test-'))
  const applier = new HelmApplier({ helmBin: helm.bin, timeoutMs: 600_000, tmpDir: tmp })
  return { helm, tmp, applier }
}

t.test('http(s) chart: upgrade --install with --repo and the chart name', async (t) => {
  const { helm, tmp, applier } = await setup()
  await applier.apply(desiredFor({ url: 'https://charts.example.com', name: 'acme-app', version: '0.18.0' }), target)
  const calls = await helm.calls()
  t.equal(calls.length, 1)
  const call = calls[0]!
  const valuesPath = call.valuesPath as string
  t.same(call.argv, [
    'upgrade', '--install', 'acme', 'acme-app',
    '--repo', 'https://charts.example.com',
    '--version', '0.18.0',
    '--namespace', 'acme-ns', '--create-namespace',
    '-f', valuesPath,
    '--wait', '--atomic', '--timeout', '600s'
  ])
  t.same(parse(call.values as string), { db: { password: 's3cret' }, replicas: 2 }, 'helm got the merged values')
  t.equal(call.valuesMode, 0o600, 'values file is private while helm runs')
  t.ok(valuesPath.startsWith(tmp))
  t.same(await readdir(tmp), [], 'values file and its directory removed afterwards')
})

t.test('oci chart: reference used as is, or url/name when a name is given; no --repo', async (t) => {
  const { helm, applier } = await setup()
  await applier.apply(desiredFor({ url: 'oci://registry.example.com/charts/acme-app', version: '0.18.0' }), target)
  await applier.apply(desiredFor({ url: 'oci://registry.example.com/charts/', name: 'acme-app', version: '0.19.0' }), target)
  const [first, second] = await helm.calls()
  t.equal(first?.argv[3], 'oci://registry.example.com/charts/acme-app')
  t.equal(second?.argv[3], 'oci://registry.example.com/charts/acme-app')
  t.notOk(first?.argv.includes('--repo'))
  t.equal(second?.argv[first!.argv.indexOf('--version') + 1], '0.19.0')
})

t.test('failing helm: rejects with the exit code and stderr tail; temp values still removed', async (t) => {
  const { helm, tmp, applier } = await setup()
  await helm.behave(1, 'Error: UPGRADE FAILED: timed out waiting for the condition\n')
  const err = await applier.apply(desiredFor({ url: 'https://charts.example.com', name: 'acme-app', version: '0.18.0' }), target).then(() => null, (e: unknown) => e)
  t.type(err, HelmError)
  t.equal((err as HelmError).exitCode, 1)
  t.match((err as HelmError).message, /exited with 1: Error: UPGRADE FAILED: timed out/)
  t.equal((await helm.calls())[0]?.valuesMode, 0o600)
  t.same(await readdir(tmp), [], 'removed even though helm failed')
})

t.test('missing helm binary: a clear ApplierUnavailableError', async (t) => {
  const tmp = await mkdtemp(join(tmpdir(), 'chartcast-helm-test-'))
  const applier = new HelmApplier({ helmBin: join(tmp, 'no-such-helm'), timeoutMs: 60_000, tmpDir: tmp })
  await t.rejects(applier.apply(desiredFor({ url: 'https://charts.example.com', name: 'acme-app', version: '0.18.0' }), target), {
    name: 'ApplierUnavailableError',
    message: /not found or not executable \(ENOENT\).*HELM_BIN/
  })
  t.same(await readdir(tmp), [])
})

t.test('helm --timeout is given in whole seconds (Go durations have no d/w units)', async (t) => {
  const { helm } = await setup()
  const applier = new HelmApplier({ helmBin: helm.bin, timeoutMs: 90_500 })
  await applier.apply(desiredFor({ url: 'https://charts.example.com', name: 'acme-app', version: '1.0.0' }), target)
  const argv = (await helm.calls())[0]!.argv
  t.equal(argv[argv.indexOf('--timeout') + 1], '91s')
})

t.test('failing helm: the kept stderr is whole lines (a line cut in half could hide half a value from redaction)', async (t) => {
  const { helm, applier } = await setup()
  const lines = Array.from({ length: 400 }, (_, i) => `line ${String(i).padStart(3, '0')} ${'v'.repeat(60)}`)
  await helm.behave(1, lines.join('\n') + '\nError: UPGRADE FAILED: the end\n')
  const err = await applier.apply(desiredFor({ url: 'https://charts.example.com', name: 'acme-app', version: '0.18.0' }), target).then(() => null, (e: unknown) => e) as HelmError
  t.equal(err.status, 'exited with 1')
  t.ok(err.stderr.length <= 16 * 1024, 'bounded')
  t.ok(err.stderr.length > 8 * 1024, 'but keeps a good part')
  t.match(err.stderr, /^line \d{3} v{60}\n/, 'starts at the start of a line')
  t.match(err.stderr, /Error: UPGRADE FAILED: the end\n$/)
})

t.test('facts: recorded as --labels and --description after the upgrade flags', async (t) => {
  const { helm, applier } = await setup()
  const desired = desiredFor({ url: 'https://charts.example.com', name: 'acme-app', version: '0.18.0' })
  await applier.apply(desired, target, { version: '1.4.0+build.7', digest: desired.digest, chartVersion: '0.18.0' })
  const argv = (await helm.calls())[0]!.argv
  t.same(argv.slice(argv.indexOf('--labels')), [
    '--labels', `chartcast.io/version=1.4.0_build.7,chartcast.io/digest=${desired.digest.slice(0, 63)}`,
    '--description', `chartcast: chartVersion=0.18.0 digest=${desired.digest} version=1.4.0%2Bbuild.7`
  ], 'label values made valid for Kubernetes; the description keeps them exact')
  const observed = await applier.observe(target)
  t.same(observed.running, { chartVersion: '0.18.0', digest: desired.digest, version: '1.4.0+build.7' }, 'read back from helm history')
  t.match(observed, { status: 'deployed', revision: 1 })
})

t.test('observe: an unknown release is absent; rollback runs helm rollback with the timeout', async (t) => {
  const { helm, applier } = await setup()
  t.same(await applier.observe(target), { status: 'absent' })
  t.same((await helm.calls())[0]!.argv, ['history', 'acme', '--namespace', 'acme-ns', '--output', 'json'])
  const desired = desiredFor({ url: 'https://charts.example.com', name: 'acme-app', version: '0.18.0' })
  await applier.apply(desired, target, { version: '1.4.0', digest: desired.digest })
  await applier.rollback(target, 1)
  t.same((await helm.callsOf('rollback'))[0]!.argv, ['rollback', 'acme', '1', '--namespace', 'acme-ns', '--wait', '--timeout', '600s'])
  const observed = await applier.observe(target)
  t.match(observed, { status: 'deployed', revision: 2, running: { version: '1.4.0' } }, '"Rollback to 1" carries revision 1\'s facts')
})

t.test('observeHistory: newest status, facts of the deployed revision, the revision to roll back to', async (t) => {
  const facts = `chartcast: digest=${'b'.repeat(64)} version=2.0.0`
  const history = [
    { revision: 3, updated: '2026-01-01T10:00:00.123456789+01:00', status: 'pending-upgrade', chart: 'a-1', description: 'Preparing upgrade' },
    { revision: 1, updated: '2025-12-01T10:00:00Z', status: 'superseded', chart: 'a-1', description: facts },
    { revision: 2, updated: '2025-12-02T10:00:00Z', status: 'deployed', chart: 'a-1', description: 'Rollback to 1' }
  ]
  t.same(observeHistory(history), {
    status: 'pending-upgrade',
    revision: 3,
    updatedAt: Date.parse('2026-01-01T09:00:00.123Z'),
    running: { digest: 'b'.repeat(64), version: '2.0.0' },
    rollbackTo: 2
  })
  t.same(observeHistory([{ revision: 1, status: 'deployed', description: 'Install complete' }]), { status: 'deployed', revision: 1 }, 'not installed by chartcast: no facts')
  t.same(observeHistory([]), { status: 'absent' })
  t.throws(() => observeHistory({}), { name: 'HelmError' })
})
