/**
 * Two server replicas on one PostgreSQL database, each with its own connection pool and
 * LISTEN connection (as two processes would have): every change committed on one is served
 * by the other within 1 s, through NOTIFY, never by a database read on the pull path.
 */
import t, { type Test } from 'tap'
import { openDatabase } from '../../src/db/index.js'
import { buildTestServer, createThrowawayDatabase, type TestServer } from '../helpers/server.js'
import { Closers, CONVERGENCE_MS, NEEDS_POSTGRES, pollUntil, postgresUrl, pull, served } from './support.js'

async function twoReplicas (t: Test): Promise<{ a: TestServer, b: TestServer }> {
  const throwaway = await createThrowawayDatabase()
  const closers = new Closers()
  const dbA = await openDatabase({ databaseUrl: throwaway.url, dataDir: '/nonexistent' })
  const dbB = await openDatabase({ databaseUrl: throwaway.url, dataDir: '/nonexistent' })
  t.teardown(async () => {
    await closers.closeAll()
    await dbA.close()
    await dbB.close()
    await throwaway.drop()
  })
  const a = await buildTestServer(closers, { database: dbA })
  const b = await buildTestServer(closers, { database: dbB, keyPair: a.keyPair, authSecret: a.authSecret })
  return { a, b }
}

t.test('two replicas on one PostgreSQL database converge within 1 s', { skip: postgresUrl() === null ? NEEDS_POSTGRES : false }, async (t) => {
  const { a, b } = await twoReplicas(t)
  const license = await a.license({ sub: 'cluster-1', jti: 'lic-1', channels: ['stable'] })
  const other = await a.license({ sub: 'cluster-2', jti: 'lic-2', channels: ['stable'] })

  t.equal((await a.putChannel('stable', { values: { tier: 'one' } })).statusCode, 201)
  for (const v of ['1.0.0', '1.1.0', '1.2.0']) t.equal((await a.publish(v, { values: { build: v } })).statusCode, 201)
  t.equal((await a.promote('stable', '1.0.0')).statusCode, 201)
  // The channel was created after B loaded its cache: B learns of it from the notice alone.
  t.not(await pollUntil(async () => await served(b, 'stable', license) === '1.0.0', CONVERGENCE_MS), null, 'B serves the new channel')

  t.test('a promotion on A is served by B', async (t) => {
    t.equal((await a.promote('stable', '1.1.0')).statusCode, 201)
    const ms = await pollUntil(async () => await served(b, 'stable', license) === '1.1.0', CONVERGENCE_MS)
    t.not(ms, null, `B serves 1.1.0 within ${CONVERGENCE_MS} ms (took ${ms} ms)`)
    const res = await pull(b, 'stable', license)
    t.same(res.json().values, { tier: 'one', build: '1.1.0' })
    t.equal(res.headers.etag, (await pull(a, 'stable', license)).headers.etag, 'both replicas send the same body and ETag')
  })

  t.test('a promotion on B is served by A', async (t) => {
    t.equal((await b.promote('stable', '1.2.0')).statusCode, 201)
    const ms = await pollUntil(async () => await served(a, 'stable', license) === '1.2.0', CONVERGENCE_MS)
    t.not(ms, null, `A serves 1.2.0 within ${CONVERGENCE_MS} ms (took ${ms} ms)`)
  })

  t.test('a withdrawal on A is served by B', async (t) => {
    const res = await a.app.inject({ method: 'DELETE', url: '/channels/stable/releases/1.2.0', headers: { authorization: `Bearer ${a.tokens.publisher}` } })
    t.equal(res.statusCode, 204)
    const ms = await pollUntil(async () => await served(b, 'stable', license) === '1.1.0', CONVERGENCE_MS)
    t.not(ms, null, `B falls back to 1.1.0 within ${CONVERGENCE_MS} ms (took ${ms} ms)`)
    const pinned = await b.app.inject({ url: '/channels/stable/spec?version=1.2.0', headers: { authorization: `Bearer ${license}` } })
    t.equal(pinned.statusCode, 404, 'the withdrawn version cannot be pinned on B either')
  })

  t.test('a channel PUT on A (values change) is served by B', async (t) => {
    const before = (await pull(b, 'stable', license)).headers.etag
    t.equal((await a.putChannel('stable', { values: { tier: 'two' } })).statusCode, 200)
    const ms = await pollUntil(async () => {
      const res = await pull(b, 'stable', license)
      return res.statusCode === 200 && (res.json() as { values: { tier?: string } }).values.tier === 'two'
    }, CONVERGENCE_MS)
    t.not(ms, null, `B serves the new channel values within ${CONVERGENCE_MS} ms (took ${ms} ms)`)
    const after = await pull(b, 'stable', license)
    t.not(after.headers.etag, before, 'the ETag changed with the body')
    t.equal((await pull(b, 'stable', license, before as string)).statusCode, 200, 'the old ETag no longer gets a 304')
    t.equal((await pull(b, 'stable', license, after.headers.etag as string)).statusCode, 304)
  })

  t.test('a revocation (by jti) on A refuses the license on B', async (t) => {
    t.equal((await pull(b, 'stable', license)).statusCode, 200, 'B has verified and cached the license')
    const res = await a.app.inject({ method: 'POST', url: '/licenses/revocations', headers: { authorization: `Bearer ${a.tokens.admin}` }, payload: { jti: 'lic-1', reason: 'contract ended' } })
    t.equal(res.statusCode, 201)
    const ms = await pollUntil(async () => await served(b, 'stable', license) === 'LICENSE_REVOKED', CONVERGENCE_MS)
    t.not(ms, null, `B refuses the revoked license within ${CONVERGENCE_MS} ms (took ${ms} ms)`)
    t.equal((await pull(b, 'stable', license)).statusCode, 403)
    t.equal(await served(b, 'stable', other), '1.1.0', 'another license is unaffected')
  })

  t.test('a revocation (by sub) on B refuses the license on A', async (t) => {
    t.equal(await served(a, 'stable', other), '1.1.0')
    const res = await b.app.inject({ method: 'POST', url: '/licenses/revocations', headers: { authorization: `Bearer ${b.tokens.admin}` }, payload: { sub: 'cluster-2', reason: 'deployment decommissioned' } })
    t.equal(res.statusCode, 201)
    const ms = await pollUntil(async () => await served(a, 'stable', other) === 'LICENSE_REVOKED', CONVERGENCE_MS)
    t.not(ms, null, `A refuses every license of the deployment within ${CONVERGENCE_MS} ms (took ${ms} ms)`)
  })
})
