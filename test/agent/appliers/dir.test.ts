import { spawnSync } from 'node:child_process'
import { lstat, mkdtemp, readdir, readFile, readlink, realpath, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parse } from 'yaml'
import { DirApplier, SET_FILES } from '../../../src/agent/appliers/dir.js'
import { computeDesired } from '../../../src/agent/desired.js'

const CRASH_CHILD = fileURLToPath(new URL('../../helpers/agent-dir-crash.ts', import.meta.url))
const target = { release: 'acme', namespace: 'acme-ns' }
const desired = (version: string, generation: string) => computeDesired(
  { channel: 'stable', version, chart: { url: 'https://charts.example.com', name: 'acme-app', version: `0.${version.split('.')[0]}0.0` }, values: { generation } },
  { userValues: {}, crValues: {} }
)

/** Reads the set the way a consumer should: resolve `current` once, then read all three files there. */
async function readSet (out: string): Promise<{ spec: Record<string, unknown>, chart: Record<string, unknown>, values: Record<string, unknown> }> {
  const dir = await realpath(join(out, 'current'))
  return {
    spec: JSON.parse(await readFile(join(dir, 'spec.json'), 'utf8')),
    chart: JSON.parse(await readFile(join(dir, 'chart.json'), 'utf8')),
    values: parse(await readFile(join(dir, 'values.yaml'), 'utf8'))
  }
}

async function outDir (): Promise<string> {
  return join(await mkdtemp(join(tmpdir(), 'chartcast-dir-')), 'out')
}

t.test('writes spec.json, chart.json and values.yaml as one set behind `current`', async (t) => {
  const out = await outDir()
  await new DirApplier(out).apply(desired('1.0.0', 'old'), target)
  const set = await readSet(out)
  t.same(set.values, { generation: 'old' })
  t.same(set.chart, { url: 'https://charts.example.com', name: 'acme-app', version: '0.10.0', reference: 'acme-app' })
  t.match(set.spec, { channel: 'stable', version: '1.0.0', release: 'acme', namespace: 'acme-ns', values: { generation: 'old' } })
  t.equal(set.spec.digest, desired('1.0.0', 'old').digest)
  t.match(await readlink(join(out, 'current')), /^sets\//, 'relative link, so the directory can be mounted elsewhere')
  for (const file of SET_FILES) {
    t.same(await readFile(join(out, file), 'utf8'), await readFile(join(out, 'current', file), 'utf8'), `OUT/${file} convenience link`)
    t.equal((await stat(join(out, 'current', file))).mode & 0o777, 0o600, `${file} is private (values carry secrets)`)
  }
})

t.test('a second apply swaps the whole set and keeps one previous generation', async (t) => {
  const out = await outDir()
  const applier = new DirApplier(out)
  await applier.apply(desired('1.0.0', 'one'), target)
  await applier.apply(desired('2.0.0', 'two'), target)
  await applier.apply(desired('3.0.0', 'three'), target)
  const set = await readSet(out)
  t.same(set.values, { generation: 'three' })
  t.equal(set.spec.version, '3.0.0')
  t.equal(set.chart.version, '0.30.0')
  t.equal((await readdir(join(out, 'sets'))).length, 2, 'current + previous only')
  t.same((await readdir(out)).filter((e) => e.startsWith('.current-')), [], 'no stray temp links')
})

t.test('a failure between writes leaves the old complete set current and cleans up', async (t) => {
  const out = await outDir()
  await new DirApplier(out).apply(desired('1.0.0', 'old'), target)
  const before = await readSet(out)
  const failing = new DirApplier(out, {
    afterWrite: (file) => { if (file === 'chart.json') throw new Error('disk full') }
  })
  await t.rejects(failing.apply(desired('2.0.0', 'new'), target), { message: 'disk full' })
  t.same(await readSet(out), before, 'readers still see the old set, all three files')
  t.equal((await readdir(join(out, 'sets'))).length, 1, 'the partial set was removed')
})

t.test('a real crash (SIGKILL) between writes: old set intact, next apply cleans the leftover', async (t) => {
  const out = await outDir()
  const applier = new DirApplier(out)
  await applier.apply(desired('1.0.0', 'old'), target)
  const before = await readSet(out)

  for (const crashAfter of ['spec.json', 'chart.json', 'values.yaml']) {
    const child = spawnSync(process.execPath, ['--import', 'tsx', CRASH_CHILD, out, crashAfter], { encoding: 'utf8' })
    t.equal(child.signal, 'SIGKILL', `child died after writing ${crashAfter}`)
    t.same(await readSet(out), before, `after a crash following ${crashAfter}, readers see the old complete set`)
  }
  const leftovers = (await readdir(join(out, 'sets'))).filter((e) => e.startsWith('.tmp-'))
  t.equal(leftovers.length, 3, 'the crashes left partial sets, none of them current')

  await applier.apply(desired('3.0.0', 'after'), target)
  t.same((await readSet(out)).values, { generation: 'after' })
  t.same((await readdir(join(out, 'sets'))).filter((e) => e.startsWith('.tmp-')), [], 'leftovers removed')
})

t.test('an existing regular file at OUT/spec.json is left alone', async (t) => {
  const out = await outDir()
  const applier = new DirApplier(out)
  await applier.apply(desired('1.0.0', 'one'), target)
  await rm(join(out, 'spec.json'))
  await writeFile(join(out, 'spec.json'), 'mine')
  await applier.apply(desired('2.0.0', 'two'), target)
  t.equal(await readFile(join(out, 'spec.json'), 'utf8'), 'mine')
  t.ok((await lstat(join(out, 'values.yaml'))).isSymbolicLink())
})

t.test('observe: the current set is what runs; an empty, removed or foreign output is not', async (t) => {
  const out = await outDir()
  const applier = new DirApplier(out)
  t.same(await applier.observe(target), { status: 'absent' }, 'nothing written yet')
  const d = desired('1.0.0', 'g1')
  await applier.apply(d, target, { version: '1.0.0', digest: d.digest, signedRevision: '7' })
  t.same(await applier.observe(target), { status: 'deployed', running: { version: '1.0.0', digest: d.digest, signedRevision: '7' } }, 'every recorded fact comes back')
  t.same(await applier.observe({ release: 'other', namespace: 'acme-ns' }), { status: 'deployed' }, 'a set for another release carries no facts for this one')
  await rm(join(out, 'sets'), { recursive: true, force: true })
  t.same(await applier.observe(target), { status: 'absent' }, 'current pointing at nothing')
  await rm(out, { recursive: true, force: true })
  t.same(await applier.observe(target), { status: 'absent' }, 'rm -rf OUT')
})
