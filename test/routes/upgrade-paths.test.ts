/**
 * Upgrade paths through the API, on both databases: upgradeFrom on publish, required
 * memberships (POST and PATCH), GET /channels/:name/path, NO_UPGRADE_PATH on both spec
 * endpoints, and the last served version standing in for the W&B operator's applied version
 * across a restart and a second replica.
 */
import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { buildTestServer, testDrivers, type TestServer, type TestServerOptions } from '../helpers/server.js'
import { twoReplicas } from '../helpers/replicas.js'
import { assertProblem, auth } from '../helpers/problem.js'

const basic = (license: string) => ({ authorization: 'Basic ' + Buffer.from(`license:${license}`).toString('base64') })
const OPERATOR = '/api/v1/operator/channel'

async function promote (s: TestServer, version: string, body: Record<string, unknown> = {}, channel = 'stable'): Promise<LightMyRequestResponse> {
  return await s.app.inject({ method: 'POST', url: `/channels/${channel}/releases`, headers: auth(s.tokens.publisher), payload: { version, ...body } })
}

async function patch (s: TestServer, version: string, body: unknown, channel = 'stable', token = s.tokens.publisher): Promise<LightMyRequestResponse> {
  return await s.app.inject({ method: 'PATCH', url: `/channels/${channel}/releases/${version}`, headers: auth(token), payload: body as Record<string, unknown> })
}

async function audit (s: TestServer): Promise<Array<{ action: string, target: string, detail: Record<string, unknown> }>> {
  return (await s.app.inject({ url: '/audit', headers: auth(s.tokens.admin) })).json().entries
}

async function spec (s: TestServer, license: string, applied?: string): Promise<LightMyRequestResponse> {
  return await s.app.inject({ url: '/channels/stable/spec', headers: { ...auth(license), ...(applied !== undefined && { 'chartcast-applied': applied }) } })
}

async function operatorVersion (s: TestServer, license: string): Promise<string> {
  const res = await s.app.inject({ url: OPERATOR, headers: basic(license) })
  if (res.statusCode !== 200) throw new Error(`operator pull answered ${res.statusCode}: ${res.body}`)
  return (res.json() as { values: { image: { tag: string } } }).values.image.tag
}

async function path (s: TestServer, from: string, channel = 'stable'): Promise<LightMyRequestResponse> {
  return await s.app.inject({ url: `/channels/${channel}/path?from=${encodeURIComponent(from)}`, headers: auth(s.tokens.reader) })
}

/** Publishes each version with its image tag in the values (so an operator answer tells the version). */
async function publish (t: Test, s: TestServer, version: string, upgradeFrom?: string): Promise<void> {
  const res = await s.publish(version, { values: { image: { tag: version } }, ...(upgradeFrom !== undefined && { upgradeFrom }) })
  t.equal(res.statusCode, 201, res.body)
}

/** stable: 1.0.0, 1.5.0 (required), 2.0.0 (upgradeFrom >=1.5.0). */
async function guarded (t: Test, s: TestServer): Promise<void> {
  await s.putChannel('stable')
  await publish(t, s, '1.0.0')
  await publish(t, s, '1.5.0')
  await publish(t, s, '2.0.0', '>=1.5.0')
  t.equal((await promote(s, '1.0.0')).statusCode, 201)
  t.equal((await promote(s, '1.5.0', { required: true })).statusCode, 201)
  t.equal((await promote(s, '2.0.0')).statusCode, 201)
}

for (const driver of testDrivers()) {
  t.test(driver, async (t) => {
    const options: TestServerOptions = { driver }

    t.test('a release published with upgradeFrom shows it; without, null', async (t) => {
      const s = await buildTestServer(t, options)
      const res = await s.publish('2.0.0', { upgradeFrom: '>=1.4.0 <2.0.0' })
      t.equal(res.statusCode, 201, res.body)
      t.equal(res.json().upgradeFrom, '>=1.4.0 <2.0.0')
      t.equal((await s.app.inject({ url: '/releases/2.0.0', headers: auth(s.tokens.reader) })).json().upgradeFrom, '>=1.4.0 <2.0.0')
      t.equal((await s.publish('1.0.0')).json().upgradeFrom, null)
      const list = (await s.app.inject({ url: '/releases', headers: auth(s.tokens.reader) })).json().releases as Array<{ version: string, upgradeFrom: string | null }>
      t.same(list.map((r) => [r.version, r.upgradeFrom]), [['2.0.0', '>=1.4.0 <2.0.0'], ['1.0.0', null]])
      t.match((await audit(s)).find((e) => e.target === 'release:2.0.0'), { action: 'release.publish', detail: { upgradeFrom: '>=1.4.0 <2.0.0' } })
    })

    t.test('upgradeFrom is immutable: the same again is 200, another range 409 RELEASE_CONFLICT', async (t) => {
      const s = await buildTestServer(t, options)
      t.equal((await s.publish('2.0.0', { upgradeFrom: '>=1.4.0' })).statusCode, 201)
      t.equal((await s.publish('2.0.0', { upgradeFrom: '>=1.4.0' })).statusCode, 200)
      assertProblem(t, await s.publish('2.0.0', { upgradeFrom: '>=1.3.0' }), 409, 'RELEASE_CONFLICT')
      assertProblem(t, await s.publish('2.0.0'), 409, 'RELEASE_CONFLICT')
      t.equal((await s.publish('1.0.0')).statusCode, 201)
      assertProblem(t, await s.publish('1.0.0', { upgradeFrom: '>=0.1.0' }), 409, 'RELEASE_CONFLICT')
    })

    t.test('an upgradeFrom that is not a semver range is 400 VALIDATION_FAILED, nothing stored', async (t) => {
      const s = await buildTestServer(t, options)
      for (const upgradeFrom of ['latest', '', '>=1.x.y.z', 42]) {
        assertProblem(t, await s.publish('2.0.0', { upgradeFrom }), 400, 'VALIDATION_FAILED')
      }
      assertProblem(t, await s.app.inject({ url: '/releases/2.0.0', headers: auth(s.tokens.reader) }), 404, 'RELEASE_NOT_FOUND')
      t.equal((await audit(s)).filter((e) => e.action === 'release.publish').length, 0)
    })

    t.test('POST with required: true marks the membership; the channel lists it', async (t) => {
      const s = await buildTestServer(t, options)
      await s.putChannel('stable')
      await publish(t, s, '1.0.0')
      await publish(t, s, '1.5.0')
      t.same((await promote(s, '1.0.0')).json(), { channel: 'stable', version: '1.0.0', promoted: true, required: false, head: '1.0.0' })
      t.same((await promote(s, '1.5.0', { required: true })).json(), { channel: 'stable', version: '1.5.0', promoted: true, required: true, head: '1.5.0' })
      const detail = (await s.app.inject({ url: '/channels/stable', headers: auth(s.tokens.reader) })).json()
      t.same(detail.releases.map((r: { version: string, required: boolean }) => [r.version, r.required]), [['1.5.0', true], ['1.0.0', false]])
      t.match((await audit(s)).find((e) => e.action === 'channel.promote' && e.detail.version === '1.5.0'), { detail: { required: true } })
    })

    t.test('POST of a release already in the channel changes only required: 200, one audit row, a new revision', async (t) => {
      const s = await buildTestServer(t, options)
      await s.putChannel('stable')
      await publish(t, s, '1.0.0')
      await promote(s, '1.0.0')
      const revision = async () => (await s.app.inject({ url: '/channels/stable', headers: auth(s.tokens.reader) })).json().revision as number
      const before = await revision()
      const res = await promote(s, '1.0.0', { required: true })
      t.equal(res.statusCode, 200, res.body)
      t.same(res.json(), { channel: 'stable', version: '1.0.0', promoted: false, required: true, head: '1.0.0' })
      t.equal(await revision(), before + 1)
      const again = await promote(s, '1.0.0', { required: true })
      t.same(again.json(), { channel: 'stable', version: '1.0.0', promoted: false, required: true, head: '1.0.0' })
      t.equal((await promote(s, '1.0.0')).json().required, true, 'a POST without required leaves it')
      t.equal(await revision(), before + 1, 'nothing changed twice')
      t.same((await audit(s)).filter((e) => e.action === 'channel.require').map((e) => e.detail), [{ version: '1.0.0', required: true }])
    })

    t.test('PATCH sets required and unsets it, each an audit row; the same again changes nothing', async (t) => {
      const s = await buildTestServer(t, options)
      await s.putChannel('stable')
      await publish(t, s, '1.0.0')
      await promote(s, '1.0.0')
      const set = await patch(s, '1.0.0', { required: true })
      t.equal(set.statusCode, 200, set.body)
      t.same(set.json(), { channel: 'stable', version: '1.0.0', required: true, changed: true })
      t.same((await patch(s, '1.0.0', { required: true })).json(), { channel: 'stable', version: '1.0.0', required: true, changed: false })
      t.same((await patch(s, '1.0.0', { required: false })).json(), { channel: 'stable', version: '1.0.0', required: false, changed: true })
      t.same((await audit(s)).filter((e) => e.action === 'channel.require').map((e) => e.detail).reverse(),
        [{ version: '1.0.0', required: true }, { version: '1.0.0', required: false }])
      const detail = (await s.app.inject({ url: '/channels/stable', headers: auth(s.tokens.reader) })).json()
      t.equal(detail.releases[0].required, false)
    })

    t.test('PATCH refusals: 404s, bad bodies, a reader; nothing stored', async (t) => {
      const s = await buildTestServer(t, options)
      await s.putChannel('stable')
      await publish(t, s, '1.0.0')
      await publish(t, s, '1.1.0')
      await promote(s, '1.0.0')
      await promote(s, '1.1.0')
      t.equal((await s.app.inject({ method: 'DELETE', url: '/channels/stable/releases/1.1.0', headers: auth(s.tokens.publisher) })).statusCode, 204)
      assertProblem(t, await patch(s, '1.0.0', { required: true }, 'nope'), 404, 'CHANNEL_NOT_FOUND')
      assertProblem(t, await patch(s, '9.9.9', { required: true }), 404, 'RELEASE_NOT_IN_CHANNEL')
      assertProblem(t, await patch(s, '1.1.0', { required: true }), 404, 'RELEASE_NOT_IN_CHANNEL')
      assertProblem(t, await patch(s, 'v1', { required: true }), 400, 'VALIDATION_FAILED')
      assertProblem(t, await patch(s, '1.0.0', {}), 400, 'VALIDATION_FAILED')
      assertProblem(t, await patch(s, '1.0.0', { required: 'yes' }), 400, 'VALIDATION_FAILED')
      assertProblem(t, await patch(s, '1.0.0', { required: true, extra: 1 }), 400, 'VALIDATION_FAILED')
      assertProblem(t, await patch(s, '1.0.0', { required: true }, 'stable', s.tokens.reader), 403, 'FORBIDDEN')
      t.equal((await audit(s)).filter((e) => e.action === 'channel.require').length, 0)
      t.equal((await s.app.inject({ url: '/channels/stable', headers: auth(s.tokens.reader) })).json().releases[0].required, false)
    })

    t.test('the spec endpoint gives the next hop from Chartcast-Applied: the required release first', async (t) => {
      const s = await buildTestServer(t, options)
      await guarded(t, s)
      const license = await s.license({ channels: ['stable'] })
      t.equal((await spec(s, license, '1.0.0')).json().version, '1.5.0', 'stops at the required release')
      t.equal((await spec(s, license, '1.5.0')).json().version, '2.0.0')
      t.equal((await spec(s, license, '2.0.0')).json().version, '2.0.0')
      t.equal((await spec(s, await s.license({ sub: 'fresh', channels: ['stable'] }))).json().version, '2.0.0', 'a fresh install gets the highest')
      t.equal((await s.app.inject({ url: '/channels/stable/spec?version=1.0.0', headers: { ...auth(license), 'chartcast-applied': '1.5.0' } })).json().version, '1.0.0', 'a pin is served as today')
    })

    t.test('a PATCH takes effect on the next pull', async (t) => {
      const s = await buildTestServer(t, options)
      await guarded(t, s)
      const license = await s.license({ channels: ['stable'] })
      t.equal((await spec(s, license, '1.0.0')).json().version, '1.5.0')
      t.equal((await patch(s, '1.5.0', { required: false })).statusCode, 200)
      // 2.0.0 still refuses 1.0.0 (upgradeFrom >=1.5.0): 1.5.0 is the highest that admits it.
      t.equal((await spec(s, license, '1.0.0')).json().version, '1.5.0')
      t.equal((await spec(s, license, '1.2.0')).json().version, '1.5.0')
      await publish(t, s, '1.9.0')
      await promote(s, '1.9.0')
      t.equal((await spec(s, license, '1.0.0')).json().version, '1.9.0', 'no longer required: passed')
    })

    t.test('nothing up to the cap admits the applied version: 409 NO_UPGRADE_PATH on both spec endpoints', async (t) => {
      const s = await buildTestServer(t, options)
      await s.putChannel('stable')
      await publish(t, s, '1.0.0')
      await publish(t, s, '1.5.0', '>=1.2.0')
      await publish(t, s, '2.0.0')
      await promote(s, '1.0.0')
      const license = await s.license({ channels: ['stable'] })
      // The W&B operator is served 1.0.0 first: that stands in for what it runs.
      t.equal(await operatorVersion(s, license), '1.0.0')
      await promote(s, '1.5.0', { required: true })
      await promote(s, '2.0.0')
      const body = assertProblem(t, await spec(s, license, '1.0.0'), 409, 'NO_UPGRADE_PATH')
      t.match(body.detail, /from 1\.0\.0 .*release 1\.5\.0 does not admit/)
      const operator = assertProblem(t, await s.app.inject({ url: OPERATOR, headers: basic(license) }), 409, 'NO_UPGRADE_PATH')
      t.match(operator.detail, /from 1\.0\.0 .*1\.5\.0/)
      await s.app.checkins.flush()
      t.match((await s.app.inject({ url: '/deployments/cluster-1', headers: auth(s.tokens.reader) })).json(),
        { appliedVersion: null, servedVersion: '1.0.0' }, 'the refused pulls are check-ins: it keeps running 1.0.0, so it does not go stale')
      t.equal(s.app.servedVersions.get('cluster-1'), '1.0.0')
      t.equal((await spec(s, license, '1.2.0')).json().version, '1.5.0', 'admitted from 1.2.0')
      t.equal((await spec(s, await s.license({ sub: 'fresh', channels: ['stable'] }))).json().version, '2.0.0', 'a fresh install is not refused')
    })

    t.test('GET /channels/:name/path lists the hops; empty at the top; 409 and 400 where due', async (t) => {
      const s = await buildTestServer(t, options)
      await guarded(t, s)
      const res = await path(s, '1.0.0')
      t.equal(res.statusCode, 200, res.body)
      t.same(res.json(), { from: '1.0.0', hops: ['1.5.0', '2.0.0'], to: '2.0.0' })
      t.same((await path(s, '1.5.0')).json(), { from: '1.5.0', hops: ['2.0.0'], to: '2.0.0' })
      t.same((await path(s, '2.0.0')).json(), { from: '2.0.0', hops: [], to: '2.0.0' })
      t.same((await path(s, '0.1.0')).json(), { from: '0.1.0', hops: ['1.5.0', '2.0.0'], to: '2.0.0' }, 'from a version never in the channel')
      await publish(t, s, '3.0.0', '>=2.5.0')
      await promote(s, '3.0.0', { required: true })
      t.match(assertProblem(t, await path(s, '2.0.0'), 409, 'NO_UPGRADE_PATH').detail, /from 2\.0\.0 .*3\.0\.0/)
      t.match(assertProblem(t, await path(s, '1.0.0'), 409, 'NO_UPGRADE_PATH').detail, /from 2\.0\.0/, 'stuck on the way: named where')
      for (const bad of ['v1', '1.0', 'latest']) assertProblem(t, await path(s, bad), 400, 'VALIDATION_FAILED')
      assertProblem(t, await s.app.inject({ url: '/channels/stable/path', headers: auth(s.tokens.reader) }), 400, 'VALIDATION_FAILED')
      assertProblem(t, await path(s, '1.0.0', 'nope'), 404, 'CHANNEL_NOT_FOUND')
      await s.putChannel('empty')
      assertProblem(t, await path(s, '1.0.0', 'empty'), 404, 'CHANNEL_EMPTY')
      assertProblem(t, await s.app.inject({ url: '/channels/stable/path?from=1.0.0' }), 401, 'UNAUTHORIZED')
    })

    t.test('the W&B operator climbs one hop per poll: what it was served stands in for what it runs', async (t) => {
      const s = await buildTestServer(t, options)
      await s.putChannel('stable')
      await publish(t, s, '1.0.0')
      await publish(t, s, '1.5.0')
      await publish(t, s, '2.0.0', '>=1.5.0')
      await promote(s, '1.0.0')
      const license = await s.license({ channels: ['stable'] })
      t.equal(await operatorVersion(s, license), '1.0.0')
      await promote(s, '1.5.0', { required: true })
      await promote(s, '2.0.0')
      t.equal(await operatorVersion(s, license), '1.5.0', 'not pushed past the required release')
      t.equal(await operatorVersion(s, license), '2.0.0')
      t.equal(await operatorVersion(s, await s.license({ sub: 'new-operator', channels: ['stable'] })), '2.0.0', 'never seen before: a fresh install')
    })

    t.test('a pull that says what it runs wins over what was served, and forgets it', async (t) => {
      const s = await buildTestServer(t, options)
      await guarded(t, s)
      const license = await s.license({ channels: ['stable'] })
      t.equal((await spec(s, license, '1.0.0')).json().version, '1.5.0')
      t.equal((await spec(s, license)).json().version, '2.0.0', 'no header and served nothing headerless: a fresh install')
      t.equal((await spec(s, license)).json().version, '2.0.0')
      t.equal(s.app.servedVersions.get('cluster-1'), '2.0.0')
      t.equal((await spec(s, license, '1.0.0')).json().version, '1.5.0', 'the header wins')
      t.equal(s.app.servedVersions.get('cluster-1'), null, 'and the stand-in is forgotten')
    })

    t.test('the last served version survives a restart (read back from the deployments table)', async (t) => {
      const s = await buildTestServer(t, options)
      await s.putChannel('stable')
      await publish(t, s, '1.0.0')
      await publish(t, s, '1.5.0')
      await publish(t, s, '2.0.0', '>=1.5.0')
      await promote(s, '1.0.0')
      const license = await s.license({ channels: ['stable'] })
      t.equal(await operatorVersion(s, license), '1.0.0')
      await s.app.checkins.flush()
      await promote(s, '1.5.0', { required: true })
      await promote(s, '2.0.0')
      const restarted = await buildTestServer(t, { driver, database: s.database, keyPair: s.keyPair, authSecret: s.authSecret })
      t.equal(restarted.app.servedVersions.get('cluster-1'), '1.0.0', 'loaded at start-up')
      t.equal(await operatorVersion(restarted, license), '1.5.0', 'the restarted server does not take it for a fresh install')
    })

    t.test('a second replica learns what the first served from the check-ins it wrote', async (t) => {
      const { a, b } = await twoReplicas(t, driver)
      await guarded(t, a)
      const license = await a.license({ channels: ['stable'] })
      t.equal((await a.app.inject({ method: 'PATCH', url: '/channels/stable/releases/1.5.0', headers: auth(a.tokens.publisher), payload: { required: false } })).statusCode, 200)
      await b.app.specCache.refreshChannel('stable')
      t.equal(await operatorVersion(a, license), '2.0.0', 'served 2.0.0 by replica a')
      await a.app.checkins.flush()
      // 2.1.0 is required: an operator known to run 2.0.0 stops there; one taken for a fresh
      // install would get 2.2.0.
      await publish(t, a, '2.1.0', '>=2.0.0')
      await publish(t, a, '2.2.0')
      await promote(a, '2.1.0', { required: true })
      await promote(a, '2.2.0')
      await b.app.specCache.refreshChannel('stable')
      t.equal(await b.app.servedVersions.refresh() > 0, true, 'replica b read check-ins')
      t.equal(b.app.servedVersions.get('cluster-1'), '2.0.0')
      t.equal(await operatorVersion(b, license), '2.1.0', 'replica b stops it at the required release, as a would')
      t.equal(await operatorVersion(b, await a.license({ sub: 'other', channels: ['stable'] })), '2.2.0', 'a deployment never seen: the highest')
    })
  })
}
