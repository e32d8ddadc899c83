/**
 * The agent against the real chartcast server (PGlite, real HTTP listener) on a channel with
 * upgrade rules: it climbs a multi-hop path in quick cycles, one hop per apply, and stops on
 * 409 NO_UPGRADE_PATH keeping what it runs. Only the applier (RecordingApplier) and the sleep
 * (scriptedSleep, which records the delays asked for) are stand-ins.
 */
import { writeFile } from 'node:fs/promises'
import t, { type Test } from 'tap'
import { makeReconciler, RecordingApplier, scriptedSleep, workdir } from '../helpers/agent-harness.js'
import { captureLogs } from '../helpers/agent-log.js'
import { auth } from '../helpers/problem.js'
import { buildTestServer, type TestServer } from '../helpers/server.js'

const INTERVAL = 60_000

async function promote (t: Test, s: TestServer, version: string, upgradeFrom?: string, required = false): Promise<void> {
  t.equal((await s.publish(version, { values: { image: { tag: version } }, ...(upgradeFrom !== undefined && { upgradeFrom }) })).statusCode, 201)
  const res = await s.app.inject({ method: 'POST', url: '/channels/stable/releases', headers: auth(s.tokens.publisher), payload: { version, required } })
  t.equal(res.statusCode, 201, res.body)
}

async function setup (t: Test) {
  const s = await buildTestServer(t)
  t.equal((await s.putChannel('stable')).statusCode, 201)
  await promote(t, s, '1.0.0')
  const url = await s.listen()
  const wd = await workdir()
  await writeFile(wd.licenseFile, await s.license({ channels: ['stable'] }))
  const applier = new RecordingApplier()
  const logs = captureLogs()
  const controller = new AbortController()
  const agent = (sleep: ReturnType<typeof scriptedSleep>['sleep']) => makeReconciler({
    server: url, stateDir: wd.stateDir, inputs: { licenseFile: wd.licenseFile, needLicense: true }, applier, logger: logs.logger, intervalMs: INTERVAL, random: () => 0.5, sleep, report: true
  })
  return { s, applier, logs, controller, agent }
}

t.test('a three-hop upgrade path takes three quick cycles, not three poll intervals', async (t) => {
  const { s, applier, controller, agent } = await setup(t)
  const { sleep, delays } = scriptedSleep(controller, 5, async (n) => {
    // After the first install: three releases, each reachable only from the one below it.
    if (n !== 1) return
    await promote(t, s, '1.5.0', undefined, true)
    await promote(t, s, '2.0.0', '>=1.5.0', true)
    await promote(t, s, '3.0.0', '>=2.0.0')
  })
  t.equal(await agent(sleep).run(controller.signal), 0)
  t.same(applier.versions, ['1.0.0', '1.5.0', '2.0.0', '3.0.0'], 'every hop applied in order')
  t.same(delays, [INTERVAL, 0, 0, 0, INTERVAL], 'a poll at once after each apply that moved the version; the interval after the first install and once up to date')
})

t.test('409 NO_UPGRADE_PATH: the agent keeps what it runs, reports skipped and waits the normal interval', async (t) => {
  const { s, applier, logs, controller, agent } = await setup(t)
  const { sleep, delays } = scriptedSleep(controller, 3, async (n) => {
    if (n === 1) await promote(t, s, '1.5.0', '>=1.2.0', true)
  })
  t.equal(await agent(sleep).run(controller.signal), 0)
  t.same(applier.versions, ['1.0.0'], 'nothing applied past 1.0.0')
  t.same(delays, [INTERVAL, INTERVAL, INTERVAL], 'no backoff: retrying sooner cannot help')
  const line = logs.find('no-upgrade-path')[0]
  t.equal(line?.appliedVersion, '1.0.0')
  t.match(line?.msg, /no upgrade path from 1\.0\.0: .*1\.5\.0/)
  await s.app.checkins.flush()
  const deployment = (await s.app.inject({ url: '/deployments/cluster-1', headers: auth(s.tokens.reader) })).json()
  t.match(deployment, { appliedVersion: '1.0.0', servedVersion: '1.0.0', lastReport: { version: '1.0.0', outcome: 'skipped', detail: /no upgrade path from 1\.0\.0/ } })
  t.equal(deployment.reports.filter((r: { outcome: string }) => r.outcome === 'skipped').length, 1, 'the same skip is reported once, not every poll')
})
