/**
 * End to end with signing on: the real server (PGlite, real HTTP listener) signs, the agent
 * (dir applier, --once, --trust-root the vendor's root public key) verifies through a TCP proxy,
 * then the proxy rewrites a body and the agent refuses it. The proxy is the stand-in for a
 * compromised network (test/helpers/tcp-proxy.ts).
 */
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { runAgentCli } from '../../src/cli/agent.js'
import { workdir } from '../helpers/agent-harness.js'
import { captureLogs } from '../helpers/agent-log.js'
import { buildTestServer } from '../helpers/server.js'
import { testSigning } from '../helpers/signing.js'
import { startTamperingProxy } from '../helpers/tcp-proxy.js'

t.test('the agent applies signed answers and refuses one a proxy rewrote', async (t) => {
  const signing = testSigning(t)
  const s = await buildTestServer(t, { env: signing.env })
  t.equal((await s.putChannel('stable', { values: { replicas: 2 } })).statusCode, 201)
  t.equal((await s.publish('1.0.0')).statusCode, 201)
  t.equal((await s.promote('stable', '1.0.0')).statusCode, 201)
  const url = new URL(await s.listen())
  const proxy = await startTamperingProxy({ host: url.hostname, port: Number(url.port) })
  t.teardown(async () => { await proxy.close() })

  const wd = await workdir()
  await writeFile(wd.licenseFile, await s.license({ channels: ['stable'] }))
  const out = join(wd.dir, 'out')
  const logs = captureLogs()
  const args = ['--server', proxy.url, '--channel', 'stable', '--license-file', wd.licenseFile, '--release', 'acme', '--namespace', 'acme-ns',
    '--state-dir', wd.stateDir, '--applier', 'dir', '--out', out, '--trust-root', signing.rootPublicFile, '--once']
  const run = async () => await runAgentCli(args, { logger: logs.logger })
  const current = async () => ({
    spec: JSON.parse(await readFile(join(out, 'current', 'spec.json'), 'utf8')) as { version: string },
    values: parse(await readFile(join(out, 'current', 'values.yaml'), 'utf8')) as Record<string, unknown>
  })

  t.equal(await run(), 0, 'a signed answer through an honest proxy is applied')
  t.equal(logs.find('done').at(-1)?.outcome, 'applied')
  t.same((await current()).values, { replicas: 2 })
  const revisions = JSON.parse(await readFile(join(wd.stateDir, 'revisions.json'), 'utf8')) as Record<string, number>
  t.type(revisions.stable, 'number', 'the highest revision seen is kept in the state dir')

  t.equal(await run(), 0, 'a 304 verifies against the body kept with the cached spec')
  t.equal(logs.find('not-modified').length, 1)
  t.equal(logs.find('done').at(-1)?.outcome, 'unchanged')

  t.equal((await s.publish('1.1.0', { values: { tag: '1.1.0' } })).statusCode, 201)
  t.equal((await s.promote('stable', '1.1.0')).statusCode, 201)
  proxy.tamper = (chunk) => Buffer.from(chunk.toString('latin1').replace('"replicas":2', '"replicas":9'), 'latin1')
  t.equal(await run(), 6, 'a rewritten body: exit 6')
  t.equal(logs.find('done').at(-1)?.outcome, 'unverified')
  const refusal = logs.find('verification-failed').at(-1)
  t.equal(refusal?.check, 'body-hash', 'the log names the failed check')
  t.same((await current()).values, { replicas: 2 })
  t.equal((await current()).spec.version, '1.0.0', 'nothing applied: the running release stays')

  await s.app.checkins.flush()
  const deployment = await s.app.inject({ url: '/deployments/cluster-1', headers: { authorization: `Bearer ${s.tokens.reader}` } })
  t.match(deployment.json(), { lastReport: { version: '1.1.0', outcome: 'skipped', detail: /body-hash/ } }, 'a skipped report says so')

  proxy.tamper = null
  t.equal(await run(), 0, 'the honest answer again')
  t.equal((await current()).spec.version, '1.1.0')
  t.same((await current()).values, { replicas: 2, tag: '1.1.0' })
})

t.test('with --trust-root, a server that does not sign is refused (keyset-unavailable), nothing applied', async (t) => {
  const s = await buildTestServer(t)
  t.equal((await s.putChannel('stable')).statusCode, 201)
  t.equal((await s.publish('1.0.0')).statusCode, 201)
  t.equal((await s.promote('stable', '1.0.0')).statusCode, 201)
  const url = await s.listen()
  const signing = testSigning(t)
  const wd = await workdir()
  await writeFile(wd.licenseFile, await s.license({ channels: ['stable'] }))
  const logs = captureLogs()
  const code = await runAgentCli(['--server', url, '--channel', 'stable', '--license-file', wd.licenseFile, '--release', 'acme', '--namespace', 'acme-ns',
    '--state-dir', wd.stateDir, '--applier', 'dir', '--out', join(wd.dir, 'out'), '--trust-root', signing.rootPublicFile, '--once'], { logger: logs.logger })
  t.equal(code, 6)
  t.equal(logs.find('verification-failed').at(-1)?.check, 'keyset-unavailable', 'GET /keys is a 404 on a server that does not sign')
})

t.test('a --trust-root that is not a key is a configuration error', async (t) => {
  const wd = await workdir()
  const bad = await wd.write('root.pem', 'not a key')
  let err = ''
  const code = await runAgentCli(['--server', 'http://127.0.0.1:9', '--channel', 'stable', '--license-file', wd.licenseFile, '--release', 'acme', '--namespace', 'acme-ns',
    '--state-dir', wd.stateDir, '--applier', 'dir', '--out', join(wd.dir, 'out'), '--trust-root', bad, '--once'], { writeErr: (s) => { err += s } })
  t.equal(code, 2)
  t.match(err, /--trust-root/)
})

t.test('a replayed older signed answer is refused (revision-rollback), nothing applied', async (t) => {
  const signing = testSigning(t)
  const s = await buildTestServer(t, { env: signing.env })
  t.equal((await s.putChannel('stable')).statusCode, 201)
  t.equal((await s.publish('1.0.0', { values: { tag: 'one' } })).statusCode, 201)
  t.equal((await s.promote('stable', '1.0.0')).statusCode, 201)
  const url = new URL(await s.listen())
  const proxy = await startTamperingProxy({ host: url.hostname, port: Number(url.port) })
  t.teardown(async () => { await proxy.close() })
  const wd = await workdir()
  await writeFile(wd.licenseFile, await s.license({ channels: ['stable'] }))
  const out = join(wd.dir, 'out')
  const logs = captureLogs()
  const run = async () => await runAgentCli(['--server', proxy.url, '--channel', 'stable', '--license-file', wd.licenseFile, '--release', 'acme', '--namespace', 'acme-ns',
    '--state-dir', wd.stateDir, '--applier', 'dir', '--out', out, '--trust-root', signing.rootPublicFile, '--once'], { logger: logs.logger })

  // The attacker records the whole signed 200 answer for 1.0.0 as it passes.
  let recorded: Buffer | null = null
  proxy.tamper = (chunk) => {
    if (/^HTTP\/1\.1 200/.test(chunk.toString('latin1')) && chunk.toString('latin1').toLowerCase().includes('chartcast-signature:')) recorded = chunk
    return chunk
  }
  t.equal(await run(), 0)
  t.ok(recorded, 'a signed answer was recorded')

  t.equal((await s.publish('1.1.0', { values: { tag: 'two' } })).statusCode, 201)
  t.equal((await s.promote('stable', '1.1.0')).statusCode, 201)
  proxy.tamper = null
  t.equal(await run(), 0)
  t.equal(logs.find('done').at(-1)?.outcome, 'applied')

  // Then answers every spec pull with the old, validly signed answer.
  proxy.tamper = (chunk) => chunk.toString('latin1').toLowerCase().includes('etag:') ? recorded! : chunk
  t.equal(await run(), 6)
  t.equal(logs.find('verification-failed').at(-1)?.check, 'revision-rollback')
  t.equal((JSON.parse(await readFile(join(out, 'current', 'spec.json'), 'utf8')) as { version: string }).version, '1.1.0', 'the running release stays')
})
