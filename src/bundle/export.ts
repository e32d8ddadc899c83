/**
 * Exporting an air-gap bundle: the spec a channel serves (its head, or one version in it),
 * signed with an online key for as long as the site needs (--ttl), with the keyset chain and,
 * optionally, the chart archive. The spec body is compiled by the same pure function the server
 * serves from (src/domain/spec.ts), from the server's API or straight from its database, so a
 * bundle's spec.json is byte for byte the server's answer.
 */
import { readFile } from 'node:fs/promises'
import type { Database } from '../db/index.js'
import { createStore } from '../db/store.js'
import { parseKeysetChain, type Keyset } from '../domain/keyset.js'
import { compileSpec } from '../domain/spec.js'
import type { SpecStatement } from '../domain/spec-statement.js'
import { ChartcastError } from '../errors.js'
import { SpecCache } from '../services/spec-cache.js'
import { SpecSigner, type OnlineSigningKey } from '../services/spec-signer.js'
import { sha256Digest } from '../agent/chart-fetch.js'
import { BUNDLE_FILES, BUNDLE_FORMAT, writeBundle, type BundleManifest } from './format.js'

export class BundleExportError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'BundleExportError'
  }
}

/** One spec as a channel serves it. */
export interface ServedSpec {
  body: string
  channel: string
  version: string
  revision: number
}

export interface SpecSource {
  /** The channel's head, or `version` when given (it must be in the channel). */
  read (channel: string, version?: string): Promise<ServedSpec>
}

type FetchLike = (url: string, init?: { headers?: Record<string, string>, signal?: AbortSignal }) => Promise<{ status: number, ok: boolean, text (): Promise<string> }>

/** Reads through the server's API with a publisher (or reader) token. */
export class ServerSpecSource implements SpecSource {
  private readonly base: string

  constructor (server: string, private readonly token: string, private readonly fetchImpl: FetchLike = fetch) {
    this.base = server.replace(/\/+$/, '')
  }

  private async getJson (path: string): Promise<unknown> {
    let res
    try {
      res = await this.fetchImpl(`${this.base}${path}`, { headers: { authorization: `Bearer ${this.token}`, accept: 'application/json' }, signal: AbortSignal.timeout(30_000) })
    } catch (error) {
      throw new BundleExportError(`GET ${path}: the server did not answer (${(error as Error).message})`)
    }
    const text = await res.text()
    if (!res.ok) {
      let detail = ''
      try {
        const problem = JSON.parse(text) as { code?: string, detail?: string }
        detail = `: ${problem.code ?? ''} ${problem.detail ?? ''}`.trimEnd()
      } catch {
        // Not a problem document: the status says enough.
      }
      throw new BundleExportError(`GET ${path} answered ${res.status}${detail}`)
    }
    return JSON.parse(text)
  }

  async read (channel: string, version?: string): Promise<ServedSpec> {
    const detail = await this.getJson(`/channels/${encodeURIComponent(channel)}`) as {
      name: string, values: Record<string, unknown>, pollInterval: string | null, head: string | null, revision: number, releases: Array<{ version: string }>
    }
    const chosen = version ?? detail.head
    if (chosen === null) throw new BundleExportError(`channel "${channel}" has no release yet`)
    if (!detail.releases.some((r) => r.version === chosen)) throw new BundleExportError(`release ${chosen} is not in channel "${channel}"`)
    const release = await this.getJson(`/releases/${encodeURIComponent(chosen)}`) as { version: string, chart: ServedSpecChart, values: Record<string, unknown> }
    const compiled = compileSpec({ name: detail.name, values: detail.values, pollInterval: detail.pollInterval }, { version: release.version, chart: release.chart, values: release.values })
    return { body: compiled.body, channel: detail.name, version: release.version, revision: detail.revision }
  }

  /** The keyset chain the server publishes at GET /keys. */
  async keys (): Promise<Keyset[]> {
    return parseKeysetChain(await this.getJson('/keys'))
  }
}

type ServedSpecChart = Parameters<typeof compileSpec>[1]['chart']

/** Reads the database (DATABASE_URL, or the embedded one under DATA_DIR) as the server would. */
export class DatabaseSpecSource implements SpecSource {
  constructor (private readonly database: Database) {}

  async read (channel: string, version?: string): Promise<ServedSpec> {
    const cache = new SpecCache(createStore(this.database.db))
    await cache.loadAll()
    const state = cache.get(channel)
    if (state === undefined) throw new BundleExportError(`channel "${channel}" does not exist`)
    const chosen = version ?? state.head?.version
    if (chosen === undefined) throw new BundleExportError(`channel "${channel}" has no release yet`)
    if (!state.active.includes(chosen)) throw new BundleExportError(`release ${chosen} is not in channel "${channel}"`)
    try {
      const compiled = await cache.specFor(state, chosen)
      return { body: compiled.body, channel, version: chosen, revision: state.row.revision }
    } catch (error) {
      if (error instanceof ChartcastError) throw new BundleExportError(error.detail)
      throw error
    }
  }
}

export interface ExportOptions {
  source: SpecSource
  channel: string
  version?: string
  /** A chart archive to carry; its sha256 must be the release's chart.digest. */
  chartFile?: string
  ttlMs: number
  signingKey: OnlineSigningKey
  chain: Keyset[]
  out: string
  now?: () => number
}

export interface ExportResult {
  manifest: BundleManifest
  statement: SpecStatement
  /** Things the vendor should know, e.g. that the keyset expires before the signature. */
  warnings: string[]
}

export async function exportBundle (options: ExportOptions): Promise<ExportResult> {
  const now = options.now ?? Date.now
  const chain = [...options.chain].sort((a, b) => a.signed.version - b.signed.version)
  const newest = chain.at(-1)
  if (newest === undefined) throw new BundleExportError('the keyset chain is empty')
  if (!newest.signed.keys.some((k) => k.kid === options.signingKey.kid)) {
    throw new BundleExportError(`the signing key (kid ${options.signingKey.kid}) is not an online key of keyset ${newest.signed.version}; no agent would accept its signature`)
  }
  const keysetExpiresMs = Date.parse(newest.signed.expires)
  if (keysetExpiresMs <= now()) throw new BundleExportError(`keyset ${newest.signed.version} expired at ${newest.signed.expires}; rotate it first (chartcast keys rotate)`)

  const served = await options.source.read(options.channel, options.version)
  const spec = JSON.parse(served.body) as { chart: { digest?: string } }
  let chart: Buffer | undefined
  if (options.chartFile !== undefined) {
    chart = await readFile(options.chartFile)
    const pinned = spec.chart.digest
    if (pinned === undefined) throw new BundleExportError(`release ${served.version} pins no chart.digest, so an agent could not check the chart archive; publish a release with chart.digest to ship its chart`)
    const actual = sha256Digest(chart)
    if (actual !== pinned) throw new BundleExportError(`${options.chartFile} is ${actual}, but release ${served.version} pins ${pinned}`)
  }

  const signer = new SpecSigner(options.signingKey, options.ttlMs, now)
  const signed = await signer.sign(served.body, { channel: served.channel, version: served.version, revision: served.revision })
  const warnings: string[] = []
  if (signed.expiresAtMs > keysetExpiresMs) {
    warnings.push(`keyset ${newest.signed.version} expires at ${newest.signed.expires}, before the signature (${new Date(signed.expiresAtMs).toISOString()}): the bundle is refused from then on unless the site gets a newer keyset`)
  }
  const manifest: BundleManifest = {
    format: BUNDLE_FORMAT,
    channel: served.channel,
    version: served.version,
    revision: served.revision,
    exportedAt: new Date(Math.floor(now() / 1000) * 1000).toISOString(),
    chart: chart === undefined ? null : BUNDLE_FILES.chart
  }
  await writeBundle(options.out, {
    manifest,
    spec: Buffer.from(served.body, 'utf8'),
    signature: signed.jws,
    keys: Buffer.from(JSON.stringify({ keysets: chain }) + '\n', 'utf8'),
    ...(chart === undefined ? {} : { chart })
  })
  return { manifest, statement: signed.statement, warnings }
}
