/**
 * The air-gap bundle container: a gzipped tar (POSIX ustar, written and read with the `tar`
 * package) holding exactly these regular files, at its top level:
 *
 *   chartcast-bundle.json   {"format": "chartcast-bundle/1", channel, version, revision, exportedAt, chart}
 *                           (a table of contents for people and tools; nothing trusts it)
 *   spec.json               the spec body, byte for byte as GET /channels/:name/spec serves it
 *   spec.jws                the Chartcast-Signature of that body (a signed statement, src/domain/spec-statement.ts)
 *   keys.json               the keyset chain, {"keysets": [...]}, as GET /keys serves it
 *   chart.tgz               optional: the chart archive; its sha256 is the spec's chart.digest
 *
 * What makes a bundle trustworthy is verified, never assumed (src/bundle/verify.ts): the
 * chain from the trust root, the signature over spec.json, and the chart's digest named inside
 * the signed spec. A bundle is read into memory with every entry bounded, so a hostile file can
 * neither exhaust memory nor write anywhere: nothing is extracted to disk.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, open, rename, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { create, Parser, type ReadEntry } from 'tar'

export const BUNDLE_FORMAT = 'chartcast-bundle/1'

export const BUNDLE_FILES = {
  manifest: 'chartcast-bundle.json',
  spec: 'spec.json',
  signature: 'spec.jws',
  keys: 'keys.json',
  chart: 'chart.tgz'
} as const

/** Largest size of each entry, uncompressed. The server's own limit for a release is 1 MiB. */
const ENTRY_LIMITS: Record<string, number> = {
  [BUNDLE_FILES.manifest]: 64 * 1024,
  [BUNDLE_FILES.spec]: 4 * 1024 * 1024,
  [BUNDLE_FILES.signature]: 64 * 1024,
  [BUNDLE_FILES.keys]: 1024 * 1024,
  [BUNDLE_FILES.chart]: 64 * 1024 * 1024
}
/** Largest bundle file read at all (compressed). */
export const MAX_BUNDLE_BYTES = 80 * 1024 * 1024

export interface BundleManifest {
  format: typeof BUNDLE_FORMAT
  channel: string
  version: string
  revision: number
  exportedAt: string
  /** The chart archive's file name in the bundle, or null when it carries none. */
  chart: string | null
}

export interface BundleFiles {
  manifest: BundleManifest
  spec: Buffer
  signature: string
  keys: Buffer
  chart?: Buffer
}

/** The file is not a bundle (or a damaged one): what is wrong, for a person to read. */
export class BundleFormatError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'BundleFormatError'
  }
}

/** gzip's magic number (RFC 1952 2.3.1): how --from-file tells a bundle from a plain spec file. */
export function looksLikeBundle (bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b
}

/**
 * Writes the bundle to `out` atomically: a temporary file next to it, renamed over it when
 * complete, so a failed export never leaves a half bundle under the final name.
 */
export async function writeBundle (out: string, files: BundleFiles): Promise<void> {
  const staging = await mkdtemp(join(tmpdir(), 'chartcast-bundle-'))
  const partial = join(dirname(out), `.${basename(out)}.${randomBytes(4).toString('hex')}.partial`)
  try {
    const names: string[] = [BUNDLE_FILES.manifest, BUNDLE_FILES.spec, BUNDLE_FILES.signature, BUNDLE_FILES.keys]
    // The table of contents names the chart archive exactly when there is one.
    const manifest: BundleManifest = { ...files.manifest, chart: files.chart === undefined ? null : BUNDLE_FILES.chart }
    await writeFile(join(staging, BUNDLE_FILES.manifest), JSON.stringify(manifest, null, 2) + '\n', { mode: 0o600 })
    await writeFile(join(staging, BUNDLE_FILES.spec), files.spec, { mode: 0o600 })
    await writeFile(join(staging, BUNDLE_FILES.signature), files.signature + '\n', { mode: 0o600 })
    await writeFile(join(staging, BUNDLE_FILES.keys), files.keys, { mode: 0o600 })
    if (files.chart !== undefined) {
      await writeFile(join(staging, BUNDLE_FILES.chart), files.chart, { mode: 0o600 })
      names.push(BUNDLE_FILES.chart)
    }
    await create({ gzip: true, portable: true, cwd: staging, file: partial, mtime: new Date(files.manifest.exportedAt) }, names)
    const handle = await open(partial, 'r')
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(partial, out)
  } catch (error) {
    await rm(partial, { force: true })
    throw error
  } finally {
    await rm(staging, { recursive: true, force: true })
  }
}

/** Reads and unpacks a bundle file into memory; BundleFormatError when it is not a sound bundle. */
export async function readBundleFile (path: string): Promise<BundleFiles> {
  const size = (await stat(path)).size
  if (size > MAX_BUNDLE_BYTES) throw new BundleFormatError(`${path} is ${size} bytes, more than a bundle may be (${MAX_BUNDLE_BYTES})`)
  const handle = await open(path, 'r')
  try {
    return await parseBundle(await handle.readFile())
  } finally {
    await handle.close()
  }
}

export async function parseBundle (bytes: Uint8Array): Promise<BundleFiles> {
  if (!looksLikeBundle(bytes)) throw new BundleFormatError('not a bundle (a bundle is a .tar.gz file)')
  const entries = await untar(bytes)
  const need = (name: string): Buffer => {
    const entry = entries.get(name)
    if (entry === undefined) throw new BundleFormatError(`the bundle has no ${name}`)
    return entry
  }
  const manifest = parseManifest(need(BUNDLE_FILES.manifest))
  const files: BundleFiles = {
    manifest,
    spec: need(BUNDLE_FILES.spec),
    signature: need(BUNDLE_FILES.signature).toString('utf8').trim(),
    keys: need(BUNDLE_FILES.keys)
  }
  const chart = entries.get(BUNDLE_FILES.chart)
  if (chart !== undefined) files.chart = chart
  if ((manifest.chart === null) !== (chart === undefined)) throw new BundleFormatError('chartcast-bundle.json and the files in the bundle disagree about the chart archive')
  return files
}

function parseManifest (bytes: Buffer): BundleManifest {
  let value: unknown
  try {
    value = JSON.parse(bytes.toString('utf8'))
  } catch {
    throw new BundleFormatError('chartcast-bundle.json is not JSON')
  }
  const m = value as Partial<Record<keyof BundleManifest, unknown>> | null
  if (typeof m !== 'object' || m === null || m.format !== BUNDLE_FORMAT) {
    throw new BundleFormatError(`chartcast-bundle.json does not say "format": "${BUNDLE_FORMAT}" (a newer chartcast may have written it)`)
  }
  if (typeof m.channel !== 'string' || typeof m.version !== 'string' || typeof m.revision !== 'number' || typeof m.exportedAt !== 'string' || (m.chart !== null && m.chart !== BUNDLE_FILES.chart)) {
    throw new BundleFormatError('chartcast-bundle.json is missing channel, version, revision, exportedAt or chart')
  }
  return { format: BUNDLE_FORMAT, channel: m.channel, version: m.version, revision: m.revision, exportedAt: m.exportedAt, chart: m.chart }
}

/** Every entry must be a known regular file, once, within its size limit. */
async function untar (bytes: Uint8Array): Promise<Map<string, Buffer>> {
  const entries = new Map<string, Buffer>()
  let problem: string | null = null
  await new Promise<void>((resolve, reject) => {
    const parser = new Parser({
      strict: true,
      onReadEntry: (entry: ReadEntry) => {
        const name = entry.path.replace(/^\.\//, '')
        const limit = ENTRY_LIMITS[name]
        if (problem === null) {
          if (entry.type !== 'File' && entry.type !== 'OldFile') problem = `the bundle holds ${entry.path}, which is not a regular file`
          else if (limit === undefined) problem = `the bundle holds ${entry.path}, which no bundle has`
          else if (entries.has(name)) problem = `the bundle holds ${name} twice`
          else if (entry.size > limit) problem = `${name} is ${entry.size} bytes, more than ${limit}`
        }
        if (problem !== null) {
          entry.resume()
          return
        }
        const chunks: Buffer[] = []
        entry.on('data', (chunk: Buffer) => { chunks.push(chunk) })
        entry.on('end', () => { entries.set(name, Buffer.concat(chunks)) })
      }
    })
    parser.on('error', (error: Error) => { reject(new BundleFormatError(`the bundle is damaged: ${error.message}`)) })
    parser.on('end', () => { resolve() })
    parser.end(Buffer.from(bytes))
  })
  if (problem !== null) throw new BundleFormatError(problem)
  return entries
}
