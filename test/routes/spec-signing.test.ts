/**
 * Chartcast-Signature on spec answers: made when a spec is compiled and renewed by a timer, only
 * copied per request; verified here with the real agent-side verifier and the chain of GET /keys.
 */
import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { buildTestServer, testDrivers, type TestServer, type TestServerOptions } from '../helpers/server.js'
import { twoReplicas } from '../helpers/replicas.js'
import { testSigning, type TestSigning } from '../helpers/signing.js'
import { assertProblem, auth } from '../helpers/problem.js'
import { parseKeysetChain } from '../../src/domain/keyset.js'
import { bodySha256 } from '../../src/domain/spec-statement.js'
import { verifyAnswer, type VerifyResult } from '../../src/agent/verify.js'
import { decodeProtectedHeader } from 'jose'

const basic = (password: string) => ({ authorization: 'Basic ' + Buffer.from(`license:${password}`).toString('base64') })

async function seeded (t: Test, options: TestServerOptions): Promise<TestServer> {
  const s = await buildTestServer(t, options)
  t.equal((await s.putChannel('stable', { values: { replicas: 1 } })).statusCode, 201)
  for (const v of ['1.0.0', '1.1.0']) t.equal((await s.publish(v, { values: { tag: v } })).statusCode, 201)
  for (const v of ['1.0.0', '1.1.0']) t.equal((await s.promote('stable', v)).statusCode, 201)
  return s
}

async function servedChain (s: TestServer) {
  const res = await s.app.inject({ url: '/keys' })
  if (res.statusCode !== 200) throw new Error(`GET /keys: ${res.statusCode}`)
  return parseKeysetChain(res.json())
}

async function verifies (s: TestServer, signing: TestSigning, res: LightMyRequestResponse, body: string, channel = 'stable'): Promise<VerifyResult> {
  return await verifyAnswer({ body, signature: res.headers['chartcast-signature'] as string | undefined, chain: await servedChain(s), trust: signing.trust, channel, highestRevision: null, nowMs: Date.now() })
}

function statementOf (res: LightMyRequestResponse): Record<string, unknown> {
  return JSON.parse(Buffer.from(String(res.headers['chartcast-signature']).split('.')[1]!, 'base64url').toString()) as Record<string, unknown>
}

for (const driver of testDrivers()) {
  t.test(driver, async (t) => {
    t.test('GET /keys serves the configured chain, without authentication', async (t) => {
      const signing = testSigning(t)
      const s = await buildTestServer(t, { driver, env: signing.env })
      const res = await s.app.inject({ url: '/keys' })
      t.equal(res.statusCode, 200)
      t.match(res.headers['content-type'], /^application\/json/)
      t.same(res.json(), { keysets: signing.chain })
    })

    t.test('without signing configured: no header, and GET /keys is a 404 problem', async (t) => {
      const s = await seeded(t, { driver })
      const res = await s.app.inject({ url: '/channels/stable/spec', headers: auth(await s.license()) })
      t.equal(res.statusCode, 200)
      t.equal(res.headers['chartcast-signature'], undefined)
      assertProblem(t, await s.app.inject({ url: '/keys' }), 404, 'NOT_FOUND')
    })

    t.test('a 200 of /channels/:name/spec carries a signature over its exact body that verifies with the served chain', async (t) => {
      const signing = testSigning(t)
      const s = await seeded(t, { driver, env: signing.env })
      const res = await s.app.inject({ url: '/channels/stable/spec', headers: auth(await s.license()) })
      t.equal(res.statusCode, 200)
      const result = await verifies(s, signing, res, res.body)
      t.ok(result.ok, JSON.stringify(result))
      const statement = statementOf(res)
      t.equal(statement.sha256, bodySha256(res.rawPayload))
      t.equal(statement.version, '1.1.0')
      t.equal(statement.channel, 'stable')
      t.equal(String(statement.revision), res.headers['chartcast-revision'], 'the revision is the one Chartcast-Revision names')
      t.equal(decodeProtectedHeader(String(res.headers['chartcast-signature'])).kid, signing.chain[0]!.signed.keys[0]!.kid)
      const ttl = (statement.expires as number) * 1000 - Date.now()
      t.ok(ttl > 6 * 86_400_000 && ttl <= 7 * 86_400_000, 'expires in 7 days by default')
    })

    t.test('a 304 carries the same signature, which verifies with the body its ETag names', async (t) => {
      const signing = testSigning(t)
      const s = await seeded(t, { driver, env: signing.env })
      const license = await s.license()
      const first = await s.app.inject({ url: '/channels/stable/spec', headers: auth(license) })
      const again = await s.app.inject({ url: '/channels/stable/spec', headers: { ...auth(license), 'if-none-match': String(first.headers.etag) } })
      t.equal(again.statusCode, 304)
      t.equal(again.headers['chartcast-signature'], first.headers['chartcast-signature'])
      t.ok((await verifies(s, signing, again, first.body)).ok)
    })

    t.test('a pinned version is signed for that version', async (t) => {
      const signing = testSigning(t)
      const s = await seeded(t, { driver, env: signing.env })
      const res = await s.app.inject({ url: '/channels/stable/spec?version=1.0.0', headers: auth(await s.license()) })
      t.equal(res.statusCode, 200)
      t.equal(statementOf(res).version, '1.0.0')
      t.ok((await verifies(s, signing, res, res.body)).ok)
    })

    t.test('the W&B operator endpoint: body byte-identical to an unsigned server\'s, the signature over that body', async (t) => {
      const signing = testSigning(t)
      const signed = await seeded(t, { driver, env: signing.env })
      const license = await signed.license({ channels: ['stable'], channel: 'stable' })
      const res = await signed.app.inject({ url: '/api/v1/operator/channel', headers: basic(license) })
      t.equal(res.statusCode, 200)
      t.ok((await verifies(signed, signing, res, res.body)).ok)
      t.equal(statementOf(res).sha256, bodySha256(res.rawPayload))
      const pinned = await signed.app.inject({ url: '/api/v1/operator/channel/release/1.0.0', headers: basic(license) })
      t.equal(statementOf(pinned).version, '1.0.0')
      t.ok((await verifies(signed, signing, pinned, pinned.body)).ok)
      await signed.close()
      const plain = await seeded(t, { driver })
      const unsigned = await plain.app.inject({ url: '/api/v1/operator/channel', headers: basic(await plain.license({ channels: ['stable'], channel: 'stable' })) })
      t.equal(unsigned.body, res.body, 'same bytes with signing on and off')
      t.equal(unsigned.headers.etag, res.headers.etag)
    })

    t.test('a promotion is signed with the new revision', async (t) => {
      const signing = testSigning(t)
      const s = await seeded(t, { driver, env: signing.env })
      const license = await s.license()
      const before = statementOf(await s.app.inject({ url: '/channels/stable/spec', headers: auth(license) }))
      t.equal((await s.publish('1.2.0')).statusCode, 201)
      t.equal((await s.promote('stable', '1.2.0')).statusCode, 201)
      const after = await s.app.inject({ url: '/channels/stable/spec', headers: auth(license) })
      t.equal(statementOf(after).version, '1.2.0')
      t.ok((statementOf(after).revision as number) > (before.revision as number))
      t.ok((await verifies(s, signing, after, after.body)).ok)
    })

    t.test('two replicas on one database: each one\'s answers verify with the same keyset', async (t) => {
      const signing = testSigning(t)
      const { a, b } = await twoReplicas(t, driver, { env: signing.env })
      t.equal((await a.putChannel('stable')).statusCode, 201)
      t.equal((await a.publish('1.0.0')).statusCode, 201)
      t.equal((await a.promote('stable', '1.0.0')).statusCode, 201)
      await b.app.specCache.refreshChannel('stable')
      const license = await a.license()
      for (const replica of [a, b]) {
        const res = await replica.app.inject({ url: '/channels/stable/spec', headers: auth(license) })
        t.equal(res.statusCode, 200)
        t.ok((await verifies(a, signing, res, res.body)).ok, 'verifies with the chain replica a serves')
        t.ok((await verifies(b, signing, res, res.body)).ok, 'and with the one replica b serves')
      }
    })

    t.test('resignExpiring renews signatures about to expire and leaves fresh ones', async (t) => {
      let offset = 0
      const now = (): number => Date.now() + offset
      const signing = testSigning(t)
      const s = await seeded(t, { driver, env: signing.env, now })
      const license = await s.license({ expiresIn: 30 * 86_400 })
      const first = await s.app.inject({ url: '/channels/stable/spec', headers: auth(license) })
      t.equal(await s.app.specCache.resignExpiring(now(), 86_400_000), 0, 'seven days left: nothing to renew')
      offset = 6 * 86_400_000
      t.equal(await s.app.specCache.resignExpiring(now(), 2 * 86_400_000), 1, 'one day left: the head is renewed')
      const renewed = await s.app.inject({ url: '/channels/stable/spec', headers: auth(license) })
      t.not(renewed.headers['chartcast-signature'], first.headers['chartcast-signature'])
      const moved = (statementOf(renewed).expires as number) - (statementOf(first).expires as number)
      t.ok(moved >= 6 * 86_400 && moved <= 6 * 86_400 + 2, 'valid for a full TTL from the renewal')
      offset = 0
      t.ok((await verifies(s, signing, renewed, renewed.body)).ok)
    })

    t.test('the re-sign timer renews a signature before it expires, without a request asking', async (t) => {
      // The clock the server signs with moves ahead; the timer (every TTL/4) must renew.
      let offset = 0
      const now = (): number => Date.now() + offset
      const signing = testSigning(t, { SPEC_SIGNATURE_TTL: '10s' })
      const s = await seeded(t, { driver, env: signing.env, now })
      const license = await s.license()
      const first = statementOf(await s.app.inject({ url: '/channels/stable/spec', headers: auth(license) }))
      offset = 6_000
      let renewed = first
      for (let i = 0; i < 200 && renewed.expires === first.expires; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100))
        renewed = statementOf(await s.app.inject({ url: '/channels/stable/spec', headers: auth(license) }))
      }
      t.ok((renewed.expires as number) > (first.expires as number), 'a later expiry is served')
    })
  })
}
