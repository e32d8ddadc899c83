/**
 * `--from-file`: where an air-gapped agent gets its spec. Two kinds of file are accepted:
 *
 * - an air-gap bundle (`chartcast bundle export`, a .tar.gz): verified as an online answer is
 *   (keyset chain from --trust-root, signature, body hash, channel, expiry), and a chart inside
 *   it is installed from the bundle after its digest is checked. A bundle needs --trust-root:
 *   its whole point is the signature.
 * - a plain spec file (JSON or YAML), as before: unsigned, so it is refused when --trust-root is
 *   given (verification, once asked for, is required).
 *
 * A file that cannot be read or parsed is a ConfigError; a bundle (or, with --trust-root, a plain
 * file) that fails a check is a `refused` result naming the check, which the reconciler treats
 * like an online answer that failed verification. Either way nothing is applied.
 */
import { readFile, stat } from 'node:fs/promises'
import { KeysetError, parseTrustRoot, type TrustAnchor } from '../domain/keyset.js'
import { BundleFormatError, looksLikeBundle, MAX_BUNDLE_BYTES, parseBundle } from '../bundle/format.js'
import { verifyBundle, type BundleCheck } from '../bundle/verify.js'
import { ConfigError, errorMessage } from './errors.js'
import { InvalidSpecError, parseChannelSpec, type ChannelSpec } from './spec.js'
import { parseYamlData, readText } from './yaml.js'

export type FileSpec =
  | { kind: 'plain', spec: ChannelSpec }
  /** `chartArchive`: the chart the bundle carried, already checked against spec.chart.digest. */
  | { kind: 'bundle', spec: ChannelSpec, revision: number, chartArchive?: Buffer }
  /** `version`: what the file claims (unverified), for the log and the skipped report. */
  | { kind: 'refused', version: string, check: BundleCheck | 'bundle-malformed', detail: string }

export interface FileSpecOptions {
  /** --trust-root: the vendor's root public key, or a keyset it shipped. */
  trustRoot?: string
  /** --channel, when given: the bundle must be signed for it. */
  channel?: string
  /** The highest revision verified so far for a channel (null: none). */
  highestRevision: (channel: string) => Promise<number | null>
  nowMs: number
}

export async function readTrustRoot (path: string): Promise<TrustAnchor> {
  try {
    return parseTrustRoot(await readText(path, 'trust root'))
  } catch (err) {
    if (err instanceof KeysetError) throw new ConfigError(`trust root ${path}: ${err.message}`)
    throw err
  }
}

export async function readSpecFile (path: string, options: FileSpecOptions): Promise<FileSpec> {
  let bytes: Buffer
  try {
    const size = (await stat(path)).size
    if (size > MAX_BUNDLE_BYTES) throw new ConfigError(`spec file ${path} is ${size} bytes, more than a spec or bundle may be (${MAX_BUNDLE_BYTES})`)
    bytes = await readFile(path)
  } catch (err) {
    if (err instanceof ConfigError) throw err
    throw new ConfigError(`cannot read spec file ${path}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`, { cause: err })
  }

  if (!looksLikeBundle(bytes)) {
    const spec = parsePlainSpec(bytes.toString('utf8'), `spec file ${path}`)
    if (options.trustRoot !== undefined) {
      return { kind: 'refused', version: spec.version, check: 'signature-missing', detail: `spec file ${path} is a plain spec, which carries no signature; with --trust-root, --from-file takes a signed bundle (chartcast bundle export)` }
    }
    return { kind: 'plain', spec }
  }

  if (options.trustRoot === undefined) throw new ConfigError(`spec file ${path} is a bundle: give --trust-root (the vendor's root public key) to verify it`)
  const trust = await readTrustRoot(options.trustRoot)
  let files
  try {
    files = await parseBundle(bytes)
  } catch (err) {
    if (err instanceof BundleFormatError) return { kind: 'refused', version: 'unknown', check: 'bundle-malformed', detail: `bundle ${path}: ${err.message}` }
    throw err
  }
  // Without --channel the bundle's own channel is expected; verifyBundle holds it to the signature.
  const channel = options.channel ?? files.manifest.channel
  const verified = await verifyBundle(files, trust, { channel, highestRevision: await options.highestRevision(channel), nowMs: options.nowMs })
  if (!verified.ok) return { kind: 'refused', version: files.manifest.version, check: verified.check, detail: `bundle ${path}: ${verified.detail}` }
  const result: FileSpec = { kind: 'bundle', spec: verified.bundle.spec, revision: verified.bundle.statement.revision }
  if (verified.bundle.chart !== undefined) result.chartArchive = verified.bundle.chart
  return result
}

function parsePlainSpec (text: string, source: string): ChannelSpec {
  const data = parseYamlData(text, source)
  try {
    return parseChannelSpec(data, source)
  } catch (err) {
    if (err instanceof InvalidSpecError) throw new ConfigError(err.message)
    throw err
  }
}
