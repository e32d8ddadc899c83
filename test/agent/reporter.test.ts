import t, { type Test } from 'tap'
import { SpecClient, type ApplyReport } from '../../src/agent/client.js'
import { DEFAULT_MAX_QUEUED_REPORTS, Reporter } from '../../src/agent/reporter.js'
import { FakeSpecServer } from '../helpers/agent-fake-server.js'
import { captureLogs } from '../helpers/agent-log.js'

// The report queue against the stand-in server: bounded, ordered, retried, never throwing.

async function setup (t: Test, opts: { now?: () => number } = {}) {
  const server = await FakeSpecServer.start()
  t.teardown(() => server.stop().catch(() => {}))
  const logs = captureLogs()
  const reporter = new Reporter({ client: new SpecClient({ server: server.url, channel: 'stable', timeoutMs: 5000 }), logger: logs.logger, ...opts })
  return { server, logs, reporter }
}

const applied = (n: number): ApplyReport & { outcome: 'applied' } => ({ version: `1.${n}.0`, outcome: 'applied', digest: 'a'.repeat(64) })
const deliver = (r: Reporter) => r.deliver('good-license', new AbortController().signal)

t.test(`the queue is bounded at ${DEFAULT_MAX_QUEUED_REPORTS}: the oldest are dropped with a warning, the rest go in order`, async (t) => {
  const { server, logs, reporter } = await setup(t)
  server.reportFailure = { status: 500, code: 'INTERNAL' }
  for (let n = 1; n <= 105; n++) reporter.recordAttempt(applied(n))
  await deliver(reporter)
  t.equal(server.reports.length, 0)
  t.equal(reporter.pending.length, 100)
  t.same(logs.find('report-dropped').map((l) => l.version), ['1.1.0', '1.2.0', '1.3.0', '1.4.0', '1.5.0'])
  t.equal(logs.find('report-dropped')[0]?.level, 40, 'warned')
  server.reportFailure = undefined
  await deliver(reporter)
  t.same(server.reports.map((b) => b.version), Array.from({ length: 100 }, (_, i) => `1.${i + 6}.0`))
  t.equal(reporter.pending.length, 0)
})

t.test('a report the server rejects (400) is dropped and does not block the ones behind it', async (t) => {
  const { server, logs, reporter } = await setup(t)
  reporter.recordAttempt(applied(1))
  reporter.recordAttempt({ version: '1.2.0', outcome: 'failed', detail: 'x'.repeat(5000) })
  reporter.recordAttempt(applied(3))
  await deliver(reporter)
  t.same(server.reportRequests.map((r) => r.status), [202, 400, 202])
  t.same(server.reports.map((b) => b.version), ['1.1.0', '1.3.0'])
  t.equal(logs.find('report-rejected')[0]?.code, 'VALIDATION_FAILED')
  t.equal(reporter.pending.length, 0)
})

t.test('a refused license or an unknown channel keep or drop as they should', async (t) => {
  const { server, reporter } = await setup(t)
  server.refusals.set('good-license', { status: 403, code: 'LICENSE_REVOKED' })
  reporter.recordAttempt(applied(1))
  await deliver(reporter)
  t.equal(reporter.pending.length, 1, 'a refused license may be renewed: kept')
  server.refusals.clear()
  server.channel = 'beta'
  await deliver(reporter)
  t.equal(server.reportRequests.at(-1)?.status, 404)
  t.equal(reporter.pending.length, 0, 'an unknown channel will not become known for this report: dropped')
})

t.test('Retry-After on 429 defers delivery until it has passed', async (t) => {
  let now = 1_000_000
  const { server, reporter } = await setup(t, { now: () => now })
  server.reportFailure = { status: 429, code: 'RATE_LIMITED', retryAfter: '30' }
  reporter.recordAttempt(applied(1))
  await deliver(reporter)
  t.equal(server.reportRequests.length, 1)
  server.reportFailure = undefined
  now += 29_000
  await deliver(reporter)
  t.equal(server.reportRequests.length, 1, 'not sent before Retry-After')
  now += 2_000
  await deliver(reporter)
  t.same(server.reports.map((b) => b.version), ['1.1.0'])
})

t.test('a skip is queued once per (version, reason); an attempt in between makes it news again', async (t) => {
  const { reporter } = await setup(t)
  const skip = (version: string) => ({ version, outcome: 'skipped' as const, detail: 'downgrade refused' })
  t.equal(reporter.recordSkip(skip('1.4.0'), 'downgrade-refused'), true)
  t.equal(reporter.recordSkip(skip('1.4.0'), 'downgrade-refused'), false)
  t.equal(reporter.recordSkip(skip('1.4.0'), 'maintenance-window'), true, 'another reason')
  t.equal(reporter.recordSkip(skip('1.3.0'), 'maintenance-window'), true, 'another version')
  reporter.recordAttempt(applied(6))
  t.equal(reporter.recordSkip(skip('1.3.0'), 'maintenance-window'), true)
  t.same(reporter.pending.map((r) => `${r.outcome} ${r.version}`), ['skipped 1.4.0', 'skipped 1.4.0', 'skipped 1.3.0', 'applied 1.6.0', 'skipped 1.3.0'])
})

t.test('an aborted signal sends nothing and keeps the queue', async (t) => {
  const { server, reporter } = await setup(t)
  reporter.recordAttempt(applied(1))
  const controller = new AbortController()
  controller.abort()
  await reporter.deliver('good-license', controller.signal)
  t.equal(server.reportRequests.length, 0)
  t.equal(reporter.pending.length, 1)
})
