import t from 'tap'
import { buildTestServer } from '../helpers/server.js'

t.test('publish, promote and pull a spec', async (t) => {
  const s = await buildTestServer(t)
  t.equal((await s.putChannel('stable', { values: { a: 1 } })).statusCode, 201)
  const pub = await s.publish('1.0.0', { values: { b: 2 } })
  t.equal(pub.statusCode, 201, pub.body)
  const pro = await s.promote('stable', '1.0.0')
  t.equal(pro.statusCode, 201, pro.body)
  const license = await s.license({ channels: ['stable'] })
  const res = await s.app.inject({ url: '/channels/stable/spec', headers: { authorization: `Bearer ${license}` } })
  t.equal(res.statusCode, 200, res.body)
  t.same(res.json().values, { a: 1, b: 2 })
  const again = await s.app.inject({ url: '/channels/stable/spec', headers: { authorization: `Bearer ${license}`, 'if-none-match': res.headers.etag as string } })
  t.equal(again.statusCode, 304)
})

t.test('a second server in the same process starts on an emptied database', async (t) => {
  const s = await buildTestServer(t)
  const res = await s.app.inject({ url: '/channels', headers: { authorization: `Bearer ${s.tokens.reader}` } })
  t.equal(res.statusCode, 200)
  t.same(res.json().channels, [])
})
