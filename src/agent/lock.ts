/**
 * One agent at a time per (release, namespace). Two replicas, or a CronJob `--once` that
 * overlaps the previous run, would otherwise race Helm and the state files.
 *
 * The lock is proper-lockfile's: a directory made with mkdir (atomic) in the state directory,
 * whose mtime the holder refreshes; a holder killed with -9 leaves a lock that goes stale
 * after LOCK_STALE_MS and is then taken over. The agent's main thread only waits on child
 * processes and the network, so the refresh timer runs on it (unlike the server's PGlite, see
 * src/db/data-dir-lock.ts). Agents with different state directories (two pods with emptyDirs)
 * do not see each other's lock: for them Helm's own `pending-*` status is the guard. The dir
 * applier has no such status, so its agents also lock the output directory they share.
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

  /** @param prefix before the file name, e.g. "." to keep the lock out of sight in a directory others read */
  constructor (stateDir: string, release: string, namespace: string, private readonly onLost: LockLost = () => {}, prefix = '') {
    this.dir = resolve(stateDir)
    // Release and namespace names are DNS labels (options.ts checks), so they are safe in a file name.
    this.path = join(this.dir, `${prefix}${namespace}.${release}.lock`)
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

/** Several locks held as one: taken in order, all or none, released in reverse order. */
export class CombinedReleaseLock implements ReleaseLock {
  readonly path: string

  constructor (private readonly locks: readonly ReleaseLock[]) {
    this.path = locks.map((lock) => lock.path).join(' and ')
  }

  async tryAcquire (): Promise<(() => Promise<void>) | null> {
    const held: Array<() => Promise<void>> = []
    const releaseHeld = async (): Promise<void> => {
      for (const release of held.reverse()) await release()
      held.length = 0
    }
    try {
      for (const lock of this.locks) {
        const release = await lock.tryAcquire()
        if (release === null) {
          await releaseHeld()
          return null
        }
        held.push(release)
      }
    } catch (err) {
      await releaseHeld()
      throw err
    }
    return releaseHeld
  }
}

export interface ReleaseLockOptions {
  stateDir: string
  release: string
  namespace: string
  applier: 'helm' | 'dir'
  /** The dir applier's output directory. */
  out?: string | undefined
}

/**
 * The locks an agent takes for one cycle: the state directory's, and with the dir applier the
 * output directory's too (`OUT/.NAMESPACE.RELEASE.lock`). What OUT holds is what is deployed,
 * so two agents writing one OUT from different state directories (two pods with emptyDirs and a
 * shared volume) would otherwise prune each other's half-written sets and could leave
 * `OUT/current` naming nothing.
 */
export function createReleaseLock (options: ReleaseLockOptions, onLost: LockLost = () => {}): ReleaseLock {
  const stateLock = new FileReleaseLock(options.stateDir, options.release, options.namespace, onLost)
  if (options.applier !== 'dir' || options.out === undefined) return stateLock
  return new CombinedReleaseLock([stateLock, new FileReleaseLock(options.out, options.release, options.namespace, onLost, '.')])
}
