import t from 'tap'
import { buildTestServer } from '../helpers/server.js'

t.test('a refused license on the W&B endpoint is counted, under channel "unknown"', async (t) => {
  const s = await buildTestServer(t)
  const missing = await s.app.inject({ url: '/api/v1/operator/channel' })
  t.equal(missing.statusCode, 401)
  t.match(missing.headers['www-authenticate'], /^Basic /)
  const expired = await s.license({ channels: ['stable'] }, Math.floor(Date.now() / 1000) - 7200)
  const refused = await s.app.inject({ url: '/api/v1/operator/channel', headers: { authorization: 'Basic ' + Buffer.from(`license:${expired}`).toString('base64') } })
  t.equal(refused.json().code, 'LICENSE_EXPIRED')
  const metrics = (await s.app.inject({ url: '/metrics' })).body
  t.match(metrics, /chartcast_spec_pulls_total\{endpoint="operator",channel="unknown",outcome="LICENSE_MISSING"\} 1/)
  t.match(metrics, /chartcast_spec_pulls_total\{endpoint="operator",channel="unknown",outcome="LICENSE_EXPIRED"\} 1/)
})
