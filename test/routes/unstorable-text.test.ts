/**
 * Text PostgreSQL cannot store (U+0000; an unpaired surrogate) anywhere in what a write sends is
 * a 400 VALIDATION_FAILED naming where it is, and nothing is stored: no row, no audit entry.
 */
import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { buildTestServer, testDrivers, type TestServer } from '../helpers/server.js'
import { assertProblem, auth } from '../helpers/problem.js'

const NUL = '\u0000'
const LONE_HIGH = '\uD800'
const LONE_LOW = '\uDC00'
const CHART = { url: 'https://charts.example.com/acme', name: 'acme-app', version: '0.1.0' }

async function auditCount (s: TestServer): Promise<number> {
  return (await s.app.inject({ url: '/audit?limit=500', headers: auth(s.tokens.admin) })).json().entries.length as number
}

async function releaseVersions (s: TestServer): Promise<string[]> {
  return (await s.app.inject({ url: '/releases', headers: auth(s.tokens.reader) })).json().releases.map((r: { version: string }) => r.version)
}

async function revocations (s: TestServer): Promise<unknown[]> {
  return (await s.app.inject({ url: '/licenses/revocations', headers: auth(s.tokens.admin) })).json().revocations
}

/** Asserts the refusal and that its detail names the place, as `body.notes` or `query.reason`. */
function assertRefused (t: Test, res: LightMyRequestResponse, where: string): void {
  const detail = assertProblem(t, res, 400, 'VALIDATION_FAILED').detail as string
  t.ok(detail.includes(where), `detail ${JSON.stringify(detail)} names ${where}`)
  t.match(detail, /cannot be stored/)
}

async function publish (s: TestServer, body: Record<string, unknown>): Promise<LightMyRequestResponse> {
  return await s.app.inject({ method: 'POST', url: '/releases', headers: auth(s.tokens.publisher), payload: { version: '1.0.0', chart: CHART, ...body } })
}

for (const driver of testDrivers()) {
  t.test(driver, async (t) => {
    t.test('a release field or value holding NUL or a lone surrogate is 400, nothing stored', async (t) => {
      const s = await buildTestServer(t, { driver })
      const cases: Array<[string, Record<string, unknown>, string]> = [
        ['version', { version: `1.0.0${NUL}` }, 'body.version'],
        ['notes (NUL)', { notes: `fixes${NUL}` }, 'body.notes'],
        ['notes (lone high surrogate)', { notes: `fixes ${LONE_HIGH}!` }, 'body.notes'],
        ['notes (lone low surrogate)', { notes: `${LONE_LOW}` }, 'body.notes'],
        ['chart.url', { chart: { ...CHART, url: `https://charts.example.com/a${NUL}` } }, 'body.chart.url'],
        ['chart.name', { chart: { ...CHART, name: `acme${LONE_HIGH}` } }, 'body.chart.name'],
        ['chart.version', { chart: { ...CHART, version: `0.1.0${NUL}` } }, 'body.chart.version'],
        ['a top-level values string', { values: { image: `nginx${NUL}` } }, 'body.values.image'],
        ['a deep values string', { values: { a: { b: { c: `x${LONE_LOW}y` } } } }, 'body.values.a.b.c'],
        ['a string in a values array', { values: { hosts: ['ok', `bad${NUL}`] } }, 'body.values.hosts.1'],
        ['a values key', { values: { [`ima${NUL}ge`]: 'nginx' } }, 'body.values.ima\\u0000ge'],
        ['a deep values key', { values: { a: { [`k${LONE_HIGH}`]: 1 } } }, 'body.values.a.k\\uD800']
      ]
      for (const [name, body, where] of cases) {
        t.test(name, async (t) => assertRefused(t, await publish(s, body), where))
      }
      t.same(await releaseVersions(s), [])
      t.equal(await auditCount(s), 0)
    })

    t.test('a YAML release body holding NUL or a lone surrogate is 400, nothing stored', async (t) => {
      const s = await buildTestServer(t, { driver })
      const yamlBodies: Array<[string, string, string]> = [
        ['a values string with \\0', 'values:\n  motd: "hello\\0world"\n', 'body.values.motd'],
        ['a values string with \\ud800', 'values:\n  motd: "hello\\ud800"\n', 'body.values.motd'],
        ['a values key with \\0', 'values:\n  "k\\0": 1\n', 'body.values.k\\u0000'],
        ['notes with \\udc00', 'notes: "\\udc00"\n', 'body.notes']
      ]
      for (const [name, extra, where] of yamlBodies) {
        t.test(name, async (t) => {
          const payload = `version: 1.0.0\nchart:\n  url: ${CHART.url}\n  name: ${CHART.name}\n  version: ${CHART.version}\n${extra}`
          const res = await s.app.inject({ method: 'POST', url: '/releases', headers: { ...auth(s.tokens.publisher), 'content-type': 'application/yaml' }, payload })
          assertRefused(t, res, where)
        })
      }
      t.same(await releaseVersions(s), [])
      t.equal(await auditCount(s), 0)
    })

    t.test('text with paired surrogates (emoji) and other control characters is stored and read back unchanged (control)', async (t) => {
      const s = await buildTestServer(t, { driver })
      const text = 'ship it \uD83D\uDE80 tab\there \u0001 \uFFFD'
      const res = await publish(s, { notes: text, values: { [`key ${text}`]: [text] } })
      t.equal(res.statusCode, 201, res.body)
      const stored = (await s.app.inject({ url: '/releases/1.0.0', headers: auth(s.tokens.reader) })).json()
      t.equal(stored.notes, text)
      t.same(stored.values, { [`key ${text}`]: [text] })
      const revoked = await s.app.inject({ method: 'POST', url: '/licenses/revocations', headers: auth(s.tokens.admin), payload: { jti: text, reason: text } })
      t.equal(revoked.statusCode, 201, revoked.body)
      t.match(await revocations(s), [{ jti: text, reason: text }])
    })

    t.test('a channel setting holding NUL or a lone surrogate is 400 and leaves the channel as it was', async (t) => {
      const s = await buildTestServer(t, { driver })
      t.equal((await s.putChannel('stable', { description: 'Production', values: { a: 1 } })).statusCode, 201)
      const auditBefore = await auditCount(s)
      const cases: Array<[string, Record<string, unknown>, string]> = [
        ['description', { description: `Prod${NUL}` }, 'body.description'],
        ['values string', { values: { a: { b: `x${LONE_HIGH}` } } }, 'body.values.a.b'],
        ['values key', { values: { [`${NUL}`]: 1 } }, 'body.values.\\u0000'],
        ['accepts', { accepts: `>=1.0.0${NUL}` }, 'body.accepts'],
        ['pollInterval', { pollInterval: `1h${LONE_LOW}` }, 'body.pollInterval']
      ]
      for (const [name, body, where] of cases) {
        t.test(`${name}, on an existing channel`, async (t) => assertRefused(t, await s.putChannel('stable', body), where))
        t.test(`${name}, on a new channel`, async (t) => assertRefused(t, await s.putChannel('beta', body), where))
      }
      const stable = (await s.app.inject({ url: '/channels/stable', headers: auth(s.tokens.reader) })).json()
      t.match(stable, { description: 'Production', values: { a: 1 }, accepts: null, pollInterval: null })
      assertProblem(t, await s.app.inject({ url: '/channels/beta', headers: auth(s.tokens.reader) }), 404, 'CHANNEL_NOT_FOUND')
      t.equal(await auditCount(s), auditBefore)
    })

    t.test('a promotion whose version holds NUL is 400, nothing promoted', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable')
      await s.publish('1.0.0')
      const auditBefore = await auditCount(s)
      const res = await s.app.inject({ method: 'POST', url: '/channels/stable/releases', headers: auth(s.tokens.publisher), payload: { version: `1.0.0${NUL}` } })
      assertRefused(t, res, 'body.version')
      t.equal((await s.app.inject({ url: '/channels/stable', headers: auth(s.tokens.reader) })).json().head, null)
      t.equal(await auditCount(s), auditBefore)
    })

    t.test('a withdrawal whose ?reason= holds NUL is 400, never 500, and withdraws nothing', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable')
      await s.publish('1.0.0')
      await s.promote('stable', '1.0.0')
      const auditBefore = await auditCount(s)
      for (const reason of ['%00', 'bad%00rollout', 'x%00%00']) {
        const res = await s.app.inject({ method: 'DELETE', url: `/channels/stable/releases/1.0.0?reason=${reason}`, headers: auth(s.tokens.publisher) })
        assertRefused(t, res, 'query.reason')
      }
      t.equal((await s.app.inject({ url: '/channels/stable', headers: auth(s.tokens.reader) })).json().head, '1.0.0')
      const events = (await s.app.inject({ url: '/channels/stable/releases', headers: auth(s.tokens.reader) })).json().events as Array<{ action: string }>
      t.same(events.map((e) => e.action), ['promote'])
      t.equal(await auditCount(s), auditBefore)
      // The incident path still works with an ordinary reason.
      const ok = await s.app.inject({ method: 'DELETE', url: '/channels/stable/releases/1.0.0?reason=bad%20rollout%20%F0%9F%94%A5', headers: auth(s.tokens.publisher) })
      t.equal(ok.statusCode, 204, ok.body)
    })

    t.test('a withdrawal reason that is not valid UTF-8 never becomes a 500', async (t) => {
      const s = await buildTestServer(t, { driver })
      await s.putChannel('stable')
      await s.publish('1.0.0')
      await s.promote('stable', '1.0.0')
      // %ED%A0%80 is a UTF-8-encoded surrogate (invalid UTF-8); %FF is no UTF-8 at all.
      for (const reason of ['%ED%A0%80', '%FF', '%C0%80']) {
        const res = await s.app.inject({ method: 'DELETE', url: `/channels/stable/releases/1.0.0?reason=${reason}`, headers: auth(s.tokens.publisher) })
        t.ok(res.statusCode < 500, `reason=${reason} answered ${res.statusCode}`)
      }
    })

    t.test('a revocation whose reason, jti or sub holds NUL or a lone surrogate is 400, nothing revoked', async (t) => {
      const s = await buildTestServer(t, { driver })
      const cases: Array<[string, Record<string, unknown>, string]> = [
        ['reason (NUL)', { jti: 'lic-1', reason: `leaked${NUL}` }, 'body.reason'],
        ['reason (lone surrogate)', { jti: 'lic-1', reason: `leaked ${LONE_HIGH}` }, 'body.reason'],
        ['jti', { jti: `lic${NUL}1`, reason: 'leaked' }, 'body.jti'],
        ['sub', { sub: `cluster${LONE_LOW}`, reason: 'leaked' }, 'body.sub']
      ]
      for (const [name, payload, where] of cases) {
        t.test(name, async (t) => {
          const res = await s.app.inject({ method: 'POST', url: '/licenses/revocations', headers: auth(s.tokens.admin), payload })
          assertRefused(t, res, where)
        })
      }
      t.same(await revocations(s), [])
      t.equal(await auditCount(s), 0)
    })
  })
}
