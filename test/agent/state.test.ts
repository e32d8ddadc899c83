import { readdir, readFile, stat, writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { FileStateStore } from '../../src/agent/state.js'
import { makeSpec } from '../helpers/agent-fake-server.js'
import { workdir } from '../helpers/agent-harness.js'

const cached = { server: 'https://s', channel: 'stable', spec: makeSpec('1.4.0'), etag: '"abc"', pollIntervalMs: 60_000, fetchedAt: '2030-01-01T00:00:00.000Z' }
const applied = { release: 'acme', namespace: 'ns', digest: 'd'.repeat(64), version: '1.4.0', chartVersion: '0.4.0', appliedAt: '2030-01-01T00:00:00.000Z' }

t.test('round-trips spec and applied record; private files; no temp files left', async (t) => {
  const { stateDir } = await workdir()
  const store = new FileStateStore(stateDir)
  t.equal(await store.loadSpec(), undefined)
  t.equal(await store.loadApplied(), undefined)
  await store.saveSpec(cached)
  await store.saveApplied(applied)
  await store.saveApplied({ ...applied, version: '1.5.0' })
  t.same(await store.loadSpec(), cached)
  t.equal((await store.loadApplied())?.version, '1.5.0')
  t.same((await readdir(stateDir)).sort(), ['applied.json', 'spec.json'])
  t.equal((await stat(join(stateDir, 'spec.json'))).mode & 0o777, 0o600)
  t.equal((await stat(stateDir)).mode & 0o777, 0o700)
})

t.test('corrupt or foreign state is ignored with a warning, not a crash', async (t) => {
  const { stateDir } = await workdir()
  await mkdir(stateDir)
  const warnings: string[] = []
  const store = new FileStateStore(stateDir, (m) => warnings.push(m))
  await writeFile(join(stateDir, 'spec.json'), '{"server": "x", "chan')
  await writeFile(join(stateDir, 'applied.json'), '{"digest": 1}')
  t.equal(await store.loadSpec(), undefined)
  t.equal(await store.loadApplied(), undefined)
  t.equal(warnings.length, 2)
  const poisoned = JSON.stringify(cached).replace('"values":{', '"values":{"__proto__":{"x":1},')
  t.match(poisoned, /"__proto__"/)
  await writeFile(join(stateDir, 'spec.json'), poisoned)
  t.equal(await store.loadSpec(), undefined, 'a cached spec with a forbidden key is not trusted')
})

t.test('a failed write leaves the previous file intact', async (t) => {
  const { stateDir } = await workdir()
  const store = new FileStateStore(stateDir)
  await store.saveSpec(cached)
  const before = await readFile(join(stateDir, 'spec.json'), 'utf8')
  // JSON.stringify throws on a BigInt, i.e. after the store started its write.
  await t.rejects(store.saveSpec({ ...cached, spec: { ...cached.spec, values: { n: 1n } } }))
  t.equal(await readFile(join(stateDir, 'spec.json'), 'utf8'), before)
  t.same((await readdir(stateDir)).sort(), ['spec.json'])
})
