import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { parseRetryAfter, SpecClient } from '../../src/agent/client.js'
import { FakeSpecServer, makeSpec } from '../helpers/agent-fake-server.js'

async function fake (t: { teardown: (fn: () => unknown) => void }) {
  const server = await FakeSpecServer.start()
  t.teardown(() => server.stop().catch(() => {}))
  return server
}

t.test('200: parses the spec, returns ETag and the poll interval hint', async (t) => {
  const server = await fake(t)
  server.publish(makeSpec('1.4.0'))
  server.pollIntervalSeconds = 3600
  const result = await new SpecClient({ server: server.url, channel: 'stable' }).fetchSpec({ license: 'good-license' })
  t.equal(result.kind, 'ok')
  if (result.kind !== 'ok') return
  t.equal(result.spec.version, '1.4.0')
  t.same(result.spec.chart, { url: 'https://charts.example.com', name: 'acme-app', version: '0.4.0' })
  t.match(result.etag, /^".+"$/)
  t.equal(result.pollIntervalMs, 3_600_000)
  t.equal(server.requests[0]?.authorization, 'Bearer good-license')
})

t.test('metadata.pollInterval is the fallback hint when the header is absent', async (t) => {
  const server = await fake(t)
  server.publish({ ...makeSpec('1.4.0'), metadata: { pollInterval: '1h30m' } })
  const result = await new SpecClient({ server: server.url, channel: 'stable' }).fetchSpec({ license: 'good-license' })
  t.equal(result.kind === 'ok' && result.pollIntervalMs, 5_400_000)
})

t.test('304 when If-None-Match matches', async (t) => {
  const server = await fake(t)
  server.publish(makeSpec('1.4.0'))
  const client = new SpecClient({ server: server.url, channel: 'stable' })
  const first = await client.fetchSpec({ license: 'good-license' })
  const etag = first.kind === 'ok' ? first.etag : undefined
  t.ok(etag)
  t.same(await client.fetchSpec({ license: 'good-license', etag }), { kind: 'not-modified', pollIntervalMs: undefined })
  t.equal(server.requests[1]?.ifNoneMatch, etag)
})

t.test('problem codes are classified', async (t) => {
  const server = await fake(t)
  server.publish(makeSpec('1.4.0'))
  const client = new SpecClient({ server: server.url, channel: 'stable', now: () => Date.parse('2030-01-01T00:00:00Z') })
  t.match(await client.fetchSpec({ license: 'wrong' }), { kind: 'refused', status: 401, code: 'LICENSE_INVALID' })
  server.refusals.set('good-license', { status: 403, code: 'CHANNEL_NOT_ENTITLED' })
  t.match(await client.fetchSpec({ license: 'good-license' }), { kind: 'refused', status: 403, code: 'CHANNEL_NOT_ENTITLED' })
  server.refusals.clear()
  t.match(await new SpecClient({ server: server.url, channel: 'nope' }).fetchSpec({ license: 'good-license' }), { kind: 'rejected', status: 404, code: 'CHANNEL_NOT_FOUND' })
  t.match(await new SpecClient({ server: server.url, channel: 'stable', pin: '9.9.9' }).fetchSpec({ license: 'good-license' }), { kind: 'rejected', status: 404, code: 'RELEASE_NOT_FOUND' })
  server.failure = { status: 429, code: 'RATE_LIMITED', retryAfter: '7' }
  t.match(await client.fetchSpec({ license: 'good-license' }), { kind: 'unavailable', status: 429, code: 'RATE_LIMITED', retryAfterMs: 7000 })
  server.failure = { status: 503, code: 'DATABASE_UNAVAILABLE', retryAfter: 'Tue, 01 Jan 2030 00:01:00 GMT' }
  t.match(await client.fetchSpec({ license: 'good-license' }), { kind: 'unavailable', status: 503, code: 'DATABASE_UNAVAILABLE', retryAfterMs: 60_000 })
})

t.test('network errors, malformed bodies and invalid specs are "unavailable"', async (t) => {
  const server = await fake(t)
  server.publish(makeSpec('1.4.0'))
  const client = new SpecClient({ server: server.url, channel: 'stable' })
  server.rawBody = '{not json'
  t.match(await client.fetchSpec({ license: 'good-license' }), { kind: 'unavailable', reason: /not valid JSON/ })
  server.rawBody = JSON.stringify({ ...makeSpec('1.4.0'), chart: { url: 'https://x', name: '-x', version: '1' } })
  t.match(await client.fetchSpec({ license: 'good-license' }), { kind: 'unavailable', reason: /chart.name/ })
  await server.stop()
  const down = await client.fetchSpec({ license: 'good-license' })
  t.match(down, { kind: 'unavailable', reason: /^network error: [A-Z_]+$/ })
  t.notMatch(JSON.stringify(down), /good-license/, 'the license is not in the failure')
})

t.test('a hung server times out', async (t) => {
  const hung = createServer(() => { /* never answers */ })
  await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { hung.closeAllConnections(); hung.close() })
  const url = `http://127.0.0.1:${(hung.address() as AddressInfo).port}`
  t.match(await new SpecClient({ server: url, channel: 'stable', timeoutMs: 50 }).fetchSpec({ license: 'x' }), { kind: 'unavailable', reason: 'request timed out' })
})

t.test('URL keeps a path prefix, encodes the channel and adds the pin', async (t) => {
  t.equal(new SpecClient({ server: 'https://deploy.example.com/chartcast', channel: 'stable' }).url, 'https://deploy.example.com/chartcast/channels/stable/spec')
  t.equal(new SpecClient({ server: 'https://deploy.example.com/', channel: 'a b', pin: '1.2.3' }).url, 'https://deploy.example.com/channels/a%20b/spec?version=1.2.3')
})

t.test('Retry-After parsing', async (t) => {
  t.equal(parseRetryAfter('120', 0), 120_000)
  t.equal(parseRetryAfter(null, 0), undefined)
  t.equal(parseRetryAfter('soon', 0), undefined)
  t.equal(parseRetryAfter('Thu, 01 Jan 1970 00:00:10 GMT', 4000), 6000)
})

t.test('Chartcast-Applied: sent when given as a strict semver, left out otherwise', async (t) => {
  const server = await fake(t)
  server.publish(makeSpec('1.4.0'))
  const client = new SpecClient({ server: server.url, channel: 'stable' })
  await client.fetchSpec({ license: 'good-license' })
  await client.fetchSpec({ license: 'good-license', applied: '1.3.0' })
  await client.fetchSpec({ license: 'good-license', applied: '2.0.0-rc.1' })
  await client.fetchSpec({ license: 'good-license', applied: 'v1.3.0' })
  await client.fetchSpec({ license: 'good-license', applied: '1.3.0+build.5' })
  t.same(server.requests.map((r) => r.applied), [undefined, '1.3.0', '2.0.0-rc.1', undefined, undefined])
})

t.test('sendReport: 202 accepted; refusals, rejections and failures classified', async (t) => {
  const server = await fake(t)
  const client = new SpecClient({ server: `${server.url}/`, channel: 'stable', now: () => Date.parse('2030-01-01T00:00:00Z') })
  t.equal(client.reportsUrl, `${server.url}/channels/stable/reports`)
  const report = { version: '1.4.0', outcome: 'applied' as const, digest: 'ab'.repeat(32) }
  t.same(await client.sendReport({ license: 'good-license', report }), { kind: 'accepted' })
  t.same(server.reportRequests[0]?.body, report)
  t.equal(server.reportRequests[0]?.authorization, 'Bearer good-license')
  t.match(await client.sendReport({ license: 'wrong', report }), { kind: 'refused', status: 401, code: 'LICENSE_INVALID' })
  t.match(await client.sendReport({ license: 'good-license', report: { version: '1.4.0', outcome: 'failed', detail: 'x'.repeat(4097) } }), { kind: 'rejected', status: 400, code: 'VALIDATION_FAILED' })
  t.match(await new SpecClient({ server: server.url, channel: 'nope' }).sendReport({ license: 'good-license', report }), { kind: 'rejected', status: 404, code: 'CHANNEL_NOT_FOUND' })
  server.reportFailure = { status: 429, code: 'RATE_LIMITED', retryAfter: '9' }
  t.match(await client.sendReport({ license: 'good-license', report }), { kind: 'unavailable', status: 429, code: 'RATE_LIMITED', retryAfterMs: 9000 })
  server.reportFailure = { status: 500, code: 'INTERNAL' }
  t.match(await client.sendReport({ license: 'good-license', report }), { kind: 'unavailable', status: 500 })
  server.reportFailure = 'drop'
  t.match(await client.sendReport({ license: 'good-license', report }), { kind: 'unavailable', reason: /network error/ })
  server.reportFailure = 'hang'
  t.match(await new SpecClient({ server: server.url, channel: 'stable', timeoutMs: 200 }).sendReport({ license: 'good-license', report }), { kind: 'unavailable', reason: 'request timed out' })
  await server.stop()
  t.match(await client.sendReport({ license: 'good-license', report }), { kind: 'unavailable', reason: /^network error: / })
})
