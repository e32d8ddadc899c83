/**
 * DATA_DIR holds the whole database and, in development, the signing keys: nobody but the
 * server's own user should read or write it. New directories are created 0700 and new files
 * 0600 by running with umask 077 while the embedded database is open; PGlite also unpacks its
 * initial data directory with explicit 0666 modes (ignoring the umask), and a DATA_DIR made by
 * an earlier version has the looser modes of its day, so what is there is tightened as well.
 */
import { chmodSync, lstatSync, readdirSync } from 'node:fs'
import path from 'node:path'

/** No group or other bits on anything created while it is in force. */
export const OWNER_ONLY_UMASK = 0o077

/** A path that could not be tightened (not ours to chmod, say), and why. */
export interface LoosePath { path: string, reason: string }

function tighten (target: string, loose: LoosePath[]): void {
  let stat
  try {
    stat = lstatSync(target)
  } catch (error) {
    // Gone between listing and looking (PGlite removes temporary files as it runs).
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
    throw error
  }
  // A symlink's own mode means nothing, and what it points to may not be ours.
  if (stat.isSymbolicLink()) return
  if ((stat.mode & 0o077) !== 0) {
    try {
      chmodSync(target, stat.mode & 0o7700)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code !== 'ENOENT') loose.push({ path: target, reason: code ?? String(error) })
    }
  }
  if (!stat.isDirectory()) return
  let names: string[]
  try {
    names = readdirSync(target)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code !== 'ENOENT') loose.push({ path: target, reason: code ?? String(error) })
    return
  }
  for (const name of names) tighten(path.join(target, name), loose)
}

/**
 * Removes group and other permission bits from `dataDir` itself and, recursively, from the
 * entries of it named in `ownEntries` (only those: DATA_DIR may be a mount point holding
 * things that are not ours). Returns what could not be tightened.
 */
export function restrictToOwner (dataDir: string, ownEntries: readonly string[]): LoosePath[] {
  const loose: LoosePath[] = []
  try {
    const stat = lstatSync(dataDir)
    if ((stat.mode & 0o077) !== 0) chmodSync(dataDir, stat.mode & 0o7700)
  } catch (error) {
    loose.push({ path: dataDir, reason: (error as NodeJS.ErrnoException).code ?? String(error) })
  }
  for (const entry of ownEntries) tighten(path.join(dataDir, entry), loose)
  return loose
}
