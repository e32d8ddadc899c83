/**
 * One agent at a time per (release, namespace). Two replicas, or a CronJob `--once` that
 * overlaps the previous run, would otherwise race Helm and the state files.
 *
 * The lock is proper-lockfile's: a directory made with mkdir (atomic) in the state directory,
 * whose mtime the holder refreshes; a holder killed with -9 leaves a lock that goes stale
 * after LOCK_STALE_MS and is then taken over. The agent's main thread only waits on child
 * processes and the network, so the refresh timer runs on it (unlike the server's PGlite, see
 * src/db/data-dir-lock.ts). Agents with different state directories (two pods with emptyDirs)
 * do not see each other's lock: for them Helm's own `pending-*` status is the guard.
 */
import { mkdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import lockfile from 'proper-lockfile'

export const LOCK_STALE_MS = 20_000
export const LOCK_UPDATE_MS = 5_000

export interface ReleaseLock {
  /** Takes the lock, or resolves to null at once when another agent holds it. */
  tryAcquire (): Promise<(() => Promise<void>) | null>
  /** The lock path, for log lines. */
  readonly path: string
}

export type LockLost = (error: Error) => void

/** The file lock in STATE_DIR for one (release, namespace). */
export class FileReleaseLock implements ReleaseLock {
  readonly path: string
  private readonly dir: string

  constructor (stateDir: string, release: string, namespace: string, private readonly onLost: LockLost = () => {}) {
    this.dir = resolve(stateDir)
    // Release and namespace names are DNS labels (options.ts checks), so they are safe in a file name.
    this.path = join(this.dir, `${namespace}.${release}.lock`)
  }

  async tryAcquire (): Promise<(() => Promise<void>) | null> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 })
    try {
      const release = await lockfile.lock(this.dir, {
        lockfilePath: this.path,
        realpath: false,
        stale: LOCK_STALE_MS,
        update: LOCK_UPDATE_MS,
        retries: 0,
        onCompromised: (err) => { this.onLost(err) }
      })
      let released = false
      return async () => {
        if (released) return
        released = true
        try {
          await release()
        } catch (err) {
          // Already taken from us (reported through onLost): nothing left to release.
          if ((err as NodeJS.ErrnoException).code !== 'ERELEASED' && (err as NodeJS.ErrnoException).code !== 'ENOTACQUIRED') throw err
        }
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOCKED') return null
      throw err
    }
  }
}
