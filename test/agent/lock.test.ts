import { mkdtemp, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { FileReleaseLock } from '../../src/agent/lock.js'

t.test('one holder per release and namespace; released, it can be taken again', async (t) => {
  const dir = join(await mkdtemp(join(tmpdir(), 'chartcast-lock-')), 'state')
  const a = new FileReleaseLock(dir, 'acme', 'acme-ns')
  const b = new FileReleaseLock(dir, 'acme', 'acme-ns')
  const release = await a.tryAcquire()
  t.ok(release, 'the first takes it')
  t.equal(await b.tryAcquire(), null, 'the second is told at once')
  t.ok((await stat(a.path)).isDirectory(), `the lock is ${a.path}`)
  const other = await new FileReleaseLock(dir, 'acme', 'other-ns').tryAcquire()
  t.ok(other, 'another namespace has its own lock')
  await release!()
  await release!()
  const again = await b.tryAcquire()
  t.ok(again, 'free after release (and releasing twice is harmless)')
  await again!()
  await other!()
})
