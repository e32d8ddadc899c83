/**
 * Rate limiting: spec pulls per license (RATE_LIMIT_SPEC) and publisher API calls per token
 * (RATE_LIMIT_API), per RATE_LIMIT_WINDOW. Over the limit: 429 RATE_LIMITED problem with
 * Retry-After; other licenses and tokens are not affected.
 */
import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { buildTestServer, type TestServer } from '../helpers/server.js'

function checkLimited (t: Test, res: LightMyRequestResponse, what: string): void {
  t.equal(res.statusCode, 429, `${what}: 429`)
  t.match(String(res.headers['content-type']), /^application\/problem\+json/, `${what}: problem+json`)
  const retryAfter = Number(res.headers['retry-after'])
  t.ok(retryAfter > 0 && retryAfter <= 60, `${what}: Retry-After within the 1m window (${res.headers['retry-after']})`)
  t.match(res.json(), { code: 'RATE_LIMITED', status: 429 }, `${what}: code`)
  t.equal(res.headers['x-ratelimit-remaining'], '0', `${what}: x-ratelimit-remaining`)
}

const env = { RATE_LIMIT_SPEC: '5', RATE_LIMIT_API: '5', RATE_LIMIT_WINDOW: '1m' }

t.test('spec pulls are limited per license', async (t) => {
  const s = await buildTestServer(t, { env })
  await s.putChannel('stable')
  await s.publish('1.0.0')
  await s.promote('stable', '1.0.0')
  const first = await s.license({ sub: 'cluster-1' })
  const second = await s.license({ sub: 'cluster-2' })
  const pull = async (license: string, url = '/channels/stable/spec', etag?: string) => await s.app.inject({ url, headers: { authorization: `Bearer ${license}`, ...(etag !== undefined && { 'if-none-match': etag }) } })

  const ok = await pull(first)
  t.equal(ok.statusCode, 200)
  // 304s count too: a poller that only ever gets 304s is still polling.
  for (let i = 0; i < 4; i++) t.equal((await pull(first, '/channels/stable/spec', ok.headers.etag as string)).statusCode, 304, `pull ${i + 2} of 5`)
  checkLimited(t, await pull(first), '6th pull')
  checkLimited(t, await pull(first), '7th pull')

  const other = await pull(second)
  t.equal(other.statusCode, 200, 'another license is not affected')
  t.equal(other.body, ok.body)

  // The W&B-compatible endpoint is a spec endpoint too.
  const basic = (license: string) => `Basic ${Buffer.from(`license:${license}`).toString('base64')}`
  const third = await s.license({ sub: 'cluster-3', channels: ['stable'] })
  for (let i = 0; i < 5; i++) t.equal((await s.app.inject({ url: '/api/v1/operator/channel', headers: { authorization: basic(third) } })).statusCode, 200)
  checkLimited(t, await s.app.inject({ url: '/api/v1/operator/channel', headers: { authorization: basic(third) } }), 'operator endpoint, 6th pull')

  // Pinned versions count against the same window.
  const fourth = await s.license({ sub: 'cluster-4' })
  for (let i = 0; i < 5; i++) t.equal((await pull(fourth, i % 2 === 0 ? '/channels/stable/spec?version=1.0.0' : '/channels/stable/spec')).statusCode, 200)
  checkLimited(t, await pull(fourth, '/channels/stable/spec?version=1.0.0'), 'pinned version, 6th pull')

  // Refusals show in the pull metrics.
  const metrics = await s.app.inject({ url: '/metrics' })
  t.match(metrics.body, /chartcast_spec_pulls_total\{endpoint="spec",channel="stable",outcome="RATE_LIMITED"\} 3/, 'spec 429s counted')
  t.match(metrics.body, /chartcast_spec_pulls_total\{endpoint="operator",channel="stable",outcome="RATE_LIMITED"\} 1/, 'operator 429s counted')

  // Health probes are never limited.
  for (let i = 0; i < 10; i++) t.equal((await s.app.inject({ url: '/livez' })).statusCode, 200)
})

t.test('anonymous operator pulls (ANONYMOUS_CHANNEL) are limited per client address', async (t) => {
  const s = await buildTestServer(t, { env: { ...env, ANONYMOUS_CHANNEL: 'stable' } })
  await s.putChannel('stable')
  await s.publish('1.0.0')
  await s.promote('stable', '1.0.0')
  const anonymous = async (remoteAddress: string) => await s.app.inject({ url: '/api/v1/operator/channel', remoteAddress })
  for (let i = 0; i < 5; i++) t.equal((await anonymous('10.1.1.1')).statusCode, 200)
  checkLimited(t, await anonymous('10.1.1.1'), 'anonymous, 6th pull')
  t.equal((await anonymous('10.2.2.2')).statusCode, 200, 'another address is not affected')
})

t.test('an address whose new tokens keep failing verification gets 429 before any further verification', async (t) => {
  const s = await buildTestServer(t, { env: { RATE_LIMIT_LICENSE_FAILURES: '3', RATE_LIMIT_WINDOW: '1m' } })
  await s.putChannel('stable')
  await s.publish('1.0.0')
  await s.promote('stable', '1.0.0')
  const known = await s.license({ sub: 'cluster-known' })
  const fresh = await s.license({ sub: 'cluster-fresh' })
  const pull = async (license: string, remoteAddress = '10.9.9.9') => await s.app.inject({ url: '/channels/stable/spec', remoteAddress, headers: { authorization: `Bearer ${license}` } })
  t.equal((await pull(known)).statusCode, 200, 'a license verified before the flood')

  // Made-up tokens: each is new, so each would cost a signature verification.
  const [header, payload] = known.split('.') as [string, string]
  const madeUp = (i: number) => `${header}.${payload}.${Buffer.from(`forged-${i}`).toString('base64url')}`
  for (let i = 0; i < 3; i++) t.match((await pull(madeUp(i))).json(), { code: 'LICENSE_INVALID' }, `made-up token ${i + 1} is verified and refused`)
  checkLimited(t, await pull(madeUp(3)), '4th made-up token')
  checkLimited(t, await pull(fresh), 'a real but new license from that address waits too')
  const basic = `Basic ${Buffer.from(`license:${madeUp(4)}`).toString('base64')}`
  checkLimited(t, await s.app.inject({ url: '/api/v1/operator/channel', remoteAddress: '10.9.9.9', headers: { authorization: basic } }), 'operator endpoint, new token')

  t.equal((await pull(known)).statusCode, 200, 'a license already verified is still served')
  t.match((await pull(madeUp(0))).json(), { code: 'LICENSE_INVALID' }, 'a refusal already cached costs nothing and is answered as before')
  t.equal((await pull(fresh, '10.8.8.8')).statusCode, 200, 'another address is not affected')
})

t.test('the publisher API is limited per token', async (t) => {
  const s = await buildTestServer(t, { env })
  const asReader = async () => await s.app.inject({ url: '/releases', headers: { authorization: `Bearer ${s.tokens.reader}` } })
  for (let i = 0; i < 5; i++) t.equal((await asReader()).statusCode, 200, `call ${i + 1} of 5`)
  checkLimited(t, await asReader(), '6th call')

  // Another token is counted separately, writes included.
  for (let i = 0; i < 5; i++) t.equal((await s.publish(`1.0.${i}`)).statusCode, 201, `publish ${i + 1} of 5`)
  const sixth = await s.publish('1.0.5')
  checkLimited(t, sixth, '6th publish')
  const listed = await s.app.inject({ url: '/releases', headers: { authorization: `Bearer ${s.tokens.admin}` } })
  t.equal(listed.statusCode, 200, 'the admin token is not affected')
  t.same(listed.json().releases.map((r: { version: string }) => r.version), ['1.0.4', '1.0.3', '1.0.2', '1.0.1', '1.0.0'], 'the limited publish stored nothing')
})

t.test('a zero limit disables limiting, beyond the default limits where those refuse', async (t) => {
  // The defaults (RATE_LIMIT_API 300, RATE_LIMIT_SPEC 600 per minute) refuse the call after them;
  // with 0 the same calls all pass.
  const apiCalls = 301
  const specPulls = 601
  const run = async (s: TestServer): Promise<{ api: number[], spec: number[] }> => {
    await s.putChannel('stable')
    await s.publish('1.0.0')
    await s.promote('stable', '1.0.0')
    const license = await s.license({ sub: 'cluster-busy' })
    const api: number[] = []
    for (let i = 0; i < apiCalls; i++) api.push((await s.app.inject({ url: '/releases', headers: { authorization: `Bearer ${s.tokens.reader}` } })).statusCode)
    const spec: number[] = []
    for (let i = 0; i < specPulls; i++) spec.push((await s.app.inject({ url: '/channels/stable/spec', headers: { authorization: `Bearer ${license}` } })).statusCode)
    return { api, spec }
  }
  const byDefault = await run(await buildTestServer(t))
  t.equal(byDefault.api.at(-1), 429, `by default the API call ${apiCalls} is refused`)
  t.equal(byDefault.spec.at(-1), 429, `by default the spec pull ${specPulls} is refused`)

  const disabled = await run(await buildTestServer(t, { env: { RATE_LIMIT_SPEC: '0', RATE_LIMIT_API: '0' } }))
  t.same(disabled.api.filter((status) => status !== 200), [], `with RATE_LIMIT_API=0 all ${apiCalls} API calls are 200`)
  t.same(disabled.spec.filter((status) => status !== 200), [], `with RATE_LIMIT_SPEC=0 all ${specPulls} spec pulls are 200`)
})
