/**
 * A 304 carries no content (RFC 9110 15.4.5), so it has no Content-Type and no Content-Length
 * (8.6: a server may send the length the 200 would have had, but chartcast sends none, and a
 * length with no body misleads clients and proxies). Node drops a body written on a 304, so
 * the body being empty proves nothing: these check the header block on a real socket too.
 */
import net from 'node:net'
import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { buildTestServer, testDrivers, type TestServer } from '../helpers/server.js'

interface RawAnswer { status: number, headers: Map<string, string>, afterHeaders: string }

/** One request over a real TCP connection, read raw until the server closes it. */
async function rawGet (baseUrl: string, target: string, headers: Record<string, string>): Promise<RawAnswer> {
  const { hostname, port } = new URL(baseUrl)
  const request = [`GET ${target} HTTP/1.1`, `Host: ${hostname}:${port}`, 'Connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n')
  const raw = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(Number(port), hostname)
    let data = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => { data += chunk })
    socket.on('end', () => resolve(data))
    socket.on('error', reject)
    socket.write(request)
  })
  const split = raw.indexOf('\r\n\r\n')
  const [statusLine = '', ...headerLines] = raw.slice(0, split).split('\r\n')
  const answerHeaders = new Map(headerLines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]))
  return { status: Number(statusLine.split(' ')[1]), headers: answerHeaders, afterHeaders: raw.slice(split + 4) }
}

function checkBodiless304Injected (t: Test, res: LightMyRequestResponse, what: string): void {
  t.equal(res.statusCode, 304, `${what}: 304`)
  t.equal(res.headers['content-type'], undefined, `${what}: no Content-Type`)
  t.equal(res.headers['content-length'], undefined, `${what}: no Content-Length`)
  t.equal(res.headers['transfer-encoding'], undefined, `${what}: no Transfer-Encoding`)
  t.equal(res.rawPayload.length, 0, `${what}: no bytes`)
}

function checkBodiless304Raw (t: Test, res: RawAnswer, etag: string, what: string): void {
  t.equal(res.status, 304, `${what}: 304 on the wire`)
  t.equal(res.headers.get('content-type'), undefined, `${what}: no Content-Type on the wire`)
  t.equal(res.headers.get('content-length'), undefined, `${what}: no Content-Length on the wire`)
  t.equal(res.headers.get('transfer-encoding'), undefined, `${what}: no Transfer-Encoding on the wire`)
  t.equal(res.headers.get('etag'), etag, `${what}: the ETag`)
  t.equal(res.afterHeaders, '', `${what}: nothing after the header block`)
}

async function seeded (t: Test, driver: 'pglite' | 'postgres'): Promise<TestServer> {
  const s = await buildTestServer(t, { driver })
  t.equal((await s.putChannel('stable', { pollInterval: '15m' })).statusCode, 201)
  for (const v of ['1.0.0', '1.1.0']) {
    t.equal((await s.publish(v, { values: { tag: v } })).statusCode, 201)
    t.equal((await s.promote('stable', v)).statusCode, 201)
  }
  return s
}

for (const driver of testDrivers()) {
  t.test(`${driver}: a 304 from /channels/:name/spec has no Content-Type, Content-Length or body`, async (t) => {
    const s = await seeded(t, driver)
    const base = await s.listen()
    const license = await s.license({ channels: ['stable'] })
    // Head (the synchronous path, license already verified), a pinned version, and a license
    // seen for the first time (verified on the asynchronous path) answer through different code.
    for (const [what, query, token] of [['head', '', license], ['pinned version', '?version=1.0.0', license], ['first pull of a new license', '', await s.license({ sub: 'cluster-new' })]] as const) {
      const url = `/channels/stable/spec${query}`
      const first = await s.app.inject({ url, headers: { authorization: `Bearer ${license}` } })
      t.equal(first.statusCode, 200, `${what}: 200 first`)
      const etag = first.headers.etag as string
      checkBodiless304Injected(t, await s.app.inject({ url, headers: { authorization: `Bearer ${token}`, 'if-none-match': etag } }), what)
      checkBodiless304Raw(t, await rawGet(base, url, { authorization: `Bearer ${what === 'first pull of a new license' ? await s.license({ sub: 'cluster-new-raw' }) : token}`, 'if-none-match': etag }), etag, what)
    }
  })

  t.test(`${driver}: /api/v1/operator/channel with If-None-Match is a full 200 or a bodiless 304`, async (t) => {
    // The operator endpoint documents no 304 (the W&B operator expects 200); whichever it
    // answers, the framing must be right.
    const s = await seeded(t, driver)
    const base = await s.listen()
    const basic = `Basic ${Buffer.from(`license:${await s.license({ channels: ['stable'], channel: 'stable' })}`).toString('base64')}`
    const first = await s.app.inject({ url: '/api/v1/operator/channel', headers: { authorization: basic } })
    t.equal(first.statusCode, 200)
    const etag = first.headers.etag as string
    t.ok(etag, 'the operator answer has an ETag')
    const injected = await s.app.inject({ url: '/api/v1/operator/channel', headers: { authorization: basic, 'if-none-match': etag } })
    const raw = await rawGet(base, '/api/v1/operator/channel', { authorization: basic, 'if-none-match': etag })
    if (injected.statusCode === 304) {
      checkBodiless304Injected(t, injected, 'operator')
      checkBodiless304Raw(t, raw, etag, 'operator')
    } else {
      t.equal(injected.statusCode, 200)
      t.equal(injected.body, first.body, 'the full answer')
      t.equal(raw.status, 200)
      t.equal(raw.headers.get('content-length'), String(Buffer.byteLength(first.body)), 'Content-Length of the whole body')
      t.equal(raw.afterHeaders, first.body, 'the body on the wire')
    }
  })
}
