/**
 * One process at a time on an embedded DATA_DIR. PGlite is a single-process PostgreSQL: two
 * processes on one data directory each keep their own view of it, both acknowledge writes,
 * and whichever shuts down last overwrites the other's. So a server, `migrate` or `sync` takes
 * an exclusive lock on DATA_DIR before opening the database, and a second one refuses, naming
 * the holder.
 *
 * The lock is proper-lockfile's: a directory created with mkdir (atomic), whose mtime the
 * holder refreshes every LOCK_UPDATE_MS. A holder that stops refreshing for LOCK_STALE_MS
 * (killed with -9, or its machine died) has left a stale lock, which the next process takes
 * over. Beside it, a small JSON file records who holds it, so a refusal can say which process
 * to stop.
 *
 * The refreshing runs on a worker thread of its own. PGlite runs every query on the main
 * thread and resolves its promises without yielding to timers, so a first start (initdb,
 * migrations, the channel sync) held the main thread for 22 s on our loaded 2-core VM: a
 * heartbeat there went stale, a second process took the lock over while the first still
 * wrote, and the first then found its lock gone.
 */
import { readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { hostname } from 'node:os'
import path from 'node:path'
import { Worker } from 'node:worker_threads'

/**
 * A lock not refreshed for this long is taken over. PGlite runs queries on the main thread, so
 * the refresh timer can be held up by a long query or by initdb on a first start (well under a
 * second on our 2-core VM); 10 s leaves a wide margin over that, while a server restarted after
 * kill -9 waits at most about that long for the dead holder's lock.
 */
export const LOCK_STALE_MS = 10_000
/** How often the holder refreshes the lock's mtime (proper-lockfile allows at most stale / 2). */
export const LOCK_UPDATE_MS = 2_000
/** The lock directory and the holder record, inside DATA_DIR. */
export const LOCK_NAME = 'chartcast.lock'
export const HOLDER_NAME = 'chartcast.lock.json'

export interface LockHolder {
  pid: number
  hostname: string
  /** ISO time the holder took the lock. */
  since: string
}

export class DataDirLockedError extends Error {
  readonly code = 'DATA_DIR_LOCKED'
  constructor (readonly dataDir: string, readonly holder: LockHolder | null) {
    const who = holder === null
      ? 'another process (it has not recorded its PID yet)'
      : `process ${holder.pid} on host ${holder.hostname} (since ${holder.since})`
    super(`DATA_DIR ${dataDir} is in use by ${who}. The embedded database allows one process at a time: stop that one first (a running server takes channel changes through its API), or use DATABASE_URL to run several servers.`)
    this.name = 'DataDirLockedError'
  }
}

export interface DataDirLock {
  readonly holder: LockHolder
  /** Removes the holder record and the lock. Call after the database is closed. */
  release (): Promise<void>
}

export interface LockDataDirOptions {
  /**
   * The lock was taken from us (we did not refresh it in time and another process took it
   * over, or its directory was removed). Whatever the caller does, it must stop writing.
   */
  onLost: (error: Error) => void
  /** Told when we wait for the stale lock of a holder that is no longer running. */
  onNotice?: (message: string) => void
}

/** Locks held by this process, so a record naming our own PID is known to be ours or not. */
const heldHere = new Set<string>()

function readHolder (file: string): LockHolder | null {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockHolder>
    if (typeof parsed.pid !== 'number' || typeof parsed.hostname !== 'string' || typeof parsed.since !== 'string') return null
    return { pid: parsed.pid, hostname: parsed.hostname, since: parsed.since }
  } catch {
    return null
  }
}

function isRunning (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it exists, it just is not ours to signal.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * True when the recorded holder is certainly not running: it was on this host and no process
 * has its PID, or the PID is ours but this process holds no such lock (a container restarted
 * with the same PID). This only decides whether to wait for the lock to go stale rather than
 * refuse at once; the takeover itself still needs the stale mtime, since a PID says nothing
 * across PID namespaces that share a volume and a hostname.
 */
function holderIsGone (holder: LockHolder, lockPath: string): boolean {
  if (holder.hostname !== hostname()) return false
  if (holder.pid === process.pid) return !heldHere.has(lockPath)
  return !isRunning(holder.pid)
}

/**
 * The heartbeat thread: takes the lock with proper-lockfile when asked, keeps its mtime fresh,
 * reports losing it, releases it when asked. Plain JavaScript evaluated as the worker's
 * script, since a worker does not get tsx's loader when the tests run the TypeScript sources.
 */
const HEARTBEAT_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const lockfile = require(workerData.lockfileModule)
let release = null
parentPort.on('message', async (request) => {
  if (request === 'acquire') {
    try {
      release = await lockfile.lock(workerData.root, {
        lockfilePath: workerData.lockPath, realpath: false, stale: workerData.stale, update: workerData.update,
        onCompromised: (error) => { release = null; parentPort.postMessage({ type: 'lost', message: error.message }) }
      })
      parentPort.postMessage({ type: 'locked' })
    } catch (error) {
      parentPort.postMessage({ type: 'failed', code: error.code, message: error.message })
    }
  } else if (request === 'release') {
    try {
      if (release !== null) await release()
      release = null
      parentPort.postMessage({ type: 'released' })
    } catch (error) {
      parentPort.postMessage({ type: 'failed', code: error.code, message: error.message })
    }
  }
})
`

type HeartbeatReply = { type: 'locked' | 'released' } | { type: 'failed', code?: string, message: string }

interface Heartbeat {
  ask (request: 'acquire' | 'release'): Promise<HeartbeatReply>
  stop (): Promise<void>
}

function startHeartbeat (root: string, lockPath: string, onLost: (error: Error) => void): Heartbeat {
  const worker = new Worker(HEARTBEAT_SOURCE, {
    eval: true,
    workerData: { root, lockPath, stale: LOCK_STALE_MS, update: LOCK_UPDATE_MS, lockfileModule: createRequire(import.meta.url).resolve('proper-lockfile') }
  })
  // The thread must not keep a finished CLI command alive; it lives as long as the process.
  worker.unref()
  let pending: ((reply: HeartbeatReply) => void) | null = null
  let failure: Error | null = null
  worker.on('message', (message: HeartbeatReply | { type: 'lost', message: string }) => {
    if (message.type === 'lost') return onLost(new Error(message.message))
    const resolve = pending
    pending = null
    resolve?.(message)
  })
  worker.on('error', (error) => {
    failure = error
    const resolve = pending
    pending = null
    resolve?.({ type: 'failed', message: error.message })
  })
  return {
    ask: async (request) => {
      if (failure !== null) return { type: 'failed', message: failure.message }
      // Referenced while a reply is due, or a CLI command with nothing else pending would exit.
      worker.ref()
      try {
        return await new Promise((resolve) => {
          pending = resolve
          worker.postMessage(request)
        })
      } finally {
        worker.unref()
      }
    },
    stop: async () => { await worker.terminate() }
  }
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

export async function lockDataDir (dataDir: string, options: LockDataDirOptions): Promise<DataDirLock> {
  const root = path.resolve(dataDir)
  const lockPath = path.join(root, LOCK_NAME)
  const holderPath = path.join(root, HOLDER_NAME)
  let held = false
  const heartbeat = startHeartbeat(root, lockPath, (error) => {
    held = false
    heldHere.delete(lockPath)
    options.onLost(error)
  })
  const started = Date.now()
  let announced = false
  // A record left by kill -9: named when its lock is taken over, whether the lock was already
  // stale (taken at once) or we waited for it.
  const before = readHolder(holderPath)
  const deadBefore = before !== null && before.pid !== process.pid && holderIsGone(before, lockPath) ? before : null
  try {
    for (;;) {
      const reply = await heartbeat.ask('acquire')
      if (reply.type === 'locked') {
        if (deadBefore !== null && !announced) options.onNotice?.(`DATA_DIR ${root} was locked by process ${deadBefore.pid}, which is no longer running; its stale lock was taken over`)
        break
      }
      if (reply.type !== 'failed' || reply.code !== 'ELOCKED') throw new Error(`cannot lock DATA_DIR ${root}: ${reply.type === 'failed' ? reply.message : reply.type}`)
      const holder = readHolder(holderPath)
      // No record: the holder is between taking the lock and writing it, or between removing it
      // and releasing the lock; either way a moment settles it.
      const patience = holder === null ? 2 * LOCK_UPDATE_MS : holderIsGone(holder, lockPath) ? LOCK_STALE_MS + 2 * LOCK_UPDATE_MS : 0
      if (Date.now() - started >= patience) throw new DataDirLockedError(root, holder)
      if (holder !== null && !announced) {
        announced = true
        options.onNotice?.(`DATA_DIR ${root} is locked by process ${holder.pid}, which is no longer running; taking the lock over once it is stale (within ${LOCK_STALE_MS / 1000} s)`)
      }
      await sleep(250)
    }
  } catch (error) {
    await heartbeat.stop()
    throw error
  }
  held = true
  heldHere.add(lockPath)
  const holder: LockHolder = { pid: process.pid, hostname: hostname(), since: new Date().toISOString() }
  // Written whole or not at all: a reader never sees half a record.
  const partial = `${holderPath}.${process.pid}.tmp`
  writeFileSync(partial, JSON.stringify(holder) + '\n', { mode: 0o600 })
  renameSync(partial, holderPath)

  // An exit without release (an uncaught error, process.exit) need not leave the next start
  // waiting for staleness; only kill -9 and power loss do. Exit handlers must be synchronous.
  const releaseAtExit = (): void => {
    if (!held) return
    rmSync(holderPath, { force: true })
    try { rmdirSync(lockPath) } catch { /* already gone */ }
  }
  process.once('exit', releaseAtExit)

  let released = false
  return {
    holder,
    release: async () => {
      if (released) return
      released = true
      process.removeListener('exit', releaseAtExit)
      heldHere.delete(lockPath)
      // Lost already: the record and the lock are someone else's now.
      if (held) {
        held = false
        rmSync(holderPath, { force: true })
        await heartbeat.ask('release')
      }
      await heartbeat.stop()
    }
  }
}
