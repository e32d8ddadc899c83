/**
 * `bundle export` and `bundle verify`: signed air-gap bundles (src/bundle/). The actions import
 * the bundle, database and signing code themselves, so registering the commands loads none of it.
 */
import { readFile } from 'node:fs/promises'
import { InvalidArgumentError, Option, type Command } from 'commander'
import { loadConfig } from '../config.js'
import { parseDuration } from '../domain/duration.js'

/** Exit code of `bundle verify` for a bundle that is refused (1: it could not be checked at all). */
export const BUNDLE_REFUSED_EXIT = 2
export const DEFAULT_BUNDLE_TTL = '30d'

function ttl (text: string): number {
  const ms = parseDuration(text)
  if (ms === null || ms < 60_000) throw new InvalidArgumentError(`"${text}" is not a duration of at least a minute, like 90d, 12w or 24h`)
  return ms
}

function instant (text: string): number {
  const ms = Date.parse(text)
  if (Number.isNaN(ms)) throw new InvalidArgumentError(`"${text}" is not a date-time like 2027-03-01T00:00:00Z`)
  return ms
}

export interface BundleExportFlags {
  channel: string
  version?: string
  chartFile?: string
  ttl: number
  out: string
  signingKey: string
  keyset?: string
  server?: string
  tokenFile?: string
}

export interface CommandOutput {
  stdout: (text: string) => void
  stderr: (text: string) => void
}

const processOutput: CommandOutput = { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) }

/** Resolves to the exit code; prints what it did (or why not). */
export async function runBundleExport (flags: BundleExportFlags, output: CommandOutput = processOutput, databaseOptions?: () => { databaseUrl: string | null, dataDir: string }): Promise<number> {
  const [{ BundleExportError, DatabaseSpecSource, ServerSpecSource, exportBundle }, { onlineKeyFromPem }, { parseKeysetChain, KeysetError }] = await Promise.all([
    import('../bundle/export.js'), import('../services/spec-signer.js'), import('../domain/keyset.js')
  ])
  let close = async (): Promise<void> => {}
  try {
    const signingKey = onlineKeyFromPem(await readFile(flags.signingKey, 'utf8'))
    let source
    let chain = flags.keyset === undefined ? undefined : parseKeysetChain(JSON.parse(await readFile(flags.keyset, 'utf8')))
    if (flags.server !== undefined) {
      if (flags.tokenFile === undefined) throw new BundleExportError('--server needs --token-file (a publisher token, as chartcast token create prints it)')
      const token = (await readFile(flags.tokenFile, 'utf8')).trim()
      const server = new ServerSpecSource(flags.server, token)
      source = server
      chain ??= await server.keys()
    } else {
      if (chain === undefined) throw new BundleExportError('--keyset is required when reading the database (the file SPEC_KEYSET names)')
      const { databaseUrl, dataDir } = databaseOptions?.() ?? loadConfig()
      const { openDatabase } = await import('../db/index.js')
      const database = await openDatabase({ databaseUrl, dataDir })
      close = async () => { await database.close() }
      source = new DatabaseSpecSource(database)
    }
    const result = await exportBundle({
      source,
      channel: flags.channel,
      ...(flags.version === undefined ? {} : { version: flags.version }),
      ...(flags.chartFile === undefined ? {} : { chartFile: flags.chartFile }),
      ttlMs: flags.ttl,
      signingKey,
      chain,
      out: flags.out
    })
    for (const warning of result.warnings) output.stderr(`warning: ${warning}\n`)
    const { manifest, statement } = result
    output.stdout(`wrote ${flags.out}: channel ${manifest.channel}, release ${manifest.version}, revision ${manifest.revision}, ${manifest.chart === null ? 'no chart archive' : 'with its chart archive'}; signature expires ${new Date(statement.expires * 1000).toISOString()}\n`)
    return 0
  } catch (error) {
    if (error instanceof BundleExportError || error instanceof KeysetError || error instanceof SyntaxError || (error as NodeJS.ErrnoException).code !== undefined) {
      output.stderr(`chartcast bundle export: ${(error as Error).message}\n`)
      return 1
    }
    throw error
  } finally {
    await close()
  }
}

export interface BundleVerifyFlags {
  trustRoot: string
  channel?: string
  /** Check the bundle as of this time (ms), e.g. the day it will be installed; default now. */
  at?: number
}

export async function runBundleVerify (file: string, flags: BundleVerifyFlags, output: CommandOutput = processOutput): Promise<number> {
  const [{ BundleFormatError, readBundleFile }, { verifyBundle }, { KeysetError, parseTrustRoot }] = await Promise.all([
    import('../bundle/format.js'), import('../bundle/verify.js'), import('../domain/keyset.js')
  ])
  let trust
  let files
  try {
    trust = parseTrustRoot(await readFile(flags.trustRoot, 'utf8'))
    files = await readBundleFile(file)
  } catch (error) {
    if (error instanceof BundleFormatError) {
      output.stderr(`bundle refused (bundle-malformed): ${error.message}\n`)
      return BUNDLE_REFUSED_EXIT
    }
    if (error instanceof KeysetError || (error as NodeJS.ErrnoException).code !== undefined) {
      output.stderr(`chartcast bundle verify: ${(error as Error).message}\n`)
      return 1
    }
    throw error
  }
  const nowMs = flags.at ?? Date.now()
  const result = await verifyBundle(files, trust, { ...(flags.channel === undefined ? {} : { channel: flags.channel }), highestRevision: null, nowMs })
  if (!result.ok) {
    output.stderr(`bundle refused (${result.check}): ${result.detail}\n`)
    return BUNDLE_REFUSED_EXIT
  }
  const { spec, statement, keyset, chart } = result.bundle
  const lines = [
    `bundle verified: channel ${statement.channel}, release ${statement.version}, revision ${statement.revision}`,
    `chart ${spec.chart.name ?? spec.chart.url} ${spec.chart.version}${spec.chart.digest === undefined ? ' (no digest)' : ` ${spec.chart.digest}`}${chart === undefined ? '' : ', archive included and matching'}`,
    `signed by keyset ${keyset.signed.version} (expires ${keyset.signed.expires}); signature expires ${new Date(statement.expires * 1000).toISOString()}`
  ]
  output.stdout(lines.join('\n') + '\n')
  return 0
}

export function registerBundleCommands (program: Command): void {
  const bundle = program.command('bundle').description('Signed air-gap bundles: the spec, its signature, the keyset chain and optionally the chart, for sites without a connection (docs/air-gap.md)')
  bundle.command('export')
    .description('Write a signed bundle of a channel\'s spec. Reads the server\'s API with --server and --token-file, else the database (DATABASE_URL, else the embedded one under DATA_DIR; stop the server first). Signs locally with an online key of the keyset.')
    .requiredOption('--channel <name>', 'channel whose spec to export')
    .option('--version <version>', 'a release version in the channel (default: its head)')
    .option('--chart-file <file>', 'the chart archive (.tgz) to carry; its sha256 must be the release\'s chart.digest')
    .addOption(new Option('--ttl <duration>', 'how long the signature is valid').argParser(ttl).default(ttl(DEFAULT_BUNDLE_TTL), DEFAULT_BUNDLE_TTL))
    .requiredOption('--out <file>', 'where to write the bundle (.tar.gz)')
    .requiredOption('--signing-key <file>', 'an online signing key (PEM, one of the files SPEC_SIGNING_KEYS names)')
    .option('--keyset <file>', 'the keyset chain (the file SPEC_KEYSET names); with --server, default: the server\'s GET /keys')
    .option('--server <url>', 'read the channel and release from this server instead of the database')
    .option('--token-file <file>', 'file holding a publisher token, for --server')
    .action(async (flags: BundleExportFlags) => {
      process.exitCode = await runBundleExport(flags)
    })
  bundle.command('verify')
    .description(`Check a bundle as an agent would before it is carried into a site: keyset chain from the trust root, signature, expiry, chart digest. Exits 0 when it verifies, ${BUNDLE_REFUSED_EXIT} naming the check that refused it, 1 when it could not check.`)
    .argument('<bundle>', 'the bundle file (.tar.gz)')
    .requiredOption('--trust-root <file>', 'the vendor\'s root public key (PEM or JWK) or a keyset it shipped')
    .option('--channel <name>', 'the channel the site follows (default: the one the bundle is signed for)')
    .option('--at <time>', 'check as of this date-time, e.g. the day it will be installed (default: now)', instant)
    .action(async (file: string, flags: BundleVerifyFlags) => {
      process.exitCode = await runBundleVerify(file, flags)
    })
}
