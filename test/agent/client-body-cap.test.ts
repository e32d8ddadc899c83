import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import { SpecClient } from '../../src/agent/client.js'
import { SpecVerifier } from '../../src/agent/spec-verifier.js'
import { anchorFromRoot, keysetKeyOf } from '../../src/domain/keyset.js'
import { initKeys } from '../../src/keyset-tools.js'

// The spec body is read with a cap while it streams: a 50 MiB chunked answer (no
// Content-Length) is refused after ~10 MiB, the connection is dropped and nothing of it is
// kept. Memory is checked after a forced GC (not by timing), and by how much the server could
// send at all before the client stopped reading.

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const MiB = 1024 * 1024

interface Served { url: string, sent: () => number, closed: () => Promise<void>, close: () => Promise<void> }

async function serve (handler: (res: ServerResponse, count: (n: number) => void) => void | Promise<void>): Promise<Served> {
  let sent = 0
  let responseClosed: Promise<void> = Promise.resolve()
  const server = createServer((req, res) => {
    responseClosed = new Promise((resolve) => res.once('close', () => resolve()))
    void handler(res, (n) => { sent += n })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sent: () => sent,
    /** Resolves when the last answer's connection has closed (the client stopped reading). */
    closed: async () => { await responseClosed },
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

/** Streams `total` bytes of a JSON-looking body in 64 KiB chunks, honouring backpressure, until the client goes away. */
async function streamHuge (res: ServerResponse, count: (n: number) => void, total: number): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/json' })
  const chunk = Buffer.alloc(64 * 1024, 'a')
  res.write('{"channel":"stable","version":"1.0.0","values":{"x":"')
  let closed = false
  res.on('close', () => { closed = true })
  for (let written = 0; written < total && !closed; written += chunk.length) {
    count(chunk.length)
    if (!res.write(chunk)) await new Promise<void>((resolve) => { res.once('drain', resolve); res.once('close', resolve) })
  }
  if (!closed) res.end('"}}')
}

const memory = () => {
  gc()
  const m = process.memoryUsage()
  return m.heapUsed + m.arrayBuffers
}

t.test('a 50 MiB chunked answer is refused as unusable, the stream stops early, and memory stays flat', async (t) => {
  const served = await serve((res, count) => streamHuge(res, count, 50 * MiB))
  t.teardown(served.close)
  const client = new SpecClient({ server: served.url, channel: 'stable', timeoutMs: 60_000 })
  const before = memory()
  const result = await client.fetchSpec({ license: 'good-license' })
  // The refused body's chunks are let go as the stream is torn down, which takes a few turns of
  // the event loop (more on a loaded machine): measured once the server has seen the connection
  // close, then again a few times. A body that is kept stays retained however long this waits.
  await served.closed()
  let retained = memory() - before
  for (let attempt = 0; attempt < 20 && retained >= 8 * MiB; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    retained = memory() - before
  }
  t.match(result, { kind: 'unavailable', reason: /larger than 10485760 bytes/ })
  t.ok(served.sent() < 30 * MiB, `the server got to send only ${Math.round(served.sent() / MiB)} MiB of 50 before the client stopped reading`)
  t.ok(retained < 8 * MiB, `nothing of the body is kept (${Math.round(retained / 1024)} KiB retained)`)
})

t.test('a Content-Length over the cap is refused before reading; a smaller cap (--max-body) applies', async (t) => {
  const big = JSON.stringify({ channel: 'stable', version: '1.0.0', chart: { url: 'https://charts.example.com', name: 'a', version: '1.0.0' }, values: { filler: 'x'.repeat(2 * MiB) } })
  const served = await serve((res, count) => {
    count(big.length)
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(big)) })
    res.end(big)
  })
  t.teardown(served.close)
  const ok = await new SpecClient({ server: served.url, channel: 'stable' }).fetchSpec({ license: 'l' })
  t.equal(ok.kind, 'ok', 'a 2 MiB spec is within the default 10 MiB')
  const capped = await new SpecClient({ server: served.url, channel: 'stable', maxBodyBytes: MiB }).fetchSpec({ license: 'l' })
  t.match(capped, { kind: 'unavailable', reason: /larger than 1048576 bytes/ })
})

t.test('GET /keys (--trust-root) is capped too: a 50 MiB chunked chain is refused as keyset-unavailable while it streams', async (t) => {
  const served = await serve((res, count) => streamHuge(res, count, 50 * MiB))
  t.teardown(served.close)
  const { root } = initKeys()
  const verifier = new SpecVerifier({ trust: anchorFromRoot(keysetKeyOf(root.publicKey)), server: served.url })
  const result = await verifier.verify({ body: '{}', signature: 'x.y.z' }, { channel: 'stable', highestRevision: null })
  await served.closed()
  t.match(result, { ok: false, check: 'keyset-unavailable', detail: /larger than 10485760 bytes/ })
  t.ok(served.sent() < 30 * MiB, `the server got to send only ${Math.round(served.sent() / MiB)} MiB of 50 before the agent stopped reading`)
})
