/**
 * Memory of a server holding a large catalogue, run as child processes of run.ts so the
 * number is the server's alone (not the bench's 10,000 licenses, autocannon or the other
 * phase's server).
 *
 *   seed:  bulk-loads N channels x M releases (all promoted) into an embedded PGlite data
 *          directory or a PostgreSQL database with set-based SQL. 200,000 publishes and
 *          promotions through the API would take many minutes and measure nothing extra.
 *   serve: a fresh process starts the app on that database (the spec cache loads every
 *          channel), then one more publish + promotion per channel through the real API,
 *          one licensed spec pull per channel, GC, and reports process.memoryUsage().
 */
import { sql, type SQL } from 'drizzle-orm'
import { PgDialect } from 'drizzle-orm/pg-core'
import pg from 'pg'
import { openDatabase } from '../src/db/index.js'
import type { LicenseKeyPair } from '../src/license-tools.js'
import { channelName, mintLicenses, publishAndPromote, releaseVersion, startBenchApp } from './lib.js'

export interface RssJob {
  mode: 'seed' | 'serve'
  databaseUrl: string | null
  /** PGlite data directory when databaseUrl is null. */
  dataDir: string
  channels: number
  releasesPerChannel: number
  keyPair: LicenseKeyPair
  authSecret: string
}

export interface RssResult {
  rssMb: number
  heapUsedMb: number
  externalMb: number
  arrayBuffersMb: number
  startSeconds: number
  seedSeconds?: number
  /** PGlite only: the size of its WebAssembly memory, which it reserves up front and never gives back. */
  wasmMemoryMb?: number
}

const mb = (bytes: number): number => Math.round(bytes / 1_048_576 * 10) / 10

async function seedDatabase (job: RssJob): Promise<RssResult> {
  const started = Date.now()
  const database = await openDatabase({ databaseUrl: job.databaseUrl, dataDir: job.dataDir })
  try {
    await database.migrate()
  } finally {
    if (job.databaseUrl !== null) await database.close()
  }
  // PostgreSQL: a plain connection, since the server's pool gives up on a query after 5 s and
  // these inserts write 200,000 rows. PGlite: the same (single) connection the server would use.
  const client = job.databaseUrl === null ? null : new pg.Client({ connectionString: job.databaseUrl })
  await client?.connect()
  const execute = async (query: SQL): Promise<void> => {
    if (client === null) await database.db.execute(query)
    else {
      const built = new PgDialect().sqlToQuery(query)
      await client.query(built.sql, built.params)
    }
  }
  try {
    const channels = job.channels - 1
    const releases = job.releasesPerChannel - 1
    await execute(sql`
      INSERT INTO channels (name, description, values, poll_interval)
      SELECT 'ch-' || lpad(c::text, 3, '0'), 'bench channel', jsonb_build_object('global', jsonb_build_object('region', 'region-' || (c % 4))), '5m'
      FROM generate_series(0, ${channels}) c`)
    await execute(sql`
      INSERT INTO releases (version, chart_url, chart_name, chart_version, values, notes, digest, created_by)
      SELECT v, 'https://charts.example.com/acme', 'acme-app', v,
        jsonb_build_object('image', jsonb_build_object('repository', 'registry.example.com/acme/app', 'tag', v, 'pullPolicy', 'IfNotPresent'),
          'replicaCount', 2, 'resources', jsonb_build_object('requests', jsonb_build_object('cpu', '250m', 'memory', '256Mi'))),
        'release ' || v, 'sha256:' || md5(v), 'bench-seed'
      FROM (SELECT (c + 1) || '.' || i || '.0' AS v FROM generate_series(0, ${channels}) c, generate_series(0, ${releases}) i) s`)
    await execute(sql`
      INSERT INTO channel_releases (channel, version, state, promoted_by)
      SELECT 'ch-' || lpad(c::text, 3, '0'), (c + 1) || '.' || i || '.0', 'active', 'bench-seed'
      FROM generate_series(0, ${channels}) c, generate_series(0, ${releases}) i`)
  } finally {
    await client?.end()
    if (job.databaseUrl === null) await database.close()
  }
  return { rssMb: mb(process.memoryUsage().rss), heapUsedMb: 0, externalMb: 0, arrayBuffersMb: 0, startSeconds: 0, seedSeconds: (Date.now() - started) / 1000 }
}

async function serve (job: RssJob): Promise<RssResult> {
  const started = Date.now()
  const bench = await startBenchApp({ databaseUrl: job.databaseUrl, dataDir: job.dataDir, keyPair: job.keyPair, authSecret: job.authSecret })
  const startSeconds = (Date.now() - started) / 1000
  try {
    const loaded = bench.app.specCache.channelNames().length
    if (loaded !== job.channels) throw new Error(`spec cache loaded ${loaded} channels, expected ${job.channels}`)
    const licenses = await mintLicenses(job.keyPair, job.channels, job.channels)
    for (let c = 0; c < job.channels; c++) {
      const version = releaseVersion(c, job.releasesPerChannel)
      await publishAndPromote(bench, channelName(c), version)
      const response = await bench.app.inject({ method: 'GET', url: `/channels/${channelName(c)}/spec`, headers: { authorization: `Bearer ${licenses[c]!.token}` } })
      if (response.statusCode !== 200 || (JSON.parse(response.body) as { version: string }).version !== version) {
        throw new Error(`spec pull for ${channelName(c)} answered ${response.statusCode} (cache head ${bench.app.specCache.get(channelName(c))?.head?.version ?? "none"}, expected ${version}): ${response.body.slice(0, 300)}`)
      }
    }
    const gc = (globalThis as { gc?: () => void }).gc
    for (let i = 0; i < 3; i++) {
      gc?.()
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    const usage = process.memoryUsage()
    const wasm = (bench.database.db as unknown as { $client?: { mod?: { wasmMemory?: { buffer: ArrayBuffer } } } }).$client?.mod?.wasmMemory
    return {
      rssMb: mb(usage.rss),
      heapUsedMb: mb(usage.heapUsed),
      externalMb: mb(usage.external),
      arrayBuffersMb: mb(usage.arrayBuffers),
      startSeconds,
      ...(job.databaseUrl === null && wasm !== undefined && { wasmMemoryMb: mb(wasm.buffer.byteLength) })
    }
  } finally {
    await bench.close()
  }
}

process.once('message', (job: RssJob) => {
  (job.mode === 'seed' ? seedDatabase(job) : serve(job)).then((result) => {
    process.send!(result, () => process.exit(0))
  }, (error: unknown) => {
    console.error(error)
    process.exit(1)
  })
})
