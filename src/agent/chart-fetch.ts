/**
 * Getting a chart whose digest the release pins, and proving it is that chart, before helm
 * installs anything. Helm's own `upgrade --install --repo --version` would resolve the chart
 * again at install time, from whatever the repository serves then; here the archive is pulled
 * once into a private directory, its sha256 checked, and helm installs that local file.
 *
 * What chart.digest names:
 * - the sha256 of the chart archive (.tgz). For an http(s) repository this is the `digest` of
 *   the chart's entry in index.yaml; for an OCI registry it is the digest of the chart layer.
 *   Checked here, on the bytes helm pulled (or the bytes a bundle carried).
 * - for an oci:// chart, alternatively the OCI manifest digest (what `helm push` prints). The
 *   archive's bytes cannot be checked against it without the manifest, so the chart is then
 *   pulled by that digest (`oci://host/repo/chart@sha256:...`, Helm >= 3.18), which makes the
 *   registry client verify the manifest it gets against the digest.
 */
import { createHash } from 'node:crypto'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { ChartRef } from '../schemas.js'
import { chartReference, isOci } from './spec.js'

/** The chart pulled does not have the digest its release pins: nothing may be installed. */
export class ChartDigestMismatchError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'ChartDigestMismatchError'
  }
}

/** Runs helm with these arguments (no shell); rejects when helm fails. */
export type RunHelm = (args: string[]) => Promise<unknown>

export function sha256Digest (bytes: Uint8Array): string {
  return 'sha256:' + createHash('sha256').update(bytes).digest('hex')
}

export interface VerifiedChartRequest {
  chart: ChartRef & { digest: string }
  /** A private directory (0700) the caller removes afterwards; the archive is written under it. */
  workDir: string
  runHelm: RunHelm
  /** The archive itself, when it travelled with the spec (an air-gap bundle): nothing is pulled. */
  archive?: Uint8Array
}

/**
 * Resolves to the path of a local chart archive whose digest is `chart.digest`, or rejects
 * with ChartDigestMismatchError (or helm's error when the pull itself fails).
 */
export async function fetchVerifiedChart (request: VerifiedChartRequest): Promise<string> {
  const { chart, workDir } = request
  if (request.archive !== undefined) {
    // Hash the bytes that are written, never re-read a path someone else could swap.
    const actual = sha256Digest(request.archive)
    if (actual !== chart.digest) throw mismatch(chart, actual, 'the bundle')
    const path = join(workDir, 'bundled-chart.tgz')
    await writeFile(path, request.archive, { mode: 0o600, flag: 'wx' })
    return path
  }

  const byVersion = await pullInto(join(workDir, 'pull'), request.runHelm, pullArgs(chart, chartReference(chart)))
  if (byVersion.digest === chart.digest) return byVersion.path
  if (!isOci(chart)) throw mismatch(chart, byVersion.digest, chart.url)

  // Not the archive's digest: for OCI it may be the manifest digest. Pull by it; a registry
  // that has no manifest with this digest makes helm fail, which fails the apply.
  try {
    const byDigest = await pullInto(join(workDir, 'pull-by-digest'), request.runHelm, pullArgs(chart, `${chartReference(chart)}@${chart.digest}`))
    return byDigest.path
  } catch (err) {
    throw new ChartDigestMismatchError(`chart digest mismatch: the release pins ${chart.digest}, which is neither the sha256 of the chart archive ${chart.url} serves for ${chart.version} (${byVersion.digest}) nor a manifest the registry has (${err instanceof Error ? err.message : String(err)}); nothing was applied`)
  }
}

function pullArgs (chart: ChartRef, reference: string): string[] {
  const args = ['pull', reference]
  if (!isOci(chart)) args.push('--repo', chart.url)
  args.push('--version', chart.version)
  return args
}

async function pullInto (dir: string, runHelm: RunHelm, args: string[]): Promise<{ path: string, digest: string }> {
  await mkdir(dir, { mode: 0o700 })
  await runHelm([...args, '--destination', dir])
  const archives = (await readdir(dir)).filter((name) => name.endsWith('.tgz'))
  if (archives.length !== 1) throw new ChartDigestMismatchError(`helm pull left ${archives.length} chart archives instead of one; nothing was applied`)
  const path = join(dir, archives[0] as string)
  return { path, digest: sha256Digest(await readFile(path)) }
}

function mismatch (chart: ChartRef & { digest: string }, actual: string, source: string): ChartDigestMismatchError {
  return new ChartDigestMismatchError(`chart digest mismatch: the release pins ${chart.digest}, but the archive of ${chart.name ?? chart.url} ${chart.version} from ${source} is ${actual}; nothing was applied`)
}
