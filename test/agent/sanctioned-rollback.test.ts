/**
 * A sanctioned rollback end to end, on both databases: the real server (real HTTP listener)
 * and the agent (dir applier, --once per cycle). `DELETE ...?rollback=true` marks the fallback
 * answer for deployments that run the withdrawn release, and the agent moves down without
 * --allow-downgrade; with --never-downgrade it still refuses. A plain withdrawal stays refused.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { runAgentCli } from '../../src/cli/agent.js'
import { resolveAgentOptions } from '../../src/agent/options.js'
import { workdir } from '../helpers/agent-harness.js'
import { captureLogs } from '../helpers/agent-log.js'
import { buildTestServer, testDrivers, type TestServer } from '../helpers/server.js'
import { auth } from '../helpers/problem.js'

async function agent (t: Test, s: TestServer, url: string, sub: string, extra: string[] = []) {
  const wd = await workdir()
  await writeFile(wd.licenseFile, await s.license({ sub, channels: ['stable'] }))
  const out = join(wd.dir, 'out')
  const logs = captureLogs()
  const args = ['--server', url, '--channel', 'stable', '--license-file', wd.licenseFile, '--release', 'acme', '--namespace', 'acme-ns',
    '--state-dir', wd.stateDir, '--applier', 'dir', '--out', out, '--once', ...extra]
  return {
    run: async () => await runAgentCli(args, { logger: logs.logger }),
    version: async () => (JSON.parse(await readFile(join(out, 'current', 'spec.json'), 'utf8')) as { version: string }).version,
    lastDone: () => logs.find('done').at(-1)?.outcome as string | undefined,
    logs
  }
}

async function withdraw (s: TestServer, version: string, query: string) {
  const res = await s.app.inject({ method: 'DELETE', url: `/channels/stable/releases/${version}?${query}`, headers: auth(s.tokens.publisher) })
  if (res.statusCode !== 204) throw new Error(`withdraw answered ${res.statusCode}: ${res.body}`)
}

for (const driver of testDrivers()) {
  t.test(`${driver}: a sanctioned rollback moves the agent down without --allow-downgrade, unless --never-downgrade`, async (t) => {
    const s = await buildTestServer(t, { driver })
    t.equal((await s.putChannel('stable')).statusCode, 201)
    for (const v of ['1.0.0', '1.1.0', '1.2.0']) t.equal((await s.publish(v, { values: { image: { tag: v } } })).statusCode, 201)
    t.equal((await s.promote('stable', '1.0.0')).statusCode, 201)
    t.equal((await s.promote('stable', '1.1.0')).statusCode, 201)
    const url = await s.listen()
    const plain = await agent(t, s, url, 'plain')
    const never = await agent(t, s, url, 'never', ['--never-downgrade'])
    for (const a of [plain, never]) {
      t.equal(await a.run(), 0)
      t.equal(await a.version(), '1.1.0')
    }

    // The server's side: only a deployment that runs 1.1.0 is told the fallback is a rollback.
    await withdraw(s, '1.1.0', 'reason=data+loss+bug&rollback=true')
    const license = await s.license({ sub: 'probe', channels: ['stable'] })
    const running = await s.app.inject({ url: '/channels/stable/spec', headers: { ...auth(license), 'chartcast-applied': '1.1.0' } })
    t.match(running.json(), { version: '1.0.0', metadata: { rollback: 'true' } })
    const fresh = await s.app.inject({ url: '/channels/stable/spec', headers: auth(license) })
    t.equal(fresh.json().version, '1.0.0')
    t.equal(fresh.json().metadata.rollback, undefined, 'not for a fresh install')
    t.not(fresh.headers.etag, running.headers.etag, 'a different answer, a different ETag')
    const entries = (await s.app.inject({ url: '/audit', headers: auth(s.tokens.admin) })).json().entries
    t.match(entries[0], { action: 'channel.withdraw', detail: { version: '1.1.0', reason: 'data loss bug', rollback: true } })

    t.equal(await plain.run(), 0)
    t.equal(plain.lastDone(), 'applied', 'moved down without --allow-downgrade')
    t.equal(await plain.version(), '1.0.0')
    t.match(plain.logs.find('downgrade-allowed').at(-1), { version: '1.0.0', appliedVersion: '1.1.0', rollback: true })

    t.equal(await never.run(), 0)
    t.equal(never.lastDone(), 'downgrade-refused', '--never-downgrade refuses even a sanctioned rollback')
    t.equal(await never.version(), '1.1.0')

    // Now on 1.0.0, the plain agent is no longer told "rollback": nothing more to do.
    t.equal(await plain.run(), 0)
    t.equal(plain.lastDone(), 'unchanged')

    // A plain withdrawal (no rollback=true) is refused as before.
    t.equal((await s.promote('stable', '1.2.0')).statusCode, 201)
    t.equal(await plain.run(), 0)
    t.equal(await plain.version(), '1.2.0')
    await withdraw(s, '1.2.0', 'reason=typo')
    t.equal(await plain.run(), 0)
    t.equal(plain.lastDone(), 'downgrade-refused', 'without rollback=true the agent refuses the downgrade')
    t.equal(await plain.version(), '1.2.0')

    // Marking the earlier withdrawal a rollback afterwards sanctions it.
    await withdraw(s, '1.2.0', 'rollback=true')
    t.equal(await plain.run(), 0)
    t.equal(plain.lastDone(), 'applied')
    t.equal(await plain.version(), '1.0.0')

    // Promoted again, 1.1.0 is an upgrade for everyone: no rollback mark anywhere.
    t.equal((await s.promote('stable', '1.1.0')).statusCode, 201)
    const back = await s.app.inject({ url: '/channels/stable/spec', headers: { ...auth(license), 'chartcast-applied': '1.1.0' } })
    t.match(back.json(), { version: '1.1.0' })
    t.equal(back.json().metadata.rollback, undefined)
  })
}

t.test('--never-downgrade: its environment variable, and not together with --allow-downgrade', async (t) => {
  const base = { server: 'http://localhost:8080', channel: 'stable', licenseFile: 'l.jwt', release: 'acme', namespace: 'acme' }
  t.equal(resolveAgentOptions({ ...base, neverDowngrade: true }, {}).neverDowngrade, true)
  t.equal(resolveAgentOptions(base, { CHARTCAST_NEVER_DOWNGRADE: 'true' }).neverDowngrade, true)
  t.equal(resolveAgentOptions(base, {}).neverDowngrade, undefined)
  t.throws(() => resolveAgentOptions({ ...base, neverDowngrade: true, allowDowngrade: true }, {}), { message: /not both/ })
})
