/**
 * A 2xx from a write that changes what a channel serves means this replica serves the change
 * already: the route refreshes its cache itself and does not wait for the change notice. With
 * PGlite the NOTIFY arrives in-process before the answer, which would hide a missing refresh,
 * so these servers hear no notices at all (deafToChangeNotices), on both databases.
 */
import t from 'tap'
import { buildTestServer, testDrivers, type TestServer } from '../helpers/server.js'

async function served (s: TestServer, license: string, query = ''): Promise<{ status: number, version?: string, values?: unknown, code?: string }> {
  const res = await s.app.inject({ url: `/channels/stable/spec${query}`, headers: { authorization: `Bearer ${license}` } })
  const body = res.json() as { version?: string, values?: unknown, code?: string }
  return { status: res.statusCode, ...(body.version !== undefined && { version: body.version, values: body.values }), ...(body.code !== undefined && { code: body.code }) }
}

for (const driver of testDrivers()) {
  t.test(`${driver}: with no change notices, every acknowledged write is served at once by the replica that made it`, async (t) => {
    const s = await buildTestServer(t, { driver, deafToChangeNotices: true })
    const license = await s.license({ sub: 'cluster-1', jti: 'lic-1' })
    for (const v of ['1.0.0', '1.1.0']) t.equal((await s.publish(v, { values: { build: v } })).statusCode, 201)

    t.equal((await s.putChannel('stable', { values: { tier: 'one' } })).statusCode, 201, 'channel created')
    t.same(await served(s, license), { status: 404, code: 'CHANNEL_EMPTY' }, 'a new channel is known at once')

    t.equal((await s.promote('stable', '1.0.0')).statusCode, 201)
    t.same(await served(s, license), { status: 200, version: '1.0.0', values: { tier: 'one', build: '1.0.0' } }, 'the first promotion is served at once')

    t.equal((await s.promote('stable', '1.1.0')).statusCode, 201)
    t.same(await served(s, license), { status: 200, version: '1.1.0', values: { tier: 'one', build: '1.1.0' } }, 'a promotion over a head is served at once')
    t.equal((await served(s, license, '?version=1.0.0')).version, '1.0.0', 'the older version can be pinned')

    t.equal((await s.putChannel('stable', { values: { tier: 'two' } })).statusCode, 200)
    t.same(await served(s, license), { status: 200, version: '1.1.0', values: { tier: 'two', build: '1.1.0' } }, 'new channel values are served at once')

    const withdraw = await s.app.inject({ method: 'DELETE', url: '/channels/stable/releases/1.1.0', headers: { authorization: `Bearer ${s.tokens.publisher}` } })
    t.equal(withdraw.statusCode, 204)
    t.same(await served(s, license), { status: 200, version: '1.0.0', values: { tier: 'two', build: '1.0.0' } }, 'a withdrawal falls back at once')
    t.equal((await served(s, license, '?version=1.1.0')).code, 'RELEASE_NOT_FOUND', 'the withdrawn version cannot be pinned')

    const revoke = await s.app.inject({ method: 'POST', url: '/licenses/revocations', headers: { authorization: `Bearer ${s.tokens.admin}` }, payload: { jti: 'lic-1', reason: 'leaked' } })
    t.equal(revoke.statusCode, 201)
    t.same(await served(s, license), { status: 403, code: 'LICENSE_REVOKED' }, 'a revocation is enforced at once')
  })
}
