import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { HelmApplier } from '../../src/agent/appliers/helm.js'
import { DirApplier } from '../../src/agent/appliers/dir.js'
import type { Reconciler } from '../../src/agent/reconciler.js'
import { FakeSpecServer, makeSpec } from '../helpers/agent-fake-server.js'
import { makeReconciler, RecordingApplier, scriptedSleep, workdir } from '../helpers/agent-harness.js'
import { captureLogs } from '../helpers/agent-log.js'
import { StandinHelm } from '../helpers/agent-standin-helm.js'

// The fleet side of the agent: the Chartcast-Applied header on every pull and the apply
// reports posted after each attempt. Real Reconciler, SpecClient, Reporter and state against
// the stand-in server (test/helpers/agent-fake-server.ts); the applier and sleep are injected.

async function setup (t: Test) {
  const server = await FakeSpecServer.start()
  t.teardown(() => server.stop().catch(() => {}))
  const wd = await workdir()
  const applier = new RecordingApplier()
  const logs = captureLogs()
  const agent = (extra: Partial<Parameters<typeof makeReconciler>[0]> = {}): Reconciler => makeReconciler({
    server: server.url,
    stateDir: wd.stateDir,
    inputs: { licenseFile: wd.licenseFile, needLicense: true },
    applier,
    logger: logs.logger,
    report: true,
    ...extra
  })
  return { server, wd, applier, logs, agent }
}

const once = (r: Reconciler) => r.reconcile(new AbortController().signal)

t.test('Chartcast-Applied: absent on a fresh install, then the applied release version on every pull', async (t) => {
  const { server, agent } = await setup(t)
  server.publish(makeSpec('1.4.0'))
  const r = agent()
  await once(r)
  t.equal(server.requests[0]?.applied, undefined, 'fresh install sends no header')
  await once(r)
  t.equal(server.requests[1]?.applied, '1.4.0', 'after the apply it says what runs')
  server.publish(makeSpec('1.5.0'))
  await once(r)
  t.equal(server.requests[2]?.applied, '1.4.0', 'the pull that brings 1.5.0 still says 1.4.0 runs')
  await once(r)
  t.equal(server.requests[3]?.applied, '1.5.0')
  server.publish(makeSpec('1.4.0'))
  t.equal((await once(r)).outcome, 'downgrade-refused')
  await once(r)
  t.equal(server.requests[5]?.applied, '1.5.0', 'a refused downgrade leaves the header at what runs')
  t.equal(server.requests.filter((q) => q.status === 400).length, 0)
})

t.test('Chartcast-Applied is left out when the applied state is for another release or not a strict semver', async (t) => {
  const { server, agent, wd } = await setup(t)
  server.publish(makeSpec('1.4.0'))
  await once(agent())
  const applied = JSON.parse(await readFile(join(wd.stateDir, 'applied.json'), 'utf8')) as Record<string, string>
  await writeFile(join(wd.stateDir, 'applied.json'), JSON.stringify({ ...applied, release: 'other' }))
  await once(agent())
  t.equal(server.requests[1]?.applied, undefined, 'state of another release is not what this release runs')
  await writeFile(join(wd.stateDir, 'applied.json'), JSON.stringify({ ...applied, version: 'v1.4' }))
  await once(agent())
  t.equal(server.requests[2]?.applied, undefined, 'an unorderable version is not sent (the server would answer 400)')
  t.equal(server.requests[2]?.status, 304, 'the pull was answered, not refused with 400')
})

t.test('applied: one report with version and digest, sent with the license to the channel', async (t) => {
  const { server, applier, agent } = await setup(t)
  server.publish(makeSpec('1.4.0'))
  const r = agent()
  t.equal((await once(r)).outcome, 'applied')
  t.equal(server.reportRequests.length, 1)
  const sent = server.reportRequests[0]
  t.equal(sent?.channel, 'stable')
  t.equal(sent?.authorization, 'Bearer good-license')
  t.match(sent?.contentType, /^application\/json/)
  t.same(sent?.body, { version: '1.4.0', outcome: 'applied', digest: applier.applied[0]?.desired.digest })
  t.equal((await once(r)).outcome, 'unchanged')
  t.equal(server.reportRequests.length, 1, 'nothing applied, nothing reported')
})

t.test('failed (helm): helm\'s text cut to 4,096 characters, without any value or the license', async (t) => {
  const { server, wd, logs, agent } = await setup(t)
  const password = 'hunter2-very-secret'
  const cert = '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQmFzZTY0\n-----END CERTIFICATE-----'
  server.publish(makeSpec('1.4.0', { values: { db: { password: 'channel-db-pass' }, smtp: { password: 'smtp-pass-9' }, replicas: 2 } }))
  const userValues = await wd.write('user.yaml', `db:\n  password: ${password}\ntls:\n  cert: |\n${cert.split('\n').map((l) => `    ${l}`).join('\n')}\n`)
  const helm = await StandinHelm.create()
  // What helm and the API server really print: warnings first, quoted rejected values, a
  // base64-encoded Secret field, a rendered manifest line, the error last.
  const stderr = [
    ...Array.from({ length: 80 }, (_, i) => `walk.go:74: found symbolic link in path: /charts/acme-app/templates/link-${i}.yaml resolves to elsewhere`),
    `Error: UPGRADE FAILED: Secret "acme-db" is invalid: data[password]: Invalid value: "${password}": must be shorter`,
    `  data: { password: ${Buffer.from(password).toString('base64')} }`,
    'MIIBszCCAVmgAwIBAgIUQmFzZTY0',
    'license seen: good-license',
    'Error: UPGRADE FAILED: smtp-pass-9 rejected; release acme failed, and has been rolled back due to atomic being set'
  ].join('\n') + '\n'
  t.ok(stderr.length > 6000, 'the stand-in prints more than the report may carry')
  await helm.behave(1, stderr)
  const r = agent({ applier: new HelmApplier({ helmBin: helm.bin, timeoutMs: 60_000 }), inputs: { licenseFile: wd.licenseFile, userValues, needLicense: true } })
  t.equal((await once(r)).outcome, 'apply-failed')
  t.equal((await helm.callsOf('upgrade')).length, 1, 'the stand-in helm ran')

  t.equal(server.reports.length, 1)
  const report = server.reports[0] as { version: string, outcome: string, detail: string, digest: string }
  t.equal(report.outcome, 'failed')
  t.equal(report.version, '1.4.0')
  t.match(report.digest, /^[0-9a-f]{64}$/)
  t.ok(report.detail.length <= 4096, `detail is ${report.detail.length} characters`)
  t.ok(report.detail.length > 4000, 'cut at the limit, not far below it')
  t.match(report.detail, /^helm exited with 1: …/, 'the exit status first, then the end of stderr')
  t.match(report.detail, /has been rolled back due to atomic being set$/, 'helm\'s last word kept')
  t.match(report.detail, /Invalid value: "\[redacted\]"/)
  for (const secret of [password, Buffer.from(password).toString('base64'), 'smtp-pass-9', 'MIIBszCCAVmgAwIBAgIUQmFzZTY0', 'good-license']) {
    t.notOk(report.detail.includes(secret), `detail does not contain ${secret.slice(0, 6)}…`)
    t.notOk(logs.raw.join('').includes(secret), `no log line contains ${secret.slice(0, 6)}…`)
  }
})

t.test('failed (dir applier): the file-system error, no values', async (t) => {
  const { server, wd, agent } = await setup(t)
  server.publish(makeSpec('1.4.0', { values: { token: 'dir-secret-token' } }))
  const blocker = await wd.write('not-a-dir', 'a file where --out should be\n')
  const r = agent({ applier: new DirApplier(join(blocker, 'out')) })
  t.equal((await once(r)).outcome, 'apply-failed')
  const report = server.reports[0] as { outcome: string, detail: string }
  t.equal(report.outcome, 'failed')
  t.match(report.detail, /ENOTDIR/)
  t.notMatch(report.detail, /dir-secret-token/)
})

t.test('failed (any applier): an error that quotes values is redacted before it is sent or logged', async (t) => {
  const { server, applier, logs, agent } = await setup(t)
  server.publish(makeSpec('1.4.0', { values: { api: { key: 'sk-live-1234' }, note: 'multi\nline-secret-part\n' } }))
  applier.failWith = new Error(`rendering failed at api.key="sk-live-1234" near line-secret-part ${'x'.repeat(5000)}`)
  t.equal((await once(agent())).outcome, 'apply-failed')
  const detail = (server.reports[0] as { detail: string }).detail
  t.equal(detail.length, 4096, 'cut to 4,096 characters')
  t.match(detail, /^rendering failed at api\.key="\[redacted\]" near \[redacted\] x/)
  t.notMatch(detail + logs.raw.join(''), /sk-live-1234|line-secret-part/)
})

t.test('skipped: a refused downgrade is reported once per target, again after another target or an apply', async (t) => {
  const { server, agent } = await setup(t)
  server.publish(makeSpec('1.5.0'))
  const r = agent()
  await once(r)
  server.publish(makeSpec('1.4.0'))
  for (let i = 0; i < 3; i++) t.equal((await once(r)).outcome, 'downgrade-refused')
  const skips = () => server.reports.filter((b) => b.outcome === 'skipped')
  t.equal(skips().length, 1, 'three refusals, one report')
  t.match(skips()[0], { version: '1.4.0', outcome: 'skipped', detail: /downgrade refused: 1\.5\.0 is applied and 1\.4\.0 is lower/ })
  server.publish(makeSpec('1.3.0'))
  await once(r)
  await once(r)
  t.same(skips().map((b) => b.version), ['1.4.0', '1.3.0'], 'another target is news')
  server.publish(makeSpec('1.6.0'))
  t.equal((await once(r)).outcome, 'applied')
  server.publish(makeSpec('1.3.0'))
  await once(r)
  t.same(skips().map((b) => b.version), ['1.4.0', '1.3.0', '1.3.0'], 'after an apply the same skip is reported again')
  t.same(server.reports.map((b) => b.outcome), ['applied', 'skipped', 'skipped', 'applied', 'skipped'])
})

for (const [name, failure] of [['500', { status: 500, code: 'INTERNAL' }], ['connection cut', 'drop']] as const) {
  t.test(`a report that fails (${name}) changes nothing about the apply and is sent with the next poll`, async (t) => {
    const { server, applier, wd, logs, agent } = await setup(t)
    server.publish(makeSpec('1.4.0'))
    server.reportFailure = failure
    const r = agent()
    const report = await once(r)
    t.equal(report.outcome, 'applied')
    t.equal(report.serverFailed, false, 'a failed report is no server failure (no backoff)')
    t.equal(JSON.parse(await readFile(join(wd.stateDir, 'applied.json'), 'utf8')).version, '1.4.0', 'apply recorded')
    t.equal(server.reportRequests.length, 1, 'it was tried')
    t.equal(server.reports.length, 0, 'and not accepted')
    t.equal(logs.find('report-failed').length, 1)
    server.reportFailure = undefined
    t.equal((await once(r)).outcome, 'unchanged')
    t.same(server.reports, [{ version: '1.4.0', outcome: 'applied', digest: applier.applied[0]?.desired.digest }], 'delivered by the next poll')
    await once(r)
    t.equal(server.reportRequests.length, 2, 'and not sent again')
  })
}

t.test('a report endpoint that never answers holds the cycle only for the delivery timeout', async (t) => {
  const { server, agent } = await setup(t)
  server.publish(makeSpec('1.4.0'))
  server.reportFailure = 'hang'
  const r = agent({ report: { deliveryTimeoutMs: 300 } })
  t.equal((await once(r)).outcome, 'applied', 'the cycle ends with the apply outcome')
  server.reportFailure = undefined
  await once(r)
  t.same(server.reports.map((b) => b.outcome), ['applied'], 'the report waited and went with the next poll')
})

t.test('reports are not sent while the pull fails; the next pull that gets through sends them', async (t) => {
  const { server, applier, agent } = await setup(t)
  server.publish(makeSpec('1.4.0'))
  applier.failWith = new Error('cluster busy')
  const r = agent()
  t.equal((await once(r)).outcome, 'apply-failed')
  applier.failWith = undefined
  server.failure = { status: 503, code: 'DATABASE_UNAVAILABLE' }
  const report = await once(r)
  t.equal(report.outcome, 'applied', 'the cached spec was applied while the server failed')
  t.same(server.reports.map((b) => b.outcome), ['failed'], 'the applied report waits for a pull that gets through')
  server.failure = undefined
  await once(r)
  t.same(server.reports.map((b) => b.outcome), ['failed', 'applied'], 'in order')
})

t.test('the loop: reports ride along without changing the delays', async (t) => {
  const { server, agent } = await setup(t)
  server.publish(makeSpec('1.4.0'))
  server.reportFailure = { status: 503, code: 'DATABASE_UNAVAILABLE', retryAfter: '1' }
  const controller = new AbortController()
  const { sleep, delays } = scriptedSleep(controller, 2)
  await agent({ sleep, random: () => 0.5, intervalMs: 60_000 }).run(controller.signal)
  t.same(delays, [60_000, 60_000], 'a failing report endpoint causes no backoff')
})

t.test('without a reporter (--no-report) nothing is posted', async (t) => {
  const { server, applier, agent } = await setup(t)
  server.publish(makeSpec('1.4.0'))
  applier.failWith = new Error('cluster busy')
  const r = agent({ report: undefined })
  t.equal((await once(r)).outcome, 'apply-failed')
  applier.failWith = undefined
  t.equal((await once(r)).outcome, 'applied')
  t.equal(server.reportRequests.length, 0)
  t.equal(server.requests[1]?.applied, undefined, 'the header does not depend on reporting')
  await once(r)
  t.equal(server.requests[2]?.applied, '1.4.0', 'the header is still sent')
})
