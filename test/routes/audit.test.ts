import t from 'tap'
import { buildTestServer, testDrivers, type TestServer } from '../helpers/server.js'
import { assertProblem, auth } from '../helpers/problem.js'

interface Entry { id: number, at: string, actor: string, action: string, target: string, detail: Record<string, unknown> }

async function audit (s: TestServer, query = ''): Promise<{ entries: Entry[], nextBefore: number | null }> {
  const res = await s.app.inject({ url: `/audit${query}`, headers: auth(s.tokens.admin) })
  if (res.statusCode !== 200) throw new Error(res.body)
  return res.json()
}

/** One of every acknowledged mutation, by the helper's publisher and admin tokens. */
async function everyMutation (s: TestServer): Promise<void> {
  await s.putChannel('stable', { description: 'Prod' })
  await s.publish('1.0.0')
  await s.promote('stable', '1.0.0')
  await s.app.inject({ method: 'DELETE', url: '/channels/stable/releases/1.0.0?reason=bad', headers: auth(s.tokens.publisher) })
  await s.app.inject({ method: 'POST', url: '/licenses/revocations', headers: auth(s.tokens.admin), payload: { jti: 'lic-1', reason: 'leak' } })
}

for (const driver of testDrivers()) {
  t.test(driver, async (t) => {
    t.test('one row per acknowledged mutation, newest first, actor is the token sub', async (t) => {
      const s = await buildTestServer(t, { driver })
      await everyMutation(s)
      const { entries, nextBefore } = await audit(s)
      t.same(entries.map((e) => [e.action, e.target, e.actor]), [
        ['license.revoke', 'license:jti:lic-1', 'alice-admin'],
        ['channel.withdraw', 'channel:stable', 'rita-release'],
        ['channel.promote', 'channel:stable', 'rita-release'],
        ['release.publish', 'release:1.0.0', 'rita-release'],
        ['channel.upsert', 'channel:stable', 'alice-admin']
      ])
      t.equal(nextBefore, null)
      t.match(entries[1]?.detail, { version: '1.0.0', reason: 'bad' })
      t.match(entries[2]?.detail, { version: '1.0.0' })
      const ids = entries.map((e) => e.id)
      t.same(ids, [...ids].sort((a, b) => b - a))
      for (const e of entries) t.ok(!Number.isNaN(Date.parse(e.at)))
    })

    t.test('refused and no-op requests write no audit row', async (t) => {
      const s = await buildTestServer(t, { driver })
      await everyMutation(s)
      const before = (await audit(s)).entries.length
      await s.publish('1.0.0') // identical re-publish
      await s.publish('1.0.0', { values: { other: true } }) // conflict
      await s.publish('v2') // invalid
      await s.putChannel('stable', { description: 'Prod' }) // unchanged
      await s.promote('stable', '9.9.9') // unknown release
      await s.app.inject({ method: 'DELETE', url: '/channels/stable/releases/1.0.0', headers: auth(s.tokens.publisher) }) // already withdrawn
      await s.app.inject({ method: 'POST', url: '/releases', headers: auth(s.tokens.reader), payload: { version: '3.0.0', chart: { url: 'https://c.example.com', name: 'c', version: '1' } } }) // forbidden
      t.equal((await audit(s)).entries.length, before)
    })

    t.test('pagination: limit, before and nextBefore walk every entry once', async (t) => {
      const s = await buildTestServer(t, { driver })
      for (let i = 0; i < 7; i++) await s.publish(`1.0.${i}`)
      const seen: string[] = []
      let query = '?limit=3'
      const pages: number[] = []
      for (;;) {
        const page = await audit(s, query)
        pages.push(page.entries.length)
        seen.push(...page.entries.map((e) => e.target))
        if (page.nextBefore === null) break
        t.equal(page.nextBefore, page.entries.at(-1)?.id)
        query = `?limit=3&before=${page.nextBefore}`
      }
      t.same(pages, [3, 3, 1])
      t.same(seen, [6, 5, 4, 3, 2, 1, 0].map((i) => `release:1.0.${i}`))
    })

    t.test('a full last page gives a nextBefore that leads to an empty page', async (t) => {
      const s = await buildTestServer(t, { driver })
      for (let i = 0; i < 2; i++) await s.publish(`1.0.${i}`)
      const first = await audit(s, '?limit=2')
      t.equal(first.entries.length, 2)
      t.not(first.nextBefore, null)
      const second = await audit(s, `?limit=2&before=${first.nextBefore}`)
      t.same(second, { entries: [], nextBefore: null })
    })

    t.test('limit outside 1..500 and non-numeric paging are 400 VALIDATION_FAILED', async (t) => {
      const s = await buildTestServer(t, { driver })
      for (const q of ['?limit=0', '?limit=501', '?limit=abc', '?before=-1', '?limit=10&extra=1']) {
        assertProblem(t, await s.app.inject({ url: `/audit${q}`, headers: auth(s.tokens.admin) }), 400, 'VALIDATION_FAILED')
      }
    })

    t.test('the audit log needs the admin role', async (t) => {
      const s = await buildTestServer(t, { driver })
      assertProblem(t, await s.app.inject({ url: '/audit', headers: auth(s.tokens.publisher) }), 403, 'FORBIDDEN')
      assertProblem(t, await s.app.inject({ url: '/audit' }), 401, 'UNAUTHORIZED')
    })
  })
}
