import t from 'tap'
import { buildTestServer, testDrivers, type TestServer } from '../helpers/server.js'
import { assertProblem } from '../helpers/problem.js'

const chart = { url: 'https://charts.example.com/acme', name: 'acme-app', version: '0.1.0' }

async function auditCount (s: TestServer): Promise<number> {
  const res = await s.app.inject({ url: '/audit?limit=500', headers: { authorization: `Bearer ${s.tokens.admin}` } })
  return (res.json().entries as unknown[]).length
}

async function releaseVersions (s: TestServer): Promise<string[]> {
  const res = await s.app.inject({ url: '/releases', headers: { authorization: `Bearer ${s.tokens.reader}` } })
  return (res.json().releases as Array<{ version: string }>).map((r) => r.version)
}

for (const driver of testDrivers()) {
  t.test(driver, async (t) => {
    t.test('POST /releases creates a release: 201 with the stored release and a Location', async (t) => {
      const s = await buildTestServer(t, { driver })
      const res = await s.app.inject({
        method: 'POST',
        url: '/releases',
        headers: { authorization: `Bearer ${s.tokens.publisher}` },
        payload: { version: '1.2.0', chart, values: { image: { tag: '1.2.0' } }, notes: 'first' }
      })
      t.equal(res.statusCode, 201, res.body)
      t.equal(res.headers.location, '/releases/1.2.0')
      const body = res.json()
      t.match(body, { version: '1.2.0', chart, values: { image: { tag: '1.2.0' } }, notes: 'first', createdBy: 'rita-release' })
      t.match(body.digest, /^sha256:[0-9a-f]{64}$/)
      t.ok(!Number.isNaN(Date.parse(body.createdAt)))
      t.same(await releaseVersions(s), ['1.2.0'])
    })

    t.test('an identical re-publish answers 200 with the same release and writes no audit row', async (t) => {
      const s = await buildTestServer(t, { driver })
      const first = await s.publish('1.0.0', { values: { a: 1, b: { c: 2 } } })
      t.equal(first.statusCode, 201)
      const audits = await auditCount(s)
      // Same content, keys in another order.
      const again = await s.app.inject({
        method: 'POST',
        url: '/releases',
        headers: { authorization: `Bearer ${s.tokens.publisher}` },
        payload: { values: { b: { c: 2 }, a: 1 }, chart: { version: chart.version, name: chart.name, url: chart.url }, version: '1.0.0' }
      })
      t.equal(again.statusCode, 200, again.body)
      t.same(again.json(), first.json())
      t.equal(await auditCount(s), audits)
    })

    t.test('publishing an existing version with other content is 409 RELEASE_CONFLICT and keeps the original', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.publish('1.0.0', { values: { a: 1 } })
      const audits = await auditCount(s)
      const res = await s.publish('1.0.0', { values: { a: 2 } })
      const problem = assertProblem(t, res, 409, 'RELEASE_CONFLICT')
      t.match(problem.detail, /1\.0\.0/)
      const stored = await s.app.inject({ url: '/releases/1.0.0', headers: { authorization: `Bearer ${s.tokens.reader}` } })
      t.same(stored.json().values, { a: 1 })
      t.equal(await auditCount(s), audits)
    })

    t.test('a YAML body is accepted with content-type application/yaml', async (t) => {
      const s = await buildTestServer(t, { driver })
      const yaml = [
        'version: 2.0.0-rc.1',
        'chart:',
        '  url: oci://registry.example.com/charts/acme',
        '  version: 2.0.0',
        'values:',
        '  replicas: 3',
        '  hosts: [a.example.com, b.example.com]',
        'notes: |',
        '  multi',
        '  line',
        ''
      ].join('\n')
      const res = await s.app.inject({ method: 'POST', url: '/releases', headers: { authorization: `Bearer ${s.tokens.publisher}`, 'content-type': 'application/yaml' }, payload: yaml })
      t.equal(res.statusCode, 201, res.body)
      t.match(res.json(), { version: '2.0.0-rc.1', chart: { url: 'oci://registry.example.com/charts/acme', version: '2.0.0' }, values: { replicas: 3, hosts: ['a.example.com', 'b.example.com'] }, notes: 'multi\nline\n' })
      t.notOk('name' in res.json().chart, 'oci chart without a name stays without one')
    })

    t.test('GET /releases lists every release, highest semver first', async (t) => {
      const s = await buildTestServer(t, { driver })
      for (const v of ['1.2.0', '1.10.0', '1.10.0-rc.1', '0.9.0', '2.0.0-alpha']) t.equal((await s.publish(v)).statusCode, 201)
      t.same(await releaseVersions(s), ['2.0.0-alpha', '1.10.0', '1.10.0-rc.1', '1.2.0', '0.9.0'])
    })

    t.test('GET /releases pages with limit and before=<nextBefore>, in semver order', async (t) => {
      const s = await buildTestServer(t, { driver })
      for (const v of ['1.2.0', '1.10.0', '1.10.0-rc.1', '0.9.0', '2.0.0-alpha']) t.equal((await s.publish(v)).statusCode, 201)
      const page = async (query: string) => (await s.app.inject({ url: `/releases?${query}`, headers: { authorization: `Bearer ${s.tokens.reader}` } })).json() as { releases: Array<{ version: string }>, nextBefore: string | null }
      const seen: string[] = []
      let query = 'limit=2'
      for (let i = 0; i < 5; i++) {
        const body = await page(query)
        seen.push(...body.releases.map((r) => r.version))
        if (body.nextBefore === null) break
        t.equal(body.releases.length, 2, 'a full page before the last')
        query = `limit=2&before=${encodeURIComponent(body.nextBefore)}`
      }
      t.same(seen, ['2.0.0-alpha', '1.10.0', '1.10.0-rc.1', '1.2.0', '0.9.0'], 'the pages together list every release once, in order')
      t.same(await page('limit=5'), { releases: (await page('limit=5')).releases, nextBefore: null }, 'an exact fit has no next page')
      t.equal((await page('limit=5')).releases.length, 5)
      t.same((await page('before=1.2.0')).releases.map((r) => r.version), ['0.9.0'], 'before need not be a published version')
      t.same((await page('')).nextBefore, null, 'default page size covers these')
      const refused: Array<[query: string, what: string]> = [['limit=0', 'zero'], ['limit=1001', 'over the maximum'], ['limit=x', 'not a number'], ['before=v1.0', 'non-semver cursor'], ['page=2', 'unknown parameter']]
      for (const [query, what] of refused) {
        const res = await s.app.inject({ url: `/releases?${query}`, headers: { authorization: `Bearer ${s.tokens.reader}` } })
        t.test(what, async (t) => { assertProblem(t, res, 400, 'VALIDATION_FAILED') })
      }
    })

    t.test('GET /releases on an empty server is an empty list', async (t) => {
      const s = await buildTestServer(t, { driver })
      t.same(await releaseVersions(s), [])
    })

    t.test('GET /releases/:version returns one release', async (t) => {
      const s = await buildTestServer(t, { driver })
      const created = await s.publish('3.1.4', { values: { pi: true } })
      const res = await s.app.inject({ url: '/releases/3.1.4', headers: { authorization: `Bearer ${s.tokens.reader}` } })
      t.equal(res.statusCode, 200)
      t.same(res.json(), created.json())
    })

    t.test('GET /releases/:version of an unpublished version is 404 RELEASE_NOT_FOUND', async (t) => {
      const s = await buildTestServer(t, { driver })
      const res = await s.app.inject({ url: '/releases/9.9.9', headers: { authorization: `Bearer ${s.tokens.reader}` } })
      t.match(assertProblem(t, res, 404, 'RELEASE_NOT_FOUND').detail, /9\.9\.9/)
    })

    t.test('GET /releases/:version with a non-semver version is 400 VALIDATION_FAILED', async (t) => {
      const s = await buildTestServer(t, { driver })
      assertProblem(t, await s.app.inject({ url: '/releases/v1.0.0', headers: { authorization: `Bearer ${s.tokens.reader}` } }), 400, 'VALIDATION_FAILED')
    })

    t.test('a reader cannot publish: 403 FORBIDDEN and nothing stored', async (t) => {
      const s = await buildTestServer(t, { driver })
      const res = await s.app.inject({ method: 'POST', url: '/releases', headers: { authorization: `Bearer ${s.tokens.reader}` }, payload: { version: '1.0.0', chart } })
      t.match(assertProblem(t, res, 403, 'FORBIDDEN').detail, /publisher/)
      t.same(await releaseVersions(s), [])
    })

    t.test('publishing without a token is 401 UNAUTHORIZED with WWW-Authenticate, nothing stored', async (t) => {
      const s = await buildTestServer(t, { driver })
      const res = await s.app.inject({ method: 'POST', url: '/releases', payload: { version: '1.0.0', chart } })
      assertProblem(t, res, 401, 'UNAUTHORIZED')
      t.match(res.headers['www-authenticate'], /^Bearer realm="chartcast"/)
      t.same(await releaseVersions(s), [])
    })

    t.test('listing releases without a token is 401 UNAUTHORIZED', async (t) => {
      const s = await buildTestServer(t, { driver })
      const res = await s.app.inject({ url: '/releases' })
      assertProblem(t, res, 401, 'UNAUTHORIZED')
      t.ok(res.headers['www-authenticate'])
    })

    t.test('a publisher token signed with another secret is 401 UNAUTHORIZED invalid_token', async (t) => {
      const s = await buildTestServer(t, { driver })
      const other = await buildTestServer(t, { driver })
      const res = await s.app.inject({ method: 'POST', url: '/releases', headers: { authorization: `Bearer ${other.tokens.admin}` }, payload: { version: '1.0.0', chart } })
      assertProblem(t, res, 401, 'UNAUTHORIZED')
      t.match(res.headers['www-authenticate'], /error="invalid_token"/)
    })

    t.test('a publish is counted in the metrics', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.publish('1.0.0')
      await s.publish('1.0.0')
      await s.publish('1.0.0', { values: { x: 1 } })
      const metrics = (await s.app.inject({ url: '/metrics' })).body
      t.match(metrics, /chartcast_publishes_total\{result="created"\} 1/)
      t.match(metrics, /chartcast_publishes_total\{result="identical"\} 1/)
      t.match(metrics, /chartcast_publishes_total\{result="conflict"\} 1/)
    })
  })
}
