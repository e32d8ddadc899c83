import { existsSync } from 'node:fs'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { parse } from 'yaml'
import { DirApplier } from '../../src/agent/appliers/dir.js'
import { HelmApplier } from '../../src/agent/appliers/helm.js'
import type { Applier } from '../../src/agent/appliers/types.js'
import { exitCodeFor, HOLD_BACK_MS, type CycleReport, type Reconciler } from '../../src/agent/reconciler.js'
import { createReleaseLock, FileReleaseLock } from '../../src/agent/lock.js'
import { APPLY_NOW_FILE } from '../../src/agent/state.js'
import { parseWindow } from '../../src/agent/windows.js'
import { encodeFacts } from '../../src/agent/truth.js'
import { FakeSpecServer, makeSpec } from '../helpers/agent-fake-server.js'
import { makeReconciler, workdir } from '../helpers/agent-harness.js'
import { captureLogs } from '../helpers/agent-log.js'
import { StandinHelm } from '../helpers/agent-standin-helm.js'

// The "Done means" scenarios, run with the real Reconciler, SpecClient, FileStateStore,
// FileReleaseLock and HelmApplier against a STAND-IN helm (test/helpers/agent-standin-helm.ts:
// a node script modelling release revisions, statuses, labels and pending states; there is no
// Helm or cluster on our machines) and the stand-in spec server.

const once = (r: Reconciler) => r.reconcile(new AbortController().signal)

async function setup (t: Test) {
  const server = await FakeSpecServer.start()
  t.teardown(() => server.stop().catch(() => {}))
  const wd = await workdir()
  const helm = await StandinHelm.create()
  const logs = captureLogs()
  const helmApplier = new HelmApplier({ helmBin: helm.bin, timeoutMs: 600_000 })
  const agent = (extra: Partial<Parameters<typeof makeReconciler>[0]> = {}): Reconciler => makeReconciler({
    server: server.url,
    stateDir: wd.stateDir,
    inputs: { licenseFile: wd.licenseFile, needLicense: true },
    applier: helmApplier,
    logger: logs.logger,
    ...extra
  })
  const upgrades = async () => helm.callsOf('upgrade')
  return { server, wd, helm, logs, agent, upgrades, helmApplier }
}

t.test('truth from the cluster: the state dir deleted after a withdrawal changes nothing (no downgrade)', async (t) => {
  const { server, wd, logs, agent, upgrades, helm } = await setup(t)
  server.publish(makeSpec('1.5.0'))
  t.equal((await once(agent())).outcome, 'applied')
  const [revision] = await helm.revisions('acme', 'acme-ns')
  t.match(revision, { status: 'deployed', labels: { 'chartcast.io/version': '1.5.0' } }, 'version recorded as a release label')
  t.match(revision?.description, /^chartcast: .*version=1\.5\.0/, 'facts recorded as the release description')

  server.publish(makeSpec('1.4.0'))
  await rm(wd.stateDir, { recursive: true, force: true })
  const report = await once(agent())
  t.equal(report.outcome, 'downgrade-refused', 'a fresh agent with no state reads 1.5.0 from the release')
  t.equal((await upgrades()).length, 1, 'helm upgrade ran only for 1.5.0')
  t.equal(logs.find('downgrade-refused')[0]?.appliedVersion, '1.5.0')
  t.equal(server.requests.at(-1)?.applied, '1.5.0', 'Chartcast-Applied comes from the release, not from the state dir')

  await rm(wd.stateDir, { recursive: true, force: true })
  server.publish(makeSpec('1.5.0'))
  t.equal((await once(agent())).outcome, 'unchanged', 'the digest comparison also survives a lost state dir')
  t.equal((await upgrades()).length, 1)
})

t.test('truth from the cluster: an --atomic rollback is read through to the revision it restored', async (t) => {
  const { server, agent, upgrades, helm } = await setup(t)
  server.publish(makeSpec('1.5.0'))
  const r = agent()
  await once(r)
  await helm.behave(1, 'Error: UPGRADE FAILED: timed out waiting for the condition\n')
  server.publish(makeSpec('1.6.0'))
  t.equal((await once(r)).outcome, 'apply-failed')
  t.same((await helm.revisions('acme', 'acme-ns')).map((x) => [x.status, x.description.slice(0, 12)]),
    [['superseded', 'chartcast: c'], ['failed', 'Upgrade "acm'], ['deployed', 'Rollback to ']], 'the stand-in rolled back as --atomic does')
  await helm.behave(0)
  server.publish(makeSpec('1.4.0'))
  t.equal((await once(agent({ stateDir: join(await (await workdir()).dir, 'fresh') }))).outcome, 'downgrade-refused', '"Rollback to 1" counts as 1.5.0 running')
  t.equal((await upgrades()).length, 2)
})

t.test('dir applier: the output set is the truth; a lost state dir refuses the downgrade, rm -rf OUT or a new --out writes again', async (t) => {
  const { server, wd, agent } = await setup(t)
  const out = join(wd.dir, 'out')
  const dir = (path = out) => agent({ applier: new DirApplier(path) })
  server.publish(makeSpec('1.5.0'))
  t.equal((await once(dir())).outcome, 'applied')
  server.publish(makeSpec('1.4.0'))
  await rm(wd.stateDir, { recursive: true, force: true })
  t.equal((await once(dir())).outcome, 'downgrade-refused', 'the set says 1.5.0 runs')

  server.publish(makeSpec('1.5.0'))
  t.equal((await once(dir())).outcome, 'unchanged')
  await rm(out, { recursive: true, force: true })
  t.equal((await once(dir())).outcome, 'applied', 'after rm -rf OUT the agent writes again')
  t.match(JSON.parse(await readFile(join(out, 'current', 'spec.json'), 'utf8')), { version: '1.5.0', facts: { version: '1.5.0' } })
  const other = join(wd.dir, 'other-out')
  t.equal((await once(dir(other))).outcome, 'applied', 'a new --out on the same state dir is written too')
})

t.test('two agents started at once: exactly one helm at a time; the second waits, or with --once ends "locked" (exit 5)', async (t) => {
  const { server, wd, helm, logs, agent, upgrades } = await setup(t)
  server.publish(makeSpec('1.5.0'))
  await helm.behave(0, '', { upgradeMs: 400 })
  const lock = () => new FileReleaseLock(wd.stateDir, 'acme', 'acme-ns')
  const a = agent({ lock: lock(), lockRetryMs: 20, config: { waitForLock: true } })
  const b = agent({ lock: lock(), lockRetryMs: 20, config: { waitForLock: true } })
  const reports = await Promise.all([once(a), once(b)])
  t.same(reports.map((r) => r.outcome).sort(), ['applied', 'unchanged'], 'one applied, the other then found it running')
  t.same(await helm.overlaps(), [], 'no helm process started while another ran')
  t.equal((await upgrades()).length, 1)
  t.equal(logs.find('waiting-for-lock').length, 1, 'the waiting agent said so once')

  server.publish(makeSpec('1.6.0'))
  const c = agent({ lock: lock(), config: { waitForLock: false } })
  const d = agent({ lock: lock(), config: { waitForLock: false } })
  const [rc, rd] = await Promise.all([once(c), once(d)])
  t.same([rc.outcome, rd.outcome].sort(), ['applied', 'locked'])
  t.equal(exitCodeFor([rc, rd].find((r) => r.outcome === 'locked')!), 5, '--once: a distinct exit code')
  t.same(await helm.overlaps(), [])
  t.equal(logs.find('locked').length, 1)
})

t.test('dir applier: two agents with different state dirs on one --out never write it at once (a lock in OUT too)', async (t) => {
  const { server, wd, agent } = await setup(t)
  const out = join(wd.dir, 'out')
  const otherState = join(wd.dir, 'other-state')
  // The locks the CLI takes for --applier dir (src/cli/agent.ts).
  const lockFor = (stateDir: string) => createReleaseLock({ stateDir, release: 'acme', namespace: 'acme-ns', applier: 'dir', out })
  const second = agent({ stateDir: otherState, applier: new DirApplier(out), lock: lockFor(otherState), config: { waitForLock: false } })
  let secondReport: CycleReport | undefined
  // The second agent's whole cycle runs while the first is between two files of its set.
  const first = agent({
    applier: new DirApplier(out, { afterWrite: async (file) => { if (file === 'spec.json') secondReport ??= await once(second) } }),
    lock: lockFor(wd.stateDir),
    config: { waitForLock: false }
  })
  server.publish(makeSpec('1.5.0'))
  t.equal((await once(first)).outcome, 'applied', 'the first agent\'s set was not pulled from under it')
  t.equal(secondReport?.outcome, 'locked', 'the second saw the lock in OUT although its state dir is another')
  t.equal(exitCodeFor(secondReport!), 5)
  t.match(JSON.parse(await readFile(join(out, 'current', 'spec.json'), 'utf8')), { version: '1.5.0' }, 'OUT/current names a complete set')
  t.equal((await once(second)).outcome, 'unchanged', 'afterwards the second finds the set written')
})

t.test('helm pending-* without a lock holder: younger than the helm timeout is left alone (busy, exit 5)', async (t) => {
  const { server, helm, agent, upgrades, logs } = await setup(t)
  server.publish(makeSpec('1.5.0'))
  const digest = 'a'.repeat(64)
  await helm.setRevisions('acme', 'acme-ns', [
    { revision: 1, status: 'deployed', updated: new Date(Date.now() - 3_600_000).toISOString(), description: encodeFacts({ version: '1.4.0', digest }), labels: {}, chart: 'acme-app', chartVersion: '0.4.0', values: null },
    { revision: 2, status: 'pending-upgrade', updated: new Date(Date.now() - 60_000).toISOString(), description: 'Preparing upgrade', labels: {}, chart: 'acme-app', chartVersion: '0.5.0', values: null }
  ])
  const report = await once(agent({ config: { helmTimeoutMs: 600_000 } }))
  t.equal(report.outcome, 'busy')
  t.equal(exitCodeFor(report), 5)
  t.equal((await upgrades()).length, 0)
  t.equal((await helm.callsOf('rollback')).length, 0)
  t.equal(logs.find('release-busy')[0]?.status, 'pending-upgrade')
})

t.test('a stuck pending-upgrade (helm killed mid-upgrade) older than the helm timeout: rolled back, then upgraded', async (t) => {
  const { server, helm, agent, upgrades, logs } = await setup(t)
  server.publish(makeSpec('1.4.0'))
  let now = Date.now()
  const r = agent({ now: () => now, config: { helmTimeoutMs: 600_000 } })
  t.equal((await once(r)).outcome, 'applied')
  server.publish(makeSpec('1.5.0'))
  await helm.behave(0, '', { upgrade: 'kill' })
  t.equal((await once(r)).outcome, 'apply-failed', 'helm died')
  t.match(logs.find('apply-failed')[0]?.reason, /killed by SIGKILL/)
  t.equal((await helm.revisions('acme', 'acme-ns')).at(-1)?.status, 'pending-upgrade', 'the release is left pending')

  await helm.behave(0)
  now += 11 * 60_000
  const report = await once(r)
  t.equal(report.outcome, 'applied')
  t.same((await helm.callsOf('rollback')).map((c) => c.argv.slice(0, 3)), [['rollback', 'acme', '1']], 'rolled back to the last deployed revision')
  t.same(logs.events().filter((e) => ['rolling-back', 'rolled-back', 'applying', 'applied'].includes(e)).slice(-4), ['rolling-back', 'rolled-back', 'applying', 'applied'])
  t.equal(logs.find('rolling-back')[0]?.level, 40)
  const revisions = await helm.revisions('acme', 'acme-ns')
  t.same(revisions.map((x) => x.status), ['superseded', 'failed', 'superseded', 'deployed'])
  t.match(revisions.at(-1)?.description, /version=1\.5\.0/)
  t.equal((await upgrades()).length, 3)
})

t.test('a withdrawal does not freeze the deployment: a values change is applied to the running release', async (t) => {
  const { server, wd, helm, agent, upgrades, logs } = await setup(t)
  const userValues = await wd.write('site.yaml', 'db:\n  password: first-password\n')
  const r = () => agent({ inputs: { licenseFile: wd.licenseFile, userValues, needLicense: true } })
  server.publish(makeSpec('1.5.0'))
  t.equal((await once(r())).outcome, 'applied')
  server.publish(makeSpec('1.4.0'))
  t.equal((await once(r())).outcome, 'downgrade-refused', 'nothing changed locally: nothing to do')

  await writeFile(userValues, 'db:\n  password: rotated-password\n')
  t.equal((await once(r())).outcome, 'applied')
  const call = (await upgrades()).at(-1)!
  t.equal(call.argv[call.argv.indexOf('--version') + 1], '0.5.0', 'the chart of the running 1.5.0, not of 1.4.0')
  t.same(parse(call.values as string), { image: { tag: '1.5.0' }, replicas: 2, db: { password: 'rotated-password' } }, '1.5.0 values with the new local layer')
  t.match((await helm.revisions('acme', 'acme-ns')).at(-1)?.description, /version=1\.5\.0/)
  const line = logs.find('values-on-running')[0]
  t.match(line, { version: '1.5.0', offeredVersion: '1.4.0' })
  t.match(line?.msg, /applying the changed local values to 1\.5\.0/)
  t.equal((await once(r())).outcome, 'downgrade-refused', 'and then stays put')
  t.equal((await upgrades()).length, 2)
})

t.test('circuit breaker: three failures of one digest hold it back (one warn line, a skipped report) until --retry-failed, a new digest or 24 h', async (t) => {
  const { server, helm, agent, upgrades, logs } = await setup(t)
  server.publish(makeSpec('1.5.0'))
  await helm.behave(1, 'Error: UPGRADE FAILED: pre-upgrade hooks failed\n')
  let now = Date.now()
  const r = agent({ report: true, now: () => now })
  for (let i = 0; i < 3; i++) t.equal((await once(r)).outcome, 'apply-failed')
  const held = await once(r)
  t.equal(held.outcome, 'held-back')
  t.equal(exitCodeFor(held), 1)
  t.equal((await once(r)).outcome, 'held-back')
  t.equal((await upgrades()).length, 3, 'helm ran three times, not more')
  t.equal(logs.lines.filter((l) => l.event === 'held-back' && l.level === 40).length, 1, 'one warn line')
  const skipped = server.reports.filter((b) => b.outcome === 'skipped')
  t.equal(skipped.length, 1)
  t.match(skipped[0]?.detail, /^held back: 3 failed applies of this desired state/)

  t.equal((await once(agent({ now: () => now }))).outcome, 'held-back', 'a new process (--once run) holds it back too')
  t.equal(logs.lines.filter((l) => l.event === 'held-back' && l.level === 40).length, 1, 'and does not warn again')
  t.equal((await once(agent({ now: () => now, config: { retryFailed: true } }))).outcome, 'apply-failed', '--retry-failed tries once')
  t.equal((await upgrades()).length, 4)
  t.equal((await once(r)).outcome, 'held-back', 'held again after that failure')

  now += HOLD_BACK_MS + 1
  t.equal((await once(r)).outcome, 'apply-failed', 'tried again after 24 h')
  t.equal((await upgrades()).length, 5)

  await helm.behave(0)
  server.publish(makeSpec('1.6.0'))
  t.equal((await once(r)).outcome, 'applied', 'a new desired digest is not held back')
  t.equal((await upgrades()).length, 6)
})

t.test('appliers without observe() fall back to the state dir record', async (t) => {
  const { server, agent, wd } = await setup(t)
  const applied: string[] = []
  const plain: Applier = { name: 'plain', apply: async (d) => { applied.push(d.version) } }
  server.publish(makeSpec('1.5.0'))
  await once(agent({ applier: plain }))
  server.publish(makeSpec('1.4.0'))
  t.equal((await once(agent({ applier: plain }))).outcome, 'downgrade-refused')
  t.ok(JSON.parse(await readFile(join(wd.stateDir, 'applied.json'), 'utf8')).spec, 'the running release\'s channel spec is kept')
  t.same(applied, ['1.5.0'])
})

t.test('maintenance windows: outside them nothing is applied (skipped report); the loop wakes when one opens', async (t) => {
  const { server, agent, upgrades, logs } = await setup(t)
  server.publish(makeSpec('1.5.0'))
  // Friday 2026-06-05 20:30 UTC; the window opens Saturday 02:00 Berlin = Saturday 00:00 UTC.
  let now = Date.parse('2026-06-05T20:30:00Z')
  const windows = [parseWindow('Sat,Sun 02:00-06:00 Europe/Berlin')]
  const controller = new AbortController()
  const delays: number[] = []
  const r = agent({
    report: true,
    now: () => now,
    intervalMs: 6 * 3_600_000,
    config: { windows },
    sleep: async (ms) => {
      delays.push(ms)
      now += ms
      if (delays.length >= 3) controller.abort()
    }
  })
  await r.run(controller.signal)
  t.equal(delays[0], 3.5 * 3_600_000, 'the wait ends when the window opens (3.5 h later), not after the 6 h interval')
  t.same(logs.find('outside-window').map((l) => l.nextWindowAt), ['2026-06-06T00:00:00.000Z'])
  t.equal(delays[1], 6 * 3_600_000, 'then the normal interval')
  t.same(server.reports.filter((b) => b.outcome === 'skipped').map((b) => b.detail), ['outside maintenance window; the next opens 2026-06-06T00:00:00.000Z'])
  t.equal((await upgrades()).length, 1, 'applied once the window was open')
  t.equal(logs.find('applied').length, 1)
  t.ok(logs.find('fetched').length + logs.find('not-modified').length >= 2, 'kept polling while waiting')
})

t.test('maintenance windows: --apply-now and STATE_DIR/apply-now apply once outside them', async (t) => {
  const { server, agent, upgrades, wd, logs } = await setup(t)
  const now = Date.parse('2026-06-05T10:00:00Z')
  const windows = [parseWindow('Sat 02:00-06:00 Europe/Berlin')]
  server.publish(makeSpec('1.5.0'))
  t.equal((await once(agent({ now: () => now, config: { windows } }))).outcome, 'outside-window')
  t.equal((await once(agent({ now: () => now, config: { windows, applyNow: true } }))).outcome, 'applied', '--apply-now')
  server.publish(makeSpec('1.6.0'))
  const r = agent({ now: () => now, config: { windows } })
  t.equal((await once(r)).outcome, 'outside-window')
  await writeFile(join(wd.stateDir, APPLY_NOW_FILE), '')
  t.equal((await once(r)).outcome, 'applied', 'the apply-now file')
  t.equal(existsSync(join(wd.stateDir, APPLY_NOW_FILE)), false, 'and it is removed once used')
  server.publish(makeSpec('1.7.0'))
  t.equal((await once(r)).outcome, 'outside-window', 'only once')
  t.equal((await upgrades()).length, 2)
  t.equal(logs.find('apply-now').length, 2)
})

t.test('maintenance windows: an apply-now file ends the wait for a window at once (the loop watches the state dir)', async (t) => {
  const { server, agent, upgrades, wd, logs } = await setup(t)
  server.publish(makeSpec('1.5.0'))
  const now = Date.parse('2026-06-05T10:00:00Z')
  const controller = new AbortController()
  const delays: number[] = []
  const r = agent({
    now: () => now,
    config: { windows: [parseWindow('Sat 02:00-06:00 Europe/Berlin')] },
    sleep: async (ms, signal) => {
      delays.push(ms)
      if (delays.length === 1) {
        // The operator touches the file while the agent waits for the window: only the watcher can end this wait.
        await writeFile(join(wd.stateDir, APPLY_NOW_FILE), '')
        // The watcher may have seen the file before writeFile resolved: then the wait has already ended.
        await new Promise<void>((resolve) => {
          if (signal.aborted) resolve()
          else signal.addEventListener('abort', () => { resolve() }, { once: true })
        })
      } else {
        controller.abort()
      }
    }
  })
  await r.run(controller.signal)
  t.equal(logs.find('apply-now-file').length, 1)
  t.equal((await upgrades()).length, 1, 'applied on the cycle after the file appeared')
  t.equal(existsSync(join(wd.stateDir, APPLY_NOW_FILE)), false)
})
