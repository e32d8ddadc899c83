import { randomBytes } from 'node:crypto'
import { open, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/**
 * Writes a file so that readers (and a restarted agent) see either the old content or the
 * new, never a torn file: temp file in the same directory (rename is only atomic within a
 * filesystem), fsync the data, rename over the target, then fsync the directory so the
 * rename itself survives a power cut. Mode 0600 because state and outputs carry secrets.
 */
export async function writeFileAtomic (path: string, data: string, mode = 0o600): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  try {
    await writeFileDurable(tmp, data, mode)
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  await fsyncDir(dirname(path))
}

/** Creates (never overwrites) a file and fsyncs it before returning. */
export async function writeFileDurable (path: string, data: string, mode = 0o600): Promise<void> {
  const handle = await open(path, 'wx', mode)
  try {
    await handle.writeFile(data, 'utf8')
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** Best effort: some filesystems/platforms refuse fsync on a directory, which is not worth failing for. */
export async function fsyncDir (path: string): Promise<void> {
  let handle
  try {
    handle = await open(path, 'r')
    await handle.sync()
  } catch {
    // ignored on purpose, see above
  } finally {
    await handle?.close()
  }
}
