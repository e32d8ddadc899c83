/**
 * Bench building blocks: an app instance built the way `startServer` builds it (same plugin,
 * same fastify options), throwaway PostgreSQL databases, seeding and license minting.
 * Modelled on test/helpers/server.ts; shares only its throwaway-database helper.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import app, { fastifyOptions } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import type { SpecSigning } from '../src/services/spec-signer.js'
import { openDatabase, type Database } from '../src/db/index.js'
import { normaliseRelease } from '../src/domain/release.js'
import { issueLicense, type LicenseKeyPair } from '../src/license-tools.js'
import { loadLicenseKeys } from '../src/services/license-verifier.js'
import { issuePublisherToken } from '../src/token-tools.js'
import { createDatabaseNextTo, type ThrowawayDatabase } from '../test/helpers/throwaway-database.js'

export const ISSUER = 'https://licenses.bench.example'
export const AUDIENCE = 'chartcast-bench'
/**
 * Spec pulls per license per window: far above what a 10 s phase sends, so the limiter runs but
 * never refuses. BENCH_RATE_LIMIT_SPEC=0 (quick profiling only) turns the limiter off to show its cost.
 */
export const BENCH_RATE_LIMIT_SPEC = Number(process.env.BENCH_RATE_LIMIT_SPEC ?? '10000000')

export interface BenchApp {
  app: FastifyInstance
  database: Database
  tokens: { admin: string, publisher: string }
  /** http://127.0.0.1:port once listen() ran. */
  url: string | null
  listen (): Promise<string>
  close (): Promise<void>
}

export interface BenchAppOptions {
  /** PostgreSQL URL; null = PGlite (in memory unless dataDir is given). */
  databaseUrl: string | null
  keyPair: LicenseKeyPair
  authSecret: string
  /** PGlite on disk under this directory (the embedded default) instead of in memory. */
  dataDir?: string
  logLevel?: string
  /** Spec signing on (bench/signing-setup.ts); null: unsigned; absent: as SPEC_* in `env` say (unset: unsigned). */
  specSigning?: SpecSigning | null
  /** Environment on top of the bench's own (a variant's settings), as the server reads it. */
  env?: Record<string, string>
  /** A database another bench app opened (a second instance on the same data); not closed here. */
  database?: Database
  /** false: pulls record no check-in (AppOptions.recordCheckins), to show what recording costs. */
  recordCheckins?: boolean
}

export async function startBenchApp (options: BenchAppOptions): Promise<BenchApp> {
  const scratch = mkdtempSync(path.join(tmpdir(), 'chartcast-bench-'))
  const keyFile = path.join(scratch, 'license-public.pem')
  writeFileSync(keyFile, options.keyPair.publicPem)
  // An empty channels directory: a CHANNELS_DIR that does not exist stops start-up.
  mkdirSync(path.join(scratch, 'no-channels'))
  const config = loadConfig({
    DATA_DIR: options.dataDir ?? scratch,
    CHANNELS_DIR: path.join(scratch, 'no-channels'),
    LICENSE_PUBLIC_KEYS: keyFile,
    LICENSE_ISSUER: ISSUER,
    LICENSE_AUDIENCE: AUDIENCE,
    AUTH_SECRET: options.authSecret,
    // info and warn behave the same per request (the request line is debug); warn keeps the output readable.
    LOG_LEVEL: options.logLevel ?? 'warn',
    RATE_LIMIT_SPEC: String(BENCH_RATE_LIMIT_SPEC),
    RATE_LIMIT_API: '0',
    // autocannon is one address standing in for a fleet: the default cap of 100 connections per
    // address would close the connections it opens past its 100 (warm-up, reconnects).
    MAX_CONNECTIONS_PER_ADDRESS: '0',
    ...(options.databaseUrl !== null && { DATABASE_URL: options.databaseUrl }),
    ...options.env
  })
  const ownsDatabase = options.database === undefined
  const database = options.database ?? await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    inMemory: options.databaseUrl === null && options.dataDir === undefined
  })
  const licenseKeys = await loadLicenseKeys(config.licensePublicKeys)
  const fastify = Fastify(fastifyOptions(config))
  await fastify.register(app, { config, licenseKeys, authSecret: options.authSecret, database, ...(options.specSigning !== undefined && { specSigning: options.specSigning }), ...(options.recordCheckins === false && { recordCheckins: false }) })
  await fastify.ready()
  const tokens = {
    admin: (await issuePublisherToken(options.authSecret, { sub: 'bench-admin', role: 'admin', expiresIn: 86400 })).token,
    publisher: (await issuePublisherToken(options.authSecret, { sub: 'bench-publisher', role: 'publisher', expiresIn: 86400 })).token
  }
  const bench: BenchApp = {
    app: fastify,
    database,
    tokens,
    url: null,
    listen: async () => {
      await fastify.listen({ port: 0, host: '127.0.0.1' })
      const address = fastify.server.address()
      if (address === null || typeof address === 'string') throw new Error('no listening address')
      bench.url = `http://127.0.0.1:${address.port}`
      return bench.url
    },
    close: async () => {
      await fastify.close()
      if (ownsDatabase) await database.close()
      rmSync(scratch, { recursive: true, force: true })
    }
  }
  return bench
}

export type { ThrowawayDatabase }

/** A new empty database next to DATABASE_URL's; drop() removes it (WITH FORCE). */
export async function createThrowawayDatabase (base: string): Promise<ThrowawayDatabase> {
  return await createDatabaseNextTo(base, 'chartcast_bench')
}

export function channelName (i: number): string {
  return `ch-${String(i).padStart(3, '0')}`
}

/** Channel settings with some values to merge, so the compiled spec is representative. */
export function channelSettings (i: number): Record<string, unknown> {
  return {
    description: `bench channel ${i}`,
    pollInterval: '5m',
    values: { global: { region: `region-${i % 4}`, tier: i % 2 === 0 ? 'standard' : 'premium' }, ingress: { enabled: true, host: `ch${i}.example.com` } }
  }
}

export function releaseInput (version: string): Record<string, unknown> {
  return {
    version,
    chart: { url: 'https://charts.example.com/acme', name: 'acme-app', version: version },
    values: {
      image: { repository: 'registry.example.com/acme/app', tag: version, pullPolicy: 'IfNotPresent' },
      replicaCount: 2,
      resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '1', memory: '1Gi' } },
      env: { LOG_FORMAT: 'json', FEATURE_FLAGS: 'a,b,c' }
    },
    notes: `release ${version}`
  }
}

/** The i-th release of channel c: distinct per channel, increasing with i. */
export function releaseVersion (c: number, i: number): string {
  return `${c + 1}.${i}.0`
}

async function inject (bench: BenchApp, method: 'PUT' | 'POST', url: string, token: string, payload: Record<string, unknown>): Promise<void> {
  const response = await bench.app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, payload })
  if (response.statusCode >= 300) throw new Error(`${method} ${url} answered ${response.statusCode}: ${response.body}`)
}

/**
 * Channels through the API, releases through the store (one transaction each, as the API
 * does), promotions through the API so the spec cache is maintained by the real code.
 */
export async function seed (bench: BenchApp, channels: number, releasesPerChannel: number): Promise<void> {
  const store = bench.app.store
  for (let c = 0; c < channels; c++) await inject(bench, 'PUT', `/channels/${channelName(c)}`, bench.tokens.admin, channelSettings(c))
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < releasesPerChannel; i++) {
      await store.publishRelease(normaliseRelease(releaseInput(releaseVersion(c, i)) as never), 'bench-publisher')
    }
  }
  // Channels in parallel (one promotion in flight per channel), versions in order.
  await Promise.all(Array.from({ length: channels }, async (_, c) => {
    for (let i = 0; i < releasesPerChannel; i++) {
      await inject(bench, 'POST', `/channels/${channelName(c)}/releases`, bench.tokens.publisher, { version: releaseVersion(c, i) })
    }
  }))
}

export async function publishAndPromote (bench: BenchApp, channel: string, version: string): Promise<void> {
  await bench.app.store.publishRelease(normaliseRelease(releaseInput(version) as never), 'bench-publisher')
  await inject(bench, 'POST', `/channels/${channel}/releases`, bench.tokens.publisher, { version })
}

export interface MintedLicense { token: string, channel: string, sub: string }

/** License i: entitled to channel i mod n and one other, `channel` claim on the first; iss/aud set. */
export async function mintLicenses (keyPair: LicenseKeyPair, count: number, channels: number): Promise<MintedLicense[]> {
  const out: MintedLicense[] = []
  for (let i = 0; i < count; i++) {
    const channel = channelName(i % channels)
    const sub = `bench-deployment-${i}`
    const token = await issueLicense(keyPair.privatePem, {
      sub,
      channels: [channel, channelName((i + 7) % channels)],
      channel,
      expiresIn: 86_400,
      iss: ISSUER,
      aud: AUDIENCE,
      extra: { customer: `customer-${i}` }
    })
    out.push({ token, channel, sub })
  }
  return out
}
