/**
 * The per-channel revision: bumped by every transaction that changes what a channel serves,
 * never by a request that changes nothing, shown on GET /channels and sent as Chartcast-Revision.
 */
import t from 'tap'
import { buildTestServer, testDrivers, type TestServer } from '../helpers/server.js'
import { auth } from '../helpers/problem.js'

async function revisionOf (s: TestServer, name: string): Promise<number> {
  const res = await s.app.inject({ url: `/channels/${name}`, headers: auth(s.tokens.reader) })
  if (res.statusCode !== 200) throw new Error(`GET /channels/${name}: ${res.statusCode} ${res.body}`)
  return res.json().revision as number
}

function definition (name: string, values: Record<string, unknown>) {
  return { name, description: '', values, accepts: null, pollInterval: null, file: `${name}.yaml` }
}

for (const driver of testDrivers()) {
  t.test(driver, async (t) => {
    t.test('a new channel starts at revision 1, in its detail and in the list', async (t) => {
      const s = await buildTestServer(t, { driver })
      t.equal((await s.putChannel('stable')).json().revision, 1)
      t.equal(await revisionOf(s, 'stable'), 1)
      const list = (await s.app.inject({ url: '/channels', headers: auth(s.tokens.reader) })).json()
      t.same(list.channels.map((c: { name: string, revision: number }) => [c.name, c.revision]), [['stable', 1]])
    })

    t.test('promotion, withdrawal and a settings change each bump the revision by one', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable')
      await s.publish('1.0.0')
      await s.publish('1.1.0')
      t.equal((await s.promote('stable', '1.0.0')).statusCode, 201)
      t.equal(await revisionOf(s, 'stable'), 2, 'promotion')
      t.equal((await s.promote('stable', '1.1.0')).statusCode, 201)
      t.equal(await revisionOf(s, 'stable'), 3, 'a second promotion')
      const withdrawn = await s.app.inject({ method: 'DELETE', url: '/channels/stable/releases/1.1.0', headers: auth(s.tokens.publisher) })
      t.equal(withdrawn.statusCode, 204, withdrawn.body)
      t.equal(await revisionOf(s, 'stable'), 4, 'withdrawal')
      const put = await s.putChannel('stable', { values: { replicas: 2 } })
      t.equal(put.statusCode, 200, put.body)
      t.equal(put.json().revision, 5, 'PUT answers with the new revision')
      t.equal(await revisionOf(s, 'stable'), 5, 'settings')
    })

    t.test('requests that change nothing leave the revision alone', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable', { values: { replicas: 2 } })
      await s.publish('1.0.0')
      await s.promote('stable', '1.0.0')
      const before = await revisionOf(s, 'stable')
      t.equal((await s.putChannel('stable', { values: { replicas: 2 } })).json().revision, before, 'the same settings again')
      await s.promote('stable', '1.0.0')
      t.equal(await revisionOf(s, 'stable'), before, 'promoting the active release again')
      await s.app.inject({ method: 'DELETE', url: '/channels/stable/releases/1.0.0', headers: auth(s.tokens.publisher) })
      const afterWithdraw = await revisionOf(s, 'stable')
      t.equal(afterWithdraw, before + 1)
      await s.app.inject({ method: 'DELETE', url: '/channels/stable/releases/1.0.0', headers: auth(s.tokens.publisher) })
      t.equal(await revisionOf(s, 'stable'), afterWithdraw, 'withdrawing the withdrawn release again')
      await s.publish('2.0.0')
      t.equal(await revisionOf(s, 'stable'), afterWithdraw, 'a publish changes no channel')
    })

    t.test('a refused change leaves the revision alone', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable', { accepts: '<2.0.0' })
      await s.publish('2.0.0')
      t.equal((await s.promote('stable', '2.0.0')).statusCode, 422, 'outside the channel\'s accepts range')
      t.equal(await revisionOf(s, 'stable'), 1)
    })

    t.test('the channel-file sync bumps a channel it changes and no other', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.app.store.syncChannels([definition('stable', { a: 1 }), definition('beta', { b: 1 })], 'sync:test')
      t.equal(await revisionOf(s, 'stable'), 1)
      const result = await s.app.store.syncChannels([definition('stable', { a: 2 }), definition('beta', { b: 1 })], 'sync:test')
      t.same(result.updated, ['stable'])
      t.equal(await revisionOf(s, 'stable'), 2, 'changed by its file')
      t.equal(await revisionOf(s, 'beta'), 1, 'unchanged file: no bump')
    })

    t.test('spec answers carry Chartcast-Revision, on 200 and on 304, and the operator answer too', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable')
      await s.publish('1.0.0')
      await s.promote('stable', '1.0.0')
      const license = await s.license({ channels: ['stable'] })
      const ok = await s.app.inject({ url: '/channels/stable/spec', headers: auth(license) })
      t.equal(ok.statusCode, 200, ok.body)
      t.equal(ok.headers['chartcast-revision'], '2')
      const notModified = await s.app.inject({ url: '/channels/stable/spec', headers: { ...auth(license), 'if-none-match': ok.headers.etag as string } })
      t.equal(notModified.statusCode, 304)
      t.equal(notModified.headers['chartcast-revision'], '2')

      // A description is not in the spec: same ETag, so 304, but the revision moved on.
      await s.putChannel('stable', { description: 'Production' })
      const after = await s.app.inject({ url: '/channels/stable/spec', headers: { ...auth(license), 'if-none-match': ok.headers.etag as string } })
      t.equal(after.statusCode, 304)
      t.equal(after.headers['chartcast-revision'], '3')

      const pinned = await s.app.inject({ url: '/channels/stable/spec?version=1.0.0', headers: auth(license) })
      t.equal(pinned.headers['chartcast-revision'], '3', 'a pinned answer carries the channel revision too')

      const basic = `Basic ${Buffer.from(`license:${license}`).toString('base64')}`
      const operator = await s.app.inject({ url: '/api/v1/operator/channel', headers: { authorization: basic } })
      t.equal(operator.statusCode, 200, operator.body)
      t.equal(operator.headers['chartcast-revision'], '3')
    })
  })
}
