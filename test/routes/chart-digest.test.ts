import t from 'tap'
import { buildTestServer, testDrivers, type TestServer } from '../helpers/server.js'
import { assertProblem } from '../helpers/problem.js'

const DIGEST = 'sha256:' + '0123456789abcdef'.repeat(4)
const OTHER_DIGEST = 'sha256:' + 'fedcba9876543210'.repeat(4)
const chart = { url: 'https://charts.example.com/acme', name: 'acme-app', version: '0.1.0' }

async function auditCount (s: TestServer): Promise<number> {
  const res = await s.app.inject({ url: '/audit?limit=500', headers: { authorization: `Bearer ${s.tokens.admin}` } })
  return (res.json().entries as unknown[]).length
}

async function releaseCount (s: TestServer): Promise<number> {
  const res = await s.app.inject({ url: '/releases', headers: { authorization: `Bearer ${s.tokens.reader}` } })
  return (res.json().releases as unknown[]).length
}

async function pullBoth (s: TestServer): Promise<{ spec: string, operator: string }> {
  const license = await s.license({ channels: ['stable'], channel: 'stable' })
  const spec = await s.app.inject({ url: '/channels/stable/spec', headers: { authorization: `Bearer ${license}` } })
  const operator = await s.app.inject({ url: '/api/v1/operator/channel', headers: { authorization: `Basic ${Buffer.from(`license:${license}`).toString('base64')}` } })
  if (spec.statusCode !== 200 || operator.statusCode !== 200) throw new Error(`pull failed: ${spec.statusCode} ${operator.statusCode}`)
  return { spec: spec.body, operator: operator.body }
}

for (const driver of testDrivers()) {
  t.test(driver, async (t) => {
    t.test('a release with chart.digest stores it, shows it, and serves it in both spec bodies', async (t) => {
      const s = await buildTestServer(t, { driver })
      const res = await s.publish('1.0.0', { chart: { ...chart, digest: DIGEST } })
      t.equal(res.statusCode, 201, res.body)
      t.same(res.json().chart, { ...chart, digest: DIGEST })
      const stored = await s.app.inject({ url: '/releases/1.0.0', headers: { authorization: `Bearer ${s.tokens.reader}` } })
      t.same(stored.json().chart, { ...chart, digest: DIGEST })
      await s.putChannel('stable')
      t.equal((await s.promote('stable', '1.0.0')).statusCode, 201)
      const { spec, operator } = await pullBoth(s)
      t.same(JSON.parse(spec).chart, { ...chart, digest: DIGEST }, 'the spec body (the one that is signed) carries the digest')
      t.same(JSON.parse(operator).chart, { ...chart, digest: DIGEST })
    })

    t.test('without a digest, both bodies are byte for byte what they were before digests existed', async (t) => {
      const s = await buildTestServer(t, { driver })
      t.equal((await s.publish('1.0.0', { values: { a: 1 } })).statusCode, 201)
      await s.putChannel('stable')
      await s.promote('stable', '1.0.0')
      const { spec, operator } = await pullBoth(s)
      t.equal(operator, '{"chart":{"name":"acme-app","url":"https://charts.example.com/acme","version":"0.1.0"},"metadata":{"channel":"stable","chartVersion":"0.1.0","version":"1.0.0"},"values":{"a":1}}')
      t.equal(spec, '{"channel":"stable","chart":{"name":"acme-app","url":"https://charts.example.com/acme","version":"0.1.0"},"metadata":{"channel":"stable","chartVersion":"0.1.0","version":"1.0.0"},"values":{"a":1},"version":"1.0.0"}')
    })

    t.test('the digest is part of the immutable release: another or a missing digest is 409, the same one 200', async (t) => {
      const s = await buildTestServer(t, { driver })
      t.equal((await s.publish('1.0.0', { chart: { ...chart, digest: DIGEST } })).statusCode, 201)
      t.equal((await s.publish('1.0.0', { chart: { digest: DIGEST, ...chart } })).statusCode, 200)
      assertProblem(t, await s.publish('1.0.0', { chart: { ...chart, digest: OTHER_DIGEST } }), 409, 'RELEASE_CONFLICT')
      assertProblem(t, await s.publish('1.0.0', { chart }), 409, 'RELEASE_CONFLICT')
      const stored = await s.app.inject({ url: '/releases/1.0.0', headers: { authorization: `Bearer ${s.tokens.reader}` } })
      t.equal(stored.json().chart.digest, DIGEST)
    })

    t.test('a malformed chart.digest is 400 VALIDATION_FAILED and stores nothing', async (t) => {
      const s = await buildTestServer(t, { driver })
      const audits = await auditCount(s)
      for (const digest of ['sha256:' + 'AB'.repeat(32), 'sha256:abc', 'md5:' + 'ab'.repeat(16), 'ab'.repeat(32), '', 42]) {
        const res = await s.publish('1.0.0', { chart: { ...chart, digest } })
        assertProblem(t, res, 400, 'VALIDATION_FAILED')
      }
      t.equal(await releaseCount(s), 0)
      t.equal(await auditCount(s), audits)
    })

    t.test('a chart version that is a range is 400 VALIDATION_FAILED naming the range, and stores nothing', async (t) => {
      const s = await buildTestServer(t, { driver })
      const audits = await auditCount(s)
      for (const version of ['^1.2.0', '~1.2', '>=1', '1.x', '1.2', '*']) {
        const res = await s.publish('1.0.0', { chart: { ...chart, version } })
        const problem = assertProblem(t, res, 400, 'VALIDATION_FAILED')
        t.match(problem.detail, /is a range/, version)
      }
      t.equal(await releaseCount(s), 0)
      t.equal(await auditCount(s), audits)
    })

    t.test('the database itself refuses a malformed chart digest (a write that bypasses the API)', async (t) => {
      const s = await buildTestServer(t, { driver })
      const error = await s.database.db.execute(
        "insert into releases (version, chart_url, chart_name, chart_version, chart_digest, values, digest, created_by) values ('9.9.9', 'https://x.example.com', 'x', '1.0.0', 'sha256:nothex', '{}'::jsonb, 'd', 'test')"
      ).then(() => null, (e: unknown) => e)
      t.match(String((error as { cause?: unknown })?.cause ?? error), /releases_chart_digest_format/)
    })
  })
}
