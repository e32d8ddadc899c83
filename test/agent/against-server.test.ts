import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { runAgentCli } from '../../src/cli/agent.js'
import { workdir } from '../helpers/agent-harness.js'
import { captureLogs } from '../helpers/agent-log.js'
import { buildTestServer } from '../helpers/server.js'

// End to end against the real chartcast server (PGlite, real HTTP listener): the agent
// with the dir applier, --once per cycle, through promotion, 304, withdrawal, expiry and
// revocation, then the server going away.

t.test('agent against the real server', async (t) => {
  const s = await buildTestServer(t)
  t.equal((await s.putChannel('stable', { values: { replicas: 2, tier: 'base' }, pollInterval: '1h' })).statusCode, 201)
  t.equal((await s.publish('1.0.0', { values: { image: { tag: '1.0.0' } } })).statusCode, 201)
  t.equal((await s.promote('stable', '1.0.0')).statusCode, 201)
  const url = await s.listen()

  const wd = await workdir()
  await writeFile(wd.licenseFile, await s.license({ channels: ['stable'] }))
  const userValues = await wd.write('user.yaml', 'replicas: 3\n')
  const out = join(wd.dir, 'out')
  const logs = captureLogs()
  const args = ['--server', url, '--channel', 'stable', '--license-file', wd.licenseFile, '--release', 'acme', '--namespace', 'acme-ns',
    '--state-dir', wd.stateDir, '--applier', 'dir', '--out', out, '--user-values', userValues, '--once']
  const run = async () => await runAgentCli(args, { logger: logs.logger })
  const current = async () => ({
    spec: JSON.parse(await readFile(join(out, 'current', 'spec.json'), 'utf8')) as { version: string },
    values: parse(await readFile(join(out, 'current', 'values.yaml'), 'utf8')) as Record<string, unknown>
  })
  const lastDone = () => logs.find('done').at(-1)?.outcome

  t.equal(await run(), 0, 'first apply')
  t.equal(lastDone(), 'applied')
  t.same((await current()).values, { replicas: 3, tier: 'base', image: { tag: '1.0.0' } }, 'channel + release values, user layer on top')

  t.equal(await run(), 0, 'second run')
  t.equal(lastDone(), 'unchanged')
  t.equal(logs.find('not-modified').length, 1, 'the real server answered 304 to the stored ETag')
  t.equal(logs.find('rejected').length, 0, 'the real server took the Chartcast-Applied header the second run sent')

  t.equal((await s.publish('1.1.0', { values: { image: { tag: '1.1.0' } } })).statusCode, 201)
  t.equal((await s.promote('stable', '1.1.0')).statusCode, 201)
  t.equal(await run(), 0)
  t.equal(lastDone(), 'applied')
  t.equal((await current()).spec.version, '1.1.0', 'promotion applied')

  // The fleet view: the pull was a check-in, and the agent reported the apply; both reach the
  // database with the next flush.
  await s.app.checkins.flush()
  const deployment = await s.app.inject({ url: '/deployments/cluster-1', headers: { authorization: `Bearer ${s.tokens.reader}` } })
  t.equal(deployment.statusCode, 200, deployment.body)
  t.match(deployment.json(), {
    id: 'cluster-1',
    channel: 'stable',
    appliedVersion: '1.0.0',
    servedVersion: '1.1.0',
    lastReport: { version: '1.1.0', outcome: 'applied' }
  }, 'the pull told what ran (1.0.0) and what it got (1.1.0); the report says 1.1.0 was applied')
  const fleet = await s.app.inject({ url: '/channels/stable/fleet', headers: { authorization: `Bearer ${s.tokens.reader}` } })
  t.match(fleet.json(), { channel: 'stable', total: 1, byVersion: { '1.1.0': { applied: 1, failed: 0 } } })

  const withdraw = await s.app.inject({ method: 'DELETE', url: '/channels/stable/releases/1.1.0', headers: { authorization: `Bearer ${s.tokens.publisher}` } })
  t.equal(withdraw.statusCode, 204, withdraw.body)
  t.equal(await run(), 0)
  t.equal(lastDone(), 'downgrade-refused', 'falling back to 1.0.0 is refused without --allow-downgrade')
  t.equal((await current()).spec.version, '1.1.0')
  t.equal(await runAgentCli([...args, '--allow-downgrade'], { logger: logs.logger }), 0)
  t.equal((await current()).spec.version, '1.0.0', 'applied with --allow-downgrade')

  await writeFile(wd.licenseFile, await s.license({ channels: ['stable'], expiresIn: 60 }, Math.floor(Date.now() / 1000) - 7200))
  t.equal(await run(), 3, 'expired license')
  t.equal(logs.find('license-refused').at(-1)?.code, 'LICENSE_EXPIRED')

  await writeFile(wd.licenseFile, await s.license({ channels: ['stable'] }))
  const revoke = await s.app.inject({ method: 'POST', url: '/licenses/revocations', headers: { authorization: `Bearer ${s.tokens.admin}` }, payload: { sub: 'cluster-1', reason: 'agent e2e' } })
  t.equal(revoke.statusCode, 201, revoke.body)
  t.equal(await run(), 3, 'revoked license')
  t.equal(logs.find('license-refused').at(-1)?.code, 'LICENSE_REVOKED')
  t.equal((await current()).spec.version, '1.0.0', 'nothing changed while refused')

  await s.close()
  t.equal(await run(), 0, 'server gone, cached spec already applied')
  t.equal(logs.find('using-cache').length, 1)
  t.notMatch(JSON.stringify(logs.lines), /eyJ/, 'no JWT in any log line')
})
