import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { Reconciler, exitCodeFor } from '../../src/agent/reconciler.js'
import { FakeSpecServer, makeSpec } from '../helpers/agent-fake-server.js'
import { makeReconciler, RecordingApplier, scriptedSleep, workdir } from '../helpers/agent-harness.js'
import { captureLogs } from '../helpers/agent-log.js'

// These tests run the real Reconciler, SpecClient (global fetch) and FileStateStore
// against the stand-in spec server; only the applier and the sleep are fakes.

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
    ...extra
  })
  return { server, wd, applier, logs, agent }
}

const once = (r: Reconciler) => r.reconcile(new AbortController().signal)

t.test('first apply: fetches, applies, records digest and version', async (t) => {
  const { server, applier, logs, agent, wd } = await setup(t)
  server.publish(makeSpec('1.4.0'))
  const report = await once(agent())
  t.equal(report.outcome, 'applied')
  t.equal(exitCodeFor(report), 0)
  t.same(applier.versions, ['1.4.0'])
  t.same(applier.applied[0]?.target, { release: 'acme', namespace: 'acme-ns' })
  t.equal(server.requests[0]?.authorization, 'Bearer good-license')
  t.equal(server.requests[0]?.ifNoneMatch, undefined, 'no ETag offered without a cached spec')
  const applied = JSON.parse(await readFile(join(wd.stateDir, 'applied.json'), 'utf8'))
  t.equal(applied.version, '1.4.0')
  t.equal(applied.digest, applier.applied[0]?.desired.digest)
  t.same(logs.events().filter((e) => e !== 'not-modified'), ['fetched', 'applying', 'applied'])
  const fetched = logs.find('fetched')[0]
  t.equal(fetched?.version, '1.4.0')
  t.match(fetched?.etag, /^".+"$/)
  t.type(logs.find('applied')[0]?.durationMs, 'number')
})

t.test('304 path: the cached ETag is sent, nothing is re-applied', async (t) => {
  const { server, applier, logs, agent } = await setup(t)
  server.publish(makeSpec('1.4.0'))
  const r = agent()
  await once(r)
  const report = await once(r)
  t.equal(report.outcome, 'unchanged')
  t.equal(server.requests[1]?.ifNoneMatch, logs.find('fetched')[0]?.etag, 'If-None-Match carries the ETag of the first answer')
  t.equal(server.requests[1]?.status, 304)
  t.equal(applier.attempts, 1)
  t.ok(logs.find('not-modified').length === 1)
  t.ok(logs.find('unchanged').length === 1)
})

t.test('a promotion is applied on the next cycle', async (t) => {
  const { server, applier, agent } = await setup(t)
  server.publish(makeSpec('1.4.0'))
  const r = agent()
  await once(r)
  server.publish(makeSpec('1.5.0'))
  const report = await once(r)
  t.equal(report.outcome, 'applied')
  t.same(applier.versions, ['1.4.0', '1.5.0'])
  t.equal(applier.applied[1]?.desired.chart.version, '0.5.0')
})

t.test('a newer release with the same chart and values is applied, so the release records (and reports) the version it runs', async (t) => {
  // Otherwise the deployment would keep saying it runs 1.4.0 and the server, which upgrade paths
  // route through each required release, would offer it 1.5.0 for ever.
  const { server, applier, agent, wd } = await setup(t)
  const same = { chartVersion: '0.4.0', values: { image: { tag: 'v7' }, replicas: 2 } }
  server.publish(makeSpec('1.4.0', same))
  const r = agent()
  await once(r)
  server.publish(makeSpec('1.5.0', same))
  t.equal((await once(r)).outcome, 'applied')
  t.same(applier.versions, ['1.4.0', '1.5.0'])
  t.equal(applier.applied[1]?.desired.digest, applier.applied[0]?.desired.digest, 'the same chart and values')
  t.equal(JSON.parse(await readFile(join(wd.stateDir, 'applied.json'), 'utf8')).version, '1.5.0')
  t.equal((await once(r)).outcome, 'unchanged', 'and then it is up to date')
  server.publish(makeSpec('1.3.0', same))
  t.equal((await once(r)).outcome, 'unchanged', 'a lower release with the same chart and values changes nothing: no downgrade to apply or refuse')
  t.same(applier.versions, ['1.4.0', '1.5.0'])
})

t.test('withdrawal to a lower version is refused without --allow-downgrade', async (t) => {
  const { server, applier, logs, agent, wd } = await setup(t)
  server.publish(makeSpec('1.5.0'))
  const r = agent()
  await once(r)
  server.publish(makeSpec('1.4.0'))
  const report = await once(r)
  t.equal(report.outcome, 'downgrade-refused')
  t.equal(exitCodeFor(report), 0)
  t.same(applier.versions, ['1.5.0'], 'still only 1.5.0 applied')
  const line = logs.find('downgrade-refused')[0]
  t.equal(line?.version, '1.4.0')
  t.equal(line?.appliedVersion, '1.5.0')
  t.match(line?.msg, /refusing to move from 1\.5\.0 down to 1\.4\.0/)
  t.equal(line?.level, 40, 'warned')
  t.equal((await once(r)).outcome, 'downgrade-refused', 'next poll: still refused')
  t.same(logs.find('downgrade-refused').map((l) => l.level), [40, 20], 'the repeat is logged at debug, not warned again')
  server.publish(makeSpec('1.3.0'))
  await once(r)
  t.same(logs.find('downgrade-refused').map((l) => l.level), [40, 20, 40], 'another refused target warns again')
  const applied = JSON.parse(await readFile(join(wd.stateDir, 'applied.json'), 'utf8'))
  t.equal(applied.version, '1.5.0', 'applied record untouched')
})

t.test('withdrawal to a lower version is applied with --allow-downgrade', async (t) => {
  const { server, applier, logs, agent } = await setup(t)
  server.publish(makeSpec('1.5.0'))
  const r = agent({ allowDowngrade: true })
  await once(r)
  server.publish(makeSpec('1.4.0'))
  const report = await once(r)
  t.equal(report.outcome, 'applied')
  t.same(applier.versions, ['1.5.0', '1.4.0'])
  t.equal(logs.find('downgrade-allowed').length, 1)
})

for (const [status, code] of [[401, 'LICENSE_EXPIRED'], [403, 'LICENSE_REVOKED']] as const) {
  t.test(`license refused (${status} ${code}): nothing changes, exit 3`, async (t) => {
    const { server, applier, logs, agent, wd } = await setup(t)
    server.publish(makeSpec('1.4.0'))
    const r = agent()
    await once(r)
    const before = await readFile(join(wd.stateDir, 'applied.json'), 'utf8')
    server.publish(makeSpec('1.5.0'))
    server.refusals.set('good-license', { status, code })
    const report = await once(r)
    t.equal(report.outcome, 'license-refused')
    t.equal(exitCodeFor(report), 3)
    t.same(applier.versions, ['1.4.0'], 'no apply, nothing removed')
    t.equal(await readFile(join(wd.stateDir, 'applied.json'), 'utf8'), before)
    const lines = logs.find('license-refused')
    t.equal(lines.length, 1, 'one clear line')
    t.equal(lines[0]?.code, code)
    t.equal(lines[0]?.status, status)
    t.notMatch(logs.raw.join(''), /good-license/, 'license never logged')
  })
}

t.test('license refused on the very first run with a cached-but-unapplied spec applies nothing', async (t) => {
  const { server, applier, agent } = await setup(t)
  server.publish(makeSpec('1.4.0'))
  applier.failWith = new Error('cluster busy')
  await once(agent())
  applier.failWith = undefined
  server.refusals.set('good-license', { status: 401, code: 'LICENSE_EXPIRED' })
  const report = await once(agent())
  t.equal(report.outcome, 'license-refused')
  t.equal(applier.applied.length, 0)
})

t.test('server stopped: cached state kept, backoff grows, nothing applied', async (t) => {
  const { server, applier, logs, agent } = await setup(t)
  server.publish(makeSpec('1.4.0'))
  await once(agent())
  await server.stop()

  const controller = new AbortController()
  const { sleep, delays } = scriptedSleep(controller, 5)
  const code = await agent({ sleep, random: () => 0.99 }).run(controller.signal)
  t.equal(code, 0)
  t.same(applier.versions, ['1.4.0'], 'no new apply while the server is down')
  t.equal(logs.find('server-unavailable').length, 5)
  t.equal(logs.find('using-cache').length, 5)
  t.equal(logs.find('unchanged').length, 5, 'cached desired state equals what is applied')
  for (let i = 1; i < delays.length; i++) t.ok((delays[i] as number) > (delays[i - 1] as number), `delay ${i} grows: ${delays.join(', ')}`)
  t.same(delays, [990, 1980, 3960, 7920, 15840])
  t.same(logs.find('backing-off').map((l) => l.delayMs), delays)
})

t.test('backoff resets after a success and honours Retry-After', async (t) => {
  const { server, agent } = await setup(t)
  server.publish(makeSpec('1.4.0'))
  const controller = new AbortController()
  const { sleep, delays } = scriptedSleep(controller, 5, (n) => {
    if (n === 1) server.failure = { status: 503, code: 'DATABASE_UNAVAILABLE', retryAfter: '120' }
    if (n === 2) server.failure = { status: 429, code: 'RATE_LIMITED' }
    if (n === 3) server.failure = undefined
  })
  await agent({ sleep, random: () => 0.5, intervalMs: 60_000 }).run(controller.signal)
  // success → interval ±10% (random 0.5 → exactly), 503 → Retry-After floor, 429 → second failure, success → interval again
  t.same(delays, [60_000, 120_000, 1000, 60_000, 60_000])
})

t.test('unreachable with no cache: exit 4, nothing applied', async (t) => {
  const { server, applier, agent } = await setup(t)
  await server.stop()
  const report = await once(agent())
  t.equal(report.outcome, 'unreachable')
  t.equal(exitCodeFor(report), 4)
  t.equal(applier.attempts, 0)
})

t.test('unreachable with a cached spec not yet applied: the cache is applied', async (t) => {
  const { server, applier, logs, agent } = await setup(t)
  server.publish(makeSpec('1.4.0'))
  applier.failWith = new Error('cluster busy')
  t.equal((await once(agent())).outcome, 'apply-failed')
  applier.failWith = undefined
  await server.stop()
  const report = await once(agent())
  t.equal(report.outcome, 'applied')
  t.equal(report.serverFailed, true)
  t.equal(exitCodeFor(report), 0)
  t.same(applier.versions, ['1.4.0'])
  t.equal(logs.find('using-cache').length, 1)
})

t.test('restart without changes applies nothing (digest persisted)', async (t) => {
  const { server, applier, logs, agent } = await setup(t)
  server.publish(makeSpec('1.4.0'))
  await once(agent())
  const report = await once(agent()) // a fresh Reconciler on the same state dir
  t.equal(report.outcome, 'unchanged')
  t.equal(applier.attempts, 1)
  t.equal(server.requests[1]?.status, 304, 'restart still offers the persisted ETag')
  t.equal(logs.find('unchanged').length, 1)
})

t.test('restart after a local values change re-applies even when the server says 304', async (t) => {
  const { server, applier, agent, wd } = await setup(t)
  server.publish(makeSpec('1.4.0'))
  const userValues = await wd.write('user.yaml', 'replicas: 3\n')
  await once(agent({ inputs: { licenseFile: wd.licenseFile, userValues, needLicense: true } }))
  await wd.write('user.yaml', 'replicas: 5\n')
  const report = await once(agent({ inputs: { licenseFile: wd.licenseFile, userValues, needLicense: true } }))
  t.equal(report.outcome, 'applied')
  t.equal(server.requests[1]?.status, 304)
  t.same(applier.applied.map((a) => a.desired.values.replicas), [3, 5])
})

t.test('a failed apply is not recorded and is retried next cycle under backoff', async (t) => {
  const { server, applier, logs, agent } = await setup(t)
  server.publish(makeSpec('1.4.0'))
  applier.failWith = new Error('helm exited with 1: timed out waiting for the condition')
  const controller = new AbortController()
  const { sleep, delays } = scriptedSleep(controller, 3, (n) => { if (n === 2) applier.failWith = undefined })
  await agent({ sleep, random: () => 0.5, intervalMs: 60_000 }).run(controller.signal)
  t.equal(applier.attempts, 3)
  t.same(applier.versions, ['1.4.0'])
  t.same(delays, [500, 1000, 60_000])
  t.match(logs.find('apply-failed')[0]?.reason, /timed out waiting/)
})

t.test('layering: user values over channel values, CR over both; CR chart replaces the channel chart', async (t) => {
  const { server, applier, agent, wd } = await setup(t)
  server.publish(makeSpec('1.4.0', { values: { replicas: 2, image: { repo: 'acme/app', tag: '1.4.0' }, hosts: ['a', 'b'], debug: true, global: { region: 'eu' } } }))
  const userValues = await wd.write('user.yaml', 'replicas: 3\nimage:\n  tag: custom\nhosts: [c]\ndebug: null\n')
  const cr = await wd.write('cr.yaml', [
    'apiVersion: apps.wandb.com/v1',
    'kind: WeightsAndBiases',
    'metadata: { name: acme }',
    'spec:',
    '  chart: { url: "oci://registry.example.com/charts/acme-app", version: "9.9.9" }',
    '  values:',
    '    replicas: 4',
    '    global: { size: large }',
    ''
  ].join('\n'))
  await once(agent({ inputs: { licenseFile: wd.licenseFile, userValues, cr, needLicense: true } }))
  const desired = applier.applied[0]?.desired
  t.same(desired?.values, {
    replicas: 4, // CR wins over user (3) and channel (2)
    image: { repo: 'acme/app', tag: 'custom' }, // maps merge; user tag wins
    hosts: ['c'], // arrays replace (Helm), they are not concatenated
    global: { region: 'eu', size: 'large' }
    // debug removed by the user's null
  })
  t.same(desired?.chart, { url: 'oci://registry.example.com/charts/acme-app', version: '9.9.9' }, 'whole chart from the CR, no channel name/version mixed in')
  t.equal(desired?.version, '1.4.0', 'release version still the channel\'s')
})

t.test('license read from the CR when no --license-file is given', async (t) => {
  const { server, applier, agent, wd } = await setup(t)
  server.publish(makeSpec('1.4.0'))
  const cr = await wd.write('cr.yaml', 'apiVersion: apps.wandb.com/v1\nkind: WeightsAndBiases\nspec:\n  values:\n    global:\n      license: good-license\n')
  const report = await once(agent({ inputs: { cr, needLicense: true } }))
  t.equal(report.outcome, 'applied')
  t.equal(server.requests[0]?.authorization, 'Bearer good-license')
  t.same(applier.versions, ['1.4.0'])
})

t.test('prototype keys are refused as a configuration error (exit 2), nothing applied', async (t) => {
  const { server, applier, logs, agent, wd } = await setup(t)
  server.publish(makeSpec('1.4.0'))
  for (const [file, text] of [
    ['proto.yaml', 'image:\n  __proto__:\n    polluted: true\n'],
    ['ctor.yaml', 'constructor:\n  prototype: { x: 1 }\n'],
    ['json.yaml', '{"a": {"prototype": 1}}']
  ] as const) {
    const userValues = await wd.write(file, text)
    const report = await once(agent({ inputs: { licenseFile: wd.licenseFile, userValues, needLicense: true } }))
    t.equal(report.outcome, 'config-error', file)
    t.equal(exitCodeFor(report), 2, file)
  }
  t.equal(applier.attempts, 0)
  t.equal(server.requests.length, 0, 'refused before contacting the server')
  t.match(logs.find('config-error')[0]?.reason, /key "image\.__proto__" is not allowed/)
  t.equal(({} as Record<string, unknown>).polluted, undefined)
})

t.test('a server spec carrying a prototype key is not cached or applied', async (t) => {
  const { server, applier, agent, wd } = await setup(t)
  server.publish(makeSpec('1.4.0'))
  server.rawBody = '{"channel":"stable","version":"1.4.0","chart":{"url":"https://charts.example.com","name":"acme-app","version":"0.4.0"},"values":{"__proto__":{"x":1}}}'
  const report = await once(agent())
  t.equal(report.outcome, 'unreachable', 'an unusable body counts as no usable server answer')
  t.equal(applier.attempts, 0)
  await t.rejects(readFile(join(wd.stateDir, 'spec.json')), { code: 'ENOENT' })
})

t.test('404 CHANNEL_NOT_FOUND is a rejected request: exit 2, nothing applied', async (t) => {
  const { server, applier, logs, agent } = await setup(t)
  server.publish(makeSpec('1.4.0'))
  const report = await once(agent({ channel: 'nightly' }))
  t.equal(report.outcome, 'rejected')
  t.equal(exitCodeFor(report), 2)
  t.equal(logs.find('rejected')[0]?.code, 'CHANNEL_NOT_FOUND')
  t.equal(applier.attempts, 0)
})

t.test('a version pin asks for that release', async (t) => {
  const { server, applier, agent } = await setup(t)
  server.publish(makeSpec('1.3.0'))
  server.publish(makeSpec('1.4.0'))
  await once(agent({ pin: '1.3.0' }))
  t.equal(server.requests[0]?.version, '1.3.0')
  t.same(applier.versions, ['1.3.0'])
})

t.test('a cache from another channel is never used', async (t) => {
  const { server, applier, agent, logs } = await setup(t)
  server.publish(makeSpec('1.4.0'))
  await once(agent())
  await server.stop()
  const report = await once(agent({ channel: 'beta' }))
  t.equal(report.outcome, 'unreachable')
  t.equal(applier.attempts, 1)
  t.equal(logs.find('cache-ignored').length, 1)
})

t.test('poll interval: --interval, else X-Poll-Interval hint, else 1h; jittered ±10%', async (t) => {
  const { server, agent } = await setup(t)
  server.publish(makeSpec('1.4.0'))
  const run = async (opts: { intervalMs?: number, random: number }) => {
    const controller = new AbortController()
    const { sleep, delays } = scriptedSleep(controller, 1)
    await agent({ sleep, random: () => opts.random, intervalMs: opts.intervalMs }).run(controller.signal)
    return delays[0]
  }
  t.equal(await run({ random: 0.5 }), 3_600_000, 'default 1h')
  server.pollIntervalSeconds = 600
  t.equal(await run({ random: 0.5 }), 600_000, 'server hint')
  t.equal(await run({ random: 0, intervalMs: 120_000 }), 108_000, 'flag wins, -10%')
  t.equal(await run({ random: 1, intervalMs: 120_000 }), 132_000, '+10%')
})

t.test('the loop stops between steps when aborted, and exits 2 on a first-cycle config error', async (t) => {
  const { server, agent, wd, applier } = await setup(t)
  server.publish(makeSpec('1.4.0'))
  const aborted = new AbortController()
  aborted.abort()
  t.equal(await agent().run(aborted.signal), 0)
  t.equal(server.requests.length, 0, 'no cycle after the stop')

  const missing = join(wd.dir, 'nope.yaml')
  const code = await agent({ inputs: { licenseFile: wd.licenseFile, userValues: missing, needLicense: true } }).run(new AbortController().signal)
  t.equal(code, 2)
  t.equal(applier.attempts, 0)
})

t.test('a signal during the fetch ends the cycle without applying', async (t) => {
  const { server, applier, agent } = await setup(t)
  server.publish(makeSpec('1.4.0'))
  const controller = new AbortController()
  const r = agent()
  const pending = r.reconcile(controller.signal)
  controller.abort()
  const report = await pending
  t.equal(report.outcome, 'stopped')
  t.equal(applier.attempts, 0)
})

t.test('air-gapped --from-file: same layering, no server, no license', async (t) => {
  const { applier, agent, wd } = await setup(t)
  const fromFile = await wd.write('spec.yaml', [
    'channel: stable',
    'version: 2.0.0',
    'chart: { url: "oci://registry.example.com/charts/acme-app", version: 2.0.0 }',
    'values: { replicas: 1, feature: { a: true } }',
    ''
  ].join('\n'))
  const userValues = await wd.write('user.yaml', 'feature: { b: true }\n')
  const r = agent({ server: undefined, fromFile, inputs: { userValues, needLicense: false } })
  t.equal((await once(r)).outcome, 'applied')
  t.same(applier.applied[0]?.desired.values, { replicas: 1, feature: { a: true, b: true } })
  t.equal((await once(r)).outcome, 'unchanged')
  await wd.write('spec.yaml', 'channel: stable\nversion: 2.0.0\nchart: { url: "ftp://x", version: 1 }\n')
  t.equal((await once(r)).outcome, 'config-error', 'an invalid spec file is a configuration error')
})
