import t from 'tap'
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { LightMyRequestResponse } from 'fastify'
import { buildTestServer, testDrivers, type TestServer } from '../helpers/server.js'
import { assertProblem, auth } from '../helpers/problem.js'

async function getChannel (s: TestServer, name: string): Promise<LightMyRequestResponse> {
  return await s.app.inject({ url: `/channels/${name}`, headers: auth(s.tokens.reader) })
}

async function spec (s: TestServer, channel: string): Promise<LightMyRequestResponse> {
  const license = await s.license({ channels: ['*'] })
  return await s.app.inject({ url: `/channels/${channel}/spec`, headers: auth(license) })
}

async function history (s: TestServer, channel: string): Promise<Array<Record<string, unknown>>> {
  return (await s.app.inject({ url: `/channels/${channel}/releases`, headers: auth(s.tokens.reader) })).json().events
}

/** A channels directory holding these files, removed after the test. */
function channelsDir (t: { teardown (fn: () => void): void }, files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'chartcast-channels-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text)
  return dir
}

async function auditCount (s: TestServer): Promise<number> {
  return (await s.app.inject({ url: '/audit', headers: auth(s.tokens.admin) })).json().entries.length as number
}

for (const driver of testDrivers()) {
  t.test(driver, async (t) => {
    t.test('PUT /channels/:name creates a channel: 201 with its settings', async (t) => {
      const s = await buildTestServer(t, { driver })
      const res = await s.putChannel('stable', { description: 'Production', values: { replicas: 3 }, accepts: '>=1.0.0 <2.0.0', pollInterval: '1h' })
      t.equal(res.statusCode, 201, res.body)
      t.match(res.json(), { name: 'stable', description: 'Production', values: { replicas: 3 }, accepts: '>=1.0.0 <2.0.0', pollInterval: '1h', head: null })
      t.ok(!Number.isNaN(Date.parse(res.json().updatedAt)))
    })

    t.test('PUT on an existing channel updates it: 200, untouched settings kept, null clears', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable', { description: 'Production', values: { a: 1 }, accepts: '^1.0.0', pollInterval: '1h' })
      const res = await s.putChannel('stable', { values: { b: 2 }, accepts: null })
      t.equal(res.statusCode, 200, res.body)
      t.match(res.json(), { name: 'stable', description: 'Production', values: { b: 2 }, accepts: null, pollInterval: '1h' })
      const stored = (await getChannel(s, 'stable')).json()
      t.match(stored, { description: 'Production', values: { b: 2 }, accepts: null, pollInterval: '1h' })
    })

    t.test('a PUT that changes nothing answers 200 and writes no audit row', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable', { description: 'x' })
      const count = async () => (await s.app.inject({ url: '/audit', headers: auth(s.tokens.admin) })).json().entries.length as number
      const before = await count()
      t.equal((await s.putChannel('stable', { description: 'x' })).statusCode, 200)
      t.equal(await count(), before)
    })

    t.test('only an admin may PUT a channel: a publisher gets 403 FORBIDDEN, nothing stored', async (t) => {
      const s = await buildTestServer(t, { driver })
      const res = await s.app.inject({ method: 'PUT', url: '/channels/stable', headers: auth(s.tokens.publisher), payload: {} })
      assertProblem(t, res, 403, 'FORBIDDEN')
      assertProblem(t, await getChannel(s, 'stable'), 404, 'CHANNEL_NOT_FOUND')
    })

    t.test('an invalid accepts range is 400 VALIDATION_FAILED, nothing stored', async (t) => {
      const s = await buildTestServer(t, { driver })
      const res = await s.putChannel('stable', { accepts: 'banana' })
      t.match(assertProblem(t, res, 400, 'VALIDATION_FAILED').detail, /accepts "banana"/)
      assertProblem(t, await getChannel(s, 'stable'), 404, 'CHANNEL_NOT_FOUND')
    })

    t.test('an invalid pollInterval is 400 VALIDATION_FAILED, nothing stored', async (t) => {
      const s = await buildTestServer(t, { driver })
      for (const bad of ['hourly', '1.5h', 60]) {
        const res = await s.putChannel('stable', { pollInterval: bad })
        assertProblem(t, res, 400, 'VALIDATION_FAILED')
      }
      assertProblem(t, await getChannel(s, 'stable'), 404, 'CHANNEL_NOT_FOUND')
    })

    t.test('a channel name that is not a DNS label is 400 VALIDATION_FAILED', async (t) => {
      const s = await buildTestServer(t, { driver })
      for (const bad of ['Stable', 'a_b', '-x', 'x'.repeat(64)]) assertProblem(t, await s.putChannel(bad, {}), 400, 'VALIDATION_FAILED')
      t.same((await s.app.inject({ url: '/channels', headers: auth(s.tokens.reader) })).json().channels, [])
    })

    t.test('unknown fields and non-map values in a channel PUT are 400', async (t) => {
      const s = await buildTestServer(t, { driver })
      assertProblem(t, await s.putChannel('stable', { colour: 'blue' }), 400, 'VALIDATION_FAILED')
      assertProblem(t, await s.putChannel('stable', { values: [1, 2] }), 400, 'VALIDATION_FAILED')
      assertProblem(t, await getChannel(s, 'stable'), 404, 'CHANNEL_NOT_FOUND')
    })

    t.test('GET /channels lists every channel with its head', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable')
      await s.putChannel('beta')
      await s.publish('1.0.0')
      await s.publish('1.1.0')
      await s.promote('stable', '1.0.0')
      await s.promote('stable', '1.1.0')
      const res = await s.app.inject({ url: '/channels', headers: auth(s.tokens.reader) })
      t.equal(res.statusCode, 200)
      t.same(res.json().channels.map((c: { name: string, head: string | null }) => [c.name, c.head]), [['beta', null], ['stable', '1.1.0']])
    })

    t.test('GET /channels/:name gives settings, head and the releases in it, highest first', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable', { description: 'Prod' })
      for (const v of ['1.0.0', '1.2.0', '1.1.0']) {
        await s.publish(v)
        await s.promote('stable', v)
      }
      await s.app.inject({ method: 'DELETE', url: '/channels/stable/releases/1.2.0', headers: auth(s.tokens.publisher) })
      const res = await getChannel(s, 'stable')
      t.equal(res.statusCode, 200)
      const body = res.json()
      t.match(body, { name: 'stable', description: 'Prod', head: '1.1.0' })
      t.same(body.releases.map((r: { version: string }) => r.version), ['1.1.0', '1.0.0'], 'withdrawn releases are not listed')
      t.equal(body.releases[0].promotedBy, 'rita-release')
    })

    t.test('GET /channels/:name of an unknown channel is 404 CHANNEL_NOT_FOUND', async (t) => {
      const s = await buildTestServer(t, { driver })
      assertProblem(t, await getChannel(s, 'nope'), 404, 'CHANNEL_NOT_FOUND')
    })

    t.test('promoting a release is 201 with the new head', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable')
      await s.publish('1.0.0')
      const res = await s.promote('stable', '1.0.0')
      t.equal(res.statusCode, 201, res.body)
      t.same(res.json(), { channel: 'stable', version: '1.0.0', promoted: true, required: false, head: '1.0.0' })
    })

    t.test('promoting a release already in the channel is 200 promoted:false with no new event', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable')
      await s.publish('1.0.0')
      await s.promote('stable', '1.0.0')
      const res = await s.promote('stable', '1.0.0')
      t.equal(res.statusCode, 200, res.body)
      t.same(res.json(), { channel: 'stable', version: '1.0.0', promoted: false, required: false, head: '1.0.0' })
      t.equal((await history(s, 'stable')).length, 1)
    })

    t.test('promoting an older release keeps the higher head: promotion order is irrelevant', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable')
      await s.publish('2.0.0')
      await s.publish('1.5.0')
      await s.promote('stable', '2.0.0')
      const res = await s.promote('stable', '1.5.0')
      t.equal(res.statusCode, 201)
      t.equal(res.json().head, '2.0.0')
    })

    t.test('promoting into an unknown channel is 404 CHANNEL_NOT_FOUND', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.publish('1.0.0')
      assertProblem(t, await s.promote('nope', '1.0.0'), 404, 'CHANNEL_NOT_FOUND')
    })

    t.test('promoting an unpublished release is 404 RELEASE_NOT_FOUND, nothing stored', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable')
      assertProblem(t, await s.promote('stable', '1.0.0'), 404, 'RELEASE_NOT_FOUND')
      t.same(await history(s, 'stable'), [])
    })

    t.test('promoting a version outside accepts is 422 VERSION_NOT_ACCEPTED, nothing stored', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable', { accepts: '>=1.0.0 <2.0.0' })
      await s.publish('2.0.0')
      await s.publish('0.9.0')
      for (const v of ['2.0.0', '0.9.0']) {
        const problem = assertProblem(t, await s.promote('stable', v), 422, 'VERSION_NOT_ACCEPTED')
        t.match(problem.detail, v)
      }
      t.same(await history(s, 'stable'), [])
      t.equal((await getChannel(s, 'stable')).json().head, null)
    })

    t.test('a range accepts its own versions', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable', { accepts: '>=1.0.0 <2.0.0' })
      await s.publish('1.4.2')
      t.equal((await s.promote('stable', '1.4.2')).statusCode, 201)
    })

    t.test('prereleases are refused unless the range allows them', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable', { accepts: '>=1.0.0 <2.0.0' })
      await s.putChannel('beta', { accepts: '>=1.5.0-rc.0 <2.0.0' })
      await s.publish('1.5.0-rc.1')
      assertProblem(t, await s.promote('stable', '1.5.0-rc.1'), 422, 'VERSION_NOT_ACCEPTED')
      t.equal((await s.promote('beta', '1.5.0-rc.1')).statusCode, 201)
    })

    t.test('a reader cannot promote: 403 FORBIDDEN', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable')
      await s.publish('1.0.0')
      const res = await s.app.inject({ method: 'POST', url: '/channels/stable/releases', headers: auth(s.tokens.reader), payload: { version: '1.0.0' } })
      assertProblem(t, res, 403, 'FORBIDDEN')
      t.same(await history(s, 'stable'), [])
    })

    t.test('promoting a non-semver version is 400 VALIDATION_FAILED', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable')
      assertProblem(t, await s.promote('stable', 'v1.0.0'), 400, 'VALIDATION_FAILED')
    })

    t.test('withdrawing is 204 and the spec falls back to the next release at once', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable')
      await s.publish('1.0.0', { values: { v: 1 } })
      await s.publish('1.1.0', { values: { v: 2 } })
      await s.promote('stable', '1.0.0')
      await s.promote('stable', '1.1.0')
      t.equal((await spec(s, 'stable')).json().version, '1.1.0')
      const res = await s.app.inject({ method: 'DELETE', url: '/channels/stable/releases/1.1.0?reason=broken', headers: auth(s.tokens.publisher) })
      t.equal(res.statusCode, 204)
      t.equal(res.body, '')
      const after = (await spec(s, 'stable')).json()
      t.equal(after.version, '1.0.0')
      t.same(after.values, { v: 1 })
      t.equal((await getChannel(s, 'stable')).json().head, '1.0.0')
    })

    t.test('withdrawing the only release empties the channel: spec is 404 CHANNEL_EMPTY', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable')
      await s.publish('1.0.0')
      await s.promote('stable', '1.0.0')
      t.equal((await s.app.inject({ method: 'DELETE', url: '/channels/stable/releases/1.0.0', headers: auth(s.tokens.publisher) })).statusCode, 204)
      assertProblem(t, await spec(s, 'stable'), 404, 'CHANNEL_EMPTY')
    })

    t.test('withdrawing twice is 204 both times with one withdraw event', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable')
      await s.publish('1.0.0')
      await s.promote('stable', '1.0.0')
      for (let i = 0; i < 2; i++) t.equal((await s.app.inject({ method: 'DELETE', url: '/channels/stable/releases/1.0.0', headers: auth(s.tokens.publisher) })).statusCode, 204)
      t.same((await history(s, 'stable')).map((e) => e.action), ['withdraw', 'promote'])
    })

    t.test('withdrawing a release never promoted to the channel is 404 RELEASE_NOT_IN_CHANNEL', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable')
      await s.publish('1.0.0')
      const res = await s.app.inject({ method: 'DELETE', url: '/channels/stable/releases/1.0.0', headers: auth(s.tokens.publisher) })
      assertProblem(t, res, 404, 'RELEASE_NOT_IN_CHANNEL')
    })

    t.test('withdrawing from an unknown channel is 404 CHANNEL_NOT_FOUND', async (t) => {
      const s = await buildTestServer(t, { driver })
      const res = await s.app.inject({ method: 'DELETE', url: '/channels/nope/releases/1.0.0', headers: auth(s.tokens.publisher) })
      assertProblem(t, res, 404, 'CHANNEL_NOT_FOUND')
    })

    t.test('a withdrawn release can be promoted again and becomes head again', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable')
      await s.publish('1.0.0')
      await s.publish('1.1.0')
      await s.promote('stable', '1.0.0')
      await s.promote('stable', '1.1.0')
      await s.app.inject({ method: 'DELETE', url: '/channels/stable/releases/1.1.0', headers: auth(s.tokens.publisher) })
      const res = await s.promote('stable', '1.1.0')
      t.equal(res.statusCode, 201)
      t.equal(res.json().head, '1.1.0')
      t.equal((await spec(s, 'stable')).json().version, '1.1.0')
    })

    t.test('GET /channels/:name/releases is the promotion and withdrawal history, newest first', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable')
      await s.publish('1.0.0')
      await s.publish('1.1.0')
      await s.promote('stable', '1.0.0')
      await s.promote('stable', '1.1.0')
      await s.app.inject({ method: 'DELETE', url: '/channels/stable/releases/1.1.0?reason=crashloop', headers: auth(s.tokens.publisher) })
      const events = await history(s, 'stable')
      t.same(events.map((e) => [e.action, e.version, e.actor, e.reason]), [
        ['withdraw', '1.1.0', 'rita-release', 'crashloop'],
        ['promote', '1.1.0', 'rita-release', null],
        ['promote', '1.0.0', 'rita-release', null]
      ])
      for (const e of events) {
        t.equal(e.channel, 'stable')
        t.ok(!Number.isNaN(Date.parse(e.at as string)))
      }
    })

    t.test('history of an unknown channel is 404 CHANNEL_NOT_FOUND', async (t) => {
      const s = await buildTestServer(t, { driver })
      assertProblem(t, await s.app.inject({ url: '/channels/nope/releases', headers: auth(s.tokens.reader) }), 404, 'CHANNEL_NOT_FOUND')
    })

    t.test('changing channel values changes the spec at once', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable', { values: { a: 1 } })
      await s.publish('1.0.0')
      await s.promote('stable', '1.0.0')
      const before = await spec(s, 'stable')
      await s.putChannel('stable', { values: { a: 2 } })
      const after = await spec(s, 'stable')
      t.same(after.json().values, { a: 2 })
      t.not(after.headers.etag, before.headers.etag)
    })

    t.test('a channel defined by a file shows managedBy; one made through the API shows null', async (t) => {
      const dir = channelsDir(t, { 'stable.yaml': 'name: stable\ndescription: Production\n' })
      const s = await buildTestServer(t, { driver, env: { CHANNELS_DIR: dir } })
      await s.putChannel('canary')
      t.same((await getChannel(s, 'stable')).json().managedBy, { file: 'stable.yaml' })
      t.equal((await getChannel(s, 'canary')).json().managedBy, null)
      const list = (await s.app.inject({ url: '/channels', headers: auth(s.tokens.reader) })).json().channels as Array<{ name: string, managedBy: unknown }>
      t.same(list.map((c) => [c.name, c.managedBy]), [['canary', null], ['stable', { file: 'stable.yaml' }]])
    })

    t.test('PUT on a file-managed channel is 409 CHANNEL_MANAGED_BY_FILE naming the file; nothing changes', async (t) => {
      const dir = channelsDir(t, { 'stable.yaml': 'name: stable\ndescription: Production\nvalues:\n  replicas: 3\n' })
      const s = await buildTestServer(t, { driver, env: { CHANNELS_DIR: dir } })
      const before = await auditCount(s)
      const body = assertProblem(t, await s.putChannel('stable', { values: { replicas: 1 } }), 409, 'CHANNEL_MANAGED_BY_FILE')
      t.match(body.detail, 'stable.yaml')
      t.match((await getChannel(s, 'stable')).json(), { description: 'Production', values: { replicas: 3 } })
      t.equal(await auditCount(s), before, 'no audit row')
    })

    t.test('promotions and withdrawals stay open on a file-managed channel', async (t) => {
      const dir = channelsDir(t, { 'stable.yaml': 'name: stable\n' })
      const s = await buildTestServer(t, { driver, env: { CHANNELS_DIR: dir } })
      await s.publish('1.0.0')
      await s.publish('1.1.0')
      t.equal((await s.promote('stable', '1.0.0')).statusCode, 201)
      t.equal((await s.promote('stable', '1.1.0')).statusCode, 201)
      t.equal((await s.app.inject({ method: 'DELETE', url: '/channels/stable/releases/1.1.0', headers: auth(s.tokens.publisher) })).statusCode, 204)
      t.equal((await spec(s, 'stable')).json().version, '1.0.0')
    })

    t.test('a channel made through the API becomes file-managed when a file for it is synced', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable', { description: 'from the API' })
      const dir = channelsDir(t, { 'stable.yaml': 'name: stable\ndescription: from the file\n' })
      const again = await buildTestServer(t, { driver, database: s.database, env: { CHANNELS_DIR: dir } })
      t.match((await getChannel(again, 'stable')).json(), { description: 'from the file', managedBy: { file: 'stable.yaml' } })
      assertProblem(t, await again.putChannel('stable', { description: 'x' }), 409, 'CHANNEL_MANAGED_BY_FILE')
    })

    t.test('removing the file hands the channel back to the API at the next start, keeping its releases', async (t) => {
      const dir = channelsDir(t, { 'stable.yaml': 'name: stable\ndescription: Production\n', 'beta.yaml': 'name: beta\n' })
      const s = await buildTestServer(t, { driver, env: { CHANNELS_DIR: dir } })
      await s.publish('1.0.0')
      await s.promote('stable', '1.0.0')
      unlinkSync(path.join(dir, 'stable.yaml'))
      const again = await buildTestServer(t, { driver, database: s.database, env: { CHANNELS_DIR: dir } })
      t.match((await getChannel(again, 'stable')).json(), { managedBy: null, head: '1.0.0', description: 'Production' })
      t.same((await getChannel(again, 'beta')).json().managedBy, { file: 'beta.yaml' })
      const entries = (await again.app.inject({ url: '/audit', headers: auth(again.tokens.admin) })).json().entries as Array<{ action: string, target: string }>
      t.match(entries[0], { action: 'channel.unmanage', target: 'channel:stable' })
      t.equal((await again.putChannel('stable', { description: 'now from the API' })).statusCode, 200)
    })
  })
}
