/**
 * The DATA_DIR lock on its own, in this process. The same rules with real server processes
 * and kill -9 are in test/cli/data-dir-lock.test.ts.
 */
import t, { type Test } from 'tap'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { HOLDER_NAME, LOCK_NAME, LOCK_STALE_MS, LOCK_UPDATE_MS, lockDataDir } from '../../src/db/data-dir-lock.js'
import { openDatabase } from '../../src/db/index.js'

const fresh = (t: Test): string => {
  const dir = mkdtempSync(path.join(tmpdir(), 'chartcast-lock-unit-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}
const neverLost = (error: Error): void => { throw new Error(`lock lost unexpectedly: ${error.message}`) }

/** A PID no process has: a child that has already exited and been reaped. */
function deadPid (): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'])
  return Number(child.stdout.toString())
}

t.test('a second lock on the same DATA_DIR refuses at once, naming the holder', async (t) => {
  const dir = fresh(t)
  const lock = await lockDataDir(dir, { onLost: neverLost })
  t.teardown(async () => { await lock.release() })
  t.same(JSON.parse(readFileSync(path.join(dir, HOLDER_NAME), 'utf8')), lock.holder, 'the holder record is on disk')
  t.equal(lock.holder.pid, process.pid)
  await t.rejects(lockDataDir(dir, { onLost: neverLost }), {
    name: 'DataDirLockedError',
    code: 'DATA_DIR_LOCKED',
    holder: { pid: process.pid, hostname: hostname() },
    message: new RegExp(`in use by process ${process.pid} on host ${hostname()}`)
  })
})

t.test('release removes the lock and the record, and the next lock succeeds', async (t) => {
  const dir = fresh(t)
  const first = await lockDataDir(dir, { onLost: neverLost })
  await first.release()
  t.notOk(existsSync(path.join(dir, LOCK_NAME)))
  t.notOk(existsSync(path.join(dir, HOLDER_NAME)))
  const second = await lockDataDir(dir, { onLost: neverLost })
  t.ok(existsSync(path.join(dir, LOCK_NAME)))
  await second.release()
})

t.test('a stale lock left by a process that is gone is taken over', async (t) => {
  const dir = fresh(t)
  const pid = deadPid()
  mkdirSync(path.join(dir, LOCK_NAME))
  writeFileSync(path.join(dir, HOLDER_NAME), JSON.stringify({ pid, hostname: hostname(), since: '2026-01-01T00:00:00.000Z' }))
  const past = new Date(Date.now() - LOCK_STALE_MS - 5_000)
  utimesSync(path.join(dir, LOCK_NAME), past, past)
  const notices: string[] = []
  const lock = await lockDataDir(dir, { onLost: neverLost, onNotice: (message) => { notices.push(message) } })
  t.equal(JSON.parse(readFileSync(path.join(dir, HOLDER_NAME), 'utf8')).pid, process.pid, 'the record now names us')
  t.equal(notices.length, 1, 'the takeover of an already stale lock is told, once')
  t.match(notices[0], new RegExp(`was locked by process ${pid}, which is no longer running; its stale lock was taken over`), 'naming the dead holder')
  await lock.release()
})

t.test('a fresh lock held by a live process elsewhere is not taken over', async (t) => {
  const dir = fresh(t)
  mkdirSync(path.join(dir, LOCK_NAME))
  writeFileSync(path.join(dir, HOLDER_NAME), JSON.stringify({ pid: 4242, hostname: 'another-host', since: '2026-01-01T00:00:00.000Z' }))
  await t.rejects(lockDataDir(dir, { onLost: neverLost }), { code: 'DATA_DIR_LOCKED', message: /in use by process 4242 on host another-host/ })
  t.ok(existsSync(path.join(dir, LOCK_NAME)), 'the other host\'s lock is left alone')
})

t.test('a lock taken over behind our back is reported lost', async (t) => {
  const dir = fresh(t)
  let lost: Error | null = null
  const lock = await lockDataDir(dir, { onLost: (error) => { lost = error } })
  // Another process's takeover rewrites the lock; its mtime is then not the one we last set.
  const other = new Date(Date.now() - 60_000)
  utimesSync(path.join(dir, LOCK_NAME), other, other)
  const deadline = Date.now() + 4 * LOCK_UPDATE_MS + 5_000
  while (lost === null && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
  t.match(lost, { message: /Unable to update lock within the stale threshold/ }, 'the next refresh notices')
  await lock.release()
  t.ok(existsSync(path.join(dir, LOCK_NAME)), 'releasing a lost lock does not remove what is now someone else\'s')
})

t.test('an in-memory database takes no lock; one on disk holds it until closed', async (t) => {
  const dir = fresh(t)
  const memory = await openDatabase({ databaseUrl: null, dataDir: dir, inMemory: true })
  t.notOk(existsSync(path.join(dir, LOCK_NAME)), 'in memory: no lock')
  await memory.close()
  const disk = await openDatabase({ databaseUrl: null, dataDir: dir })
  t.ok(existsSync(path.join(dir, LOCK_NAME)), 'on disk: locked while open')
  await t.rejects(openDatabase({ databaseUrl: null, dataDir: dir }), { code: 'DATA_DIR_LOCKED' })
  await disk.close()
  t.notOk(existsSync(path.join(dir, LOCK_NAME)), 'released after close')
  t.notOk(existsSync(path.join(dir, HOLDER_NAME)))
})
