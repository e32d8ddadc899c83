import { readdir, readFile, stat, writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { APPLY_NOW_FILE, FileStateStore } from '../../src/agent/state.js'
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

/** A FileStateStore whose filesystem fails (ENOSPC) after writing part of the new state. */
async function storeOnFullDisk (t: Test, stateDir: string, failAt: 'write' | 'rename'): Promise<FileStateStore> {
  const real = await import('node:fs/promises')
  const enospc = (): Error => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
  const open: typeof real.open = async (...args: Parameters<typeof real.open>) => {
    const handle = await real.open(...args)
    if (failAt !== 'write') return handle
    // Half the bytes reach the file, then the disk is full: a torn temp file.
    return Object.assign(Object.create(handle) as typeof handle, {
      writeFile: async (data: string) => {
        await handle.writeFile(data.slice(0, Math.floor(data.length / 2)))
        throw enospc()
      }
    })
  }
  const rename: typeof real.rename = async (...args) => {
    if (failAt === 'rename') throw Object.assign(new Error('EIO: i/o error, rename'), { code: 'EIO' })
    await real.rename(...args)
  }
  const { FileStateStore: Store } = await t.mockImport<typeof import('../../src/agent/state.js')>('../../src/agent/state.js', {
    'node:fs/promises': { ...real, open, rename }
  })
  return new Store(stateDir)
}

for (const failAt of ['write', 'rename'] as const) {
  t.test(`a write that fails at the ${failAt} (disk full, I/O error) leaves the previous file intact and no temp file`, async (t) => {
    const { stateDir } = await workdir()
    await new FileStateStore(stateDir).saveSpec(cached)
    const before = await readFile(join(stateDir, 'spec.json'), 'utf8')
    const store = await storeOnFullDisk(t, stateDir, failAt)
    await t.rejects(store.saveSpec({ ...cached, spec: makeSpec('1.5.0'), etag: '"def"' }), { code: failAt === 'write' ? 'ENOSPC' : 'EIO' })
    t.equal(await readFile(join(stateDir, 'spec.json'), 'utf8'), before, 'spec.json is the previous state')
    t.same(await new FileStateStore(stateDir).loadSpec(), cached, 'and loads as such')
    t.same((await readdir(stateDir)).sort(), ['spec.json'], 'the partial temp file is removed')
  })
}

t.test('watchApplyNow sees an apply-now file created just after its own check (the watch is running by then)', async (t) => {
  const { stateDir } = await workdir()
  // The file appears right after the existence check says "no": the one window in which only
  // a watcher that is already running can see it (fs/promises watch starts on the first read).
  class LateTouch extends FileStateStore {
    touched = false
    override async applyNowRequested (): Promise<boolean> {
      const found = await super.applyNowRequested()
      if (!found && !this.touched) {
        this.touched = true
        await writeFile(join(stateDir, APPLY_NOW_FILE), '')
      }
      return found
    }
  }
  const store = new LateTouch(stateDir)
  await mkdir(stateDir, { recursive: true })
  // Only bounds a failing run; what is checked is which of the two ended the wait.
  const giveUp = new AbortController()
  const bound = setTimeout(() => { giveUp.abort() }, 60_000)
  t.teardown(() => { clearTimeout(bound); giveUp.abort() })
  await store.watchApplyNow(giveUp.signal)
  t.ok(store.touched)
  t.equal(giveUp.signal.aborted, false, 'the file ended the wait, not the bound')
})
