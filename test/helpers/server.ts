/**
 * Builds the app against a fresh (emptied) database for one test. PGlite (in memory) by
 * default; `driver: 'postgres'` uses a database of the test file's own on TEST_DATABASE_URL's server.
 *
 *   const server = await buildTestServer(t)                 // closed by t.teardown
 *   const license = await server.license({ channels: ['stable'] })
 *   await server.app.inject({ method: 'GET', url: '/channels/stable/spec', headers: { authorization: `Bearer ${license}` } })
 *   server.tokens.admin / .publisher / .reader              // publisher API bearer tokens
 *   await server.publish('1.0.0'); await server.promote('stable', '1.0.0')
 *   server.listen() -> base URL of a real HTTP listener on 127.0.0.1 (ephemeral port)
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance, type LightMyRequestResponse, type RouteOptions } from 'fastify'
import app, { fastifyOptions } from '../../src/app.js'
import { loadConfig, type Config } from '../../src/config.js'
import { sql } from 'drizzle-orm'
import { createDatabaseNextTo, type ThrowawayDatabase } from './throwaway-database.js'
import { sharedCompilers } from './shared-compilers.js'
import { MIGRATIONS_DIR, openDatabase, type Database } from '../../src/db/index.js'
import { GENESIS_HASH } from '../../src/domain/audit-chain.js'
import { generateLicenseKeyPair, issueLicense, type LicenseKeyPair, type LicenseRequest } from '../../src/license-tools.js'
import { loadLicenseKeys, type LicenseKey } from '../../src/services/license-verifier.js'
import { issuePublisherToken } from '../../src/token-tools.js'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { PGlite } from '@electric-sql/pglite'
import tap from 'tap'
import { tmpdir } from 'node:os'
import path from 'node:path'

export type Driver = 'pglite' | 'postgres'

function configuredDatabaseUrl (): string | null {
  const url = process.env.TEST_DATABASE_URL
  return url === undefined || url === '' ? null : url
}

let dockerChecked: boolean | null = null

/** True when a Docker engine answers (not merely a client on PATH, as on our machines). */
function dockerReachable (): boolean {
  if (dockerChecked === null) {
    try {
      execFileSync('docker', ['info', '--format', '{{.ServerVersion}}'], { stdio: 'ignore', timeout: 5_000 })
      dockerChecked = true
    } catch {
      dockerChecked = false
    }
  }
  return dockerChecked
}

/**
 * The drivers the storage and API tests run against: PGlite always; PostgreSQL when
 * TEST_DATABASE_URL is set, or else through testcontainers when a Docker engine answers.
 */
export function testDrivers (): Driver[] {
  return configuredDatabaseUrl() !== null || dockerReachable() ? ['pglite', 'postgres'] : ['pglite']
}

let containerUrl: Promise<string> | null = null

/** The PostgreSQL server throwaway databases are made on: TEST_DATABASE_URL, else one container per test process. */
async function postgresBaseUrl (): Promise<string> {
  const configured = configuredDatabaseUrl()
  if (configured !== null) return configured
  containerUrl ??= (async () => {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql')
    const container = await new PostgreSqlContainer('postgres:15-alpine').start()
    return container.getConnectionUri()
  })()
  return await containerUrl
}

interface Teardown { teardown (fn: () => unknown): void }

/** Runs statements without parameters in one round trip (the simple query protocol both drivers have). */
async function runScript (database: Database, script: string): Promise<void> {
  const client = (database.db as unknown as { $client: { exec?: (text: string) => Promise<unknown>, query: (text: string) => Promise<unknown> } }).$client
  if (database.driver === 'pglite' && client.exec !== undefined) await client.exec(script)
  else await client.query(script)
}

let emptyingScript: Promise<string> | null = null

/**
 * Empties a test database between tests (the one place that knows how): every table of the
 * app's schema, with its sequences back at their start, and the audit chain head back at the
 * genesis value. DELETE, not TRUNCATE: on these near-empty tables TRUNCATE makes new files for
 * every table and index, about 170 ms a test on PostgreSQL and 40 ms on PGlite, against a few
 * ms. The append-only tables refuse DELETE through row triggers (and TRUNCATE through statement
 * triggers); replica mode (we are superuser) skips them, the way only a test may, and SET LOCAL
 * keeps it to the one transaction the script runs in.
 */
async function emptyDatabase (database: Database): Promise<void> {
  // Listed once per process (both drivers run the same migrations): a table a later migration adds is emptied too.
  emptyingScript ??= database.db.execute(sql`SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'audit_chain_head' ORDER BY tablename`)
    .then((result) => [
      'BEGIN',
      'SET LOCAL session_replication_role = replica',
      ...(result as { rows: Array<{ tablename: string }> }).rows.map(({ tablename }) => `DELETE FROM "${tablename}"`),
      'SELECT setval(format(\'%I\', sequencename)::regclass, start_value, false) FROM pg_sequences WHERE schemaname = current_schema()',
      `UPDATE audit_chain_head SET last_id = 0, last_hash = '${GENESIS_HASH}', last_at = to_timestamp(0)`,
      'COMMIT'
    ].join(';\n'))
  await runScript(database, await emptyingScript)
}

/**
 * A migrated, empty PGlite data directory, dumped once and shared by every test process
 * through a file in the temp directory: starting from it skips initdb, which costs seconds of
 * CPU per instance. Keyed by the migrations and the PGlite version, so a change makes a new one.
 */
function pgliteSnapshotPath (): string {
  const hash = createHash('sha256')
  const pglitePackage = fileURLToPath(new URL('../package.json', import.meta.resolve('@electric-sql/pglite')))
  hash.update(readFileSync(pglitePackage))
  for (const file of readdirSync(MIGRATIONS_DIR, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name)).sort()) {
    hash.update(file).update(readFileSync(file))
  }
  return path.join(tmpdir(), `chartcast-test-pglite-${hash.digest('hex').slice(0, 16)}.tar`)
}

/** An in-memory PGlite opened the way the server opens it, migrated; from the snapshot when there is one. */
async function openMigratedPglite (): Promise<Database> {
  const snapshot = pgliteSnapshotPath()
  if (existsSync(snapshot)) {
    const database = await openDatabase({ databaseUrl: null, dataDir: '', inMemory: true, loadDataDir: new Blob([readFileSync(snapshot)]) })
    await database.migrate() // a no-op on a current snapshot
    return database
  }
  const database = await openDatabase({ databaseUrl: null, dataDir: '', inMemory: true })
  await database.migrate()
  const client = (database.db as unknown as { $client: PGlite }).$client
  const dump = Buffer.from(await (await client.dumpDataDir('none')).arrayBuffer())
  // Written aside and renamed: a parallel test process reads a whole file or none.
  const partial = `${snapshot}.${process.pid}.tmp`
  writeFileSync(partial, dump)
  renameSync(partial, snapshot)
  return database
}

let sharedPglite: Promise<Database> | null = null

/**
 * PGlite takes seconds to start, so a test process shares one in-memory instance and each
 * test server empties it first (tests in a file run one after another).
 */
async function freshSharedPglite (): Promise<Database> {
  sharedPglite ??= openMigratedPglite().then((database) => {
    // Closed when the file's tests end: a PGlite loaded from a dump keeps the process alive.
    tap.teardown(async () => { await database.close() })
    return database
  })
  const database = await sharedPglite
  await emptyDatabase(database)
  return database
}

let fileDatabase: Promise<{ throwaway: ThrowawayDatabase, emptier: Database }> | null = null

/**
 * CREATE DATABASE plus migrations take most of a second, so a test process (one test file)
 * creates and migrates one PostgreSQL database, dropped when the file's tests end, and each
 * test server opens its own connections to it after emptying it (tests in a file run one
 * after another). The emptying goes through one connection kept for the file, not a new one per
 * test: each new connection is a new PostgreSQL backend process.
 */
async function freshFilePostgres (): Promise<string> {
  fileDatabase ??= (async () => {
    const throwaway = await createThrowawayDatabase()
    const emptier = await openDatabase({ databaseUrl: throwaway.url, dataDir: '/nonexistent' })
    tap.teardown(async () => {
      await emptier.close()
      await throwaway.drop()
    })
    await emptier.migrate()
    return { throwaway, emptier }
  })()
  const { throwaway, emptier } = await fileDatabase
  await emptyDatabase(emptier)
  return throwaway.url
}

export type { ThrowawayDatabase }

/** A new, empty PostgreSQL database on TEST_DATABASE_URL's server (or the test container). */
export async function createThrowawayDatabase (): Promise<ThrowawayDatabase> {
  return await createDatabaseNextTo(await postgresBaseUrl(), 'chartcast_t')
}

/**
 * The database as a replica whose change notifications are late: `listen` succeeds but
 * delivers nothing, so what the app serves after a write is what the write itself refreshed.
 */
function deafToChangeNotices (database: Database): Database {
  return {
    driver: database.driver,
    db: database.db,
    migrate: async () => { await database.migrate() },
    ping: async () => { await database.ping() },
    listen: async () => async () => {},
    // It claims to listen: the point is a replica that believes it hears, as with a lost NOTIFY.
    listening: () => true,
    close: async () => { await database.close() }
  }
}

export interface TestServerOptions {
  driver?: Driver
  /** A PGlite instance of its own instead of the process-wide shared one (slow: seconds). */
  isolated?: boolean
  /** Environment overrides, as the server would read them. */
  env?: Record<string, string>
  /** Reuse a database (replica tests); the caller closes it. */
  database?: Database
  /** Reuse the license key pair of another test server. */
  keyPair?: LicenseKeyPair
  authSecret?: string
  now?: () => number
  logLevel?: string
  /** Receives the server's log lines (JSON text) instead of stdout. */
  logStream?: { write (line: string): void }
  /** Sees every route the app registers (an onRoute hook added before the app). */
  onRoute?: (route: RouteOptions) => void
  /** The app's change-notice listener never hears anything (a replica whose NOTIFY is late). */
  deafToChangeNotices?: boolean
  /** The dashboard build to serve at /ui/ (test/helpers/dashboard.ts builds one). */
  dashboardDir?: string
}

export interface TestServer {
  app: FastifyInstance
  config: Config
  database: Database
  keyPair: LicenseKeyPair
  licenseKeys: LicenseKey[]
  authSecret: string
  tokens: { admin: string, publisher: string, reader: string }
  /** Present when driver is postgres. */
  databaseUrl: string | null
  license (request?: Partial<LicenseRequest>, nowSeconds?: number): Promise<string>
  publish (version: string, body?: Record<string, unknown>): Promise<LightMyRequestResponse>
  promote (channel: string, version: string): Promise<LightMyRequestResponse>
  putChannel (name: string, body?: Record<string, unknown>): Promise<LightMyRequestResponse>
  listen (): Promise<string>
  close (): Promise<void>
}

export async function buildTestServer (t: Teardown, options: TestServerOptions = {}): Promise<TestServer> {
  const driver = options.driver ?? 'pglite'
  const scratch = mkdtempSync(path.join(tmpdir(), 'chartcast-test-'))
  let databaseUrl: string | null = null
  let database = options.database
  let ownsDatabase = false
  if (database === undefined) {
    if (driver === 'postgres') {
      databaseUrl = await freshFilePostgres()
      database = await openDatabase({ databaseUrl, dataDir: scratch })
      ownsDatabase = true
    } else if (options.isolated === true) {
      database = await openMigratedPglite()
      ownsDatabase = true
    } else {
      database = await freshSharedPglite()
    }
  }
  if (options.deafToChangeNotices === true) database = deafToChangeNotices(database)
  const keyPair = options.keyPair ?? await generateLicenseKeyPair('ES256')
  const keyFile = path.join(scratch, 'license-public.pem')
  writeFileSync(keyFile, keyPair.publicPem)
  const authSecret = options.authSecret ?? randomBytes(32).toString('hex')
  // An empty channels directory: a CHANNELS_DIR that does not exist stops start-up.
  mkdirSync(path.join(scratch, 'no-channels'))
  const config = loadConfig({
    DATA_DIR: scratch,
    CHANNELS_DIR: path.join(scratch, 'no-channels'),
    LICENSE_PUBLIC_KEYS: keyFile,
    AUTH_SECRET: authSecret,
    LOG_LEVEL: options.logLevel ?? 'silent',
    ...options.env
  })
  const licenseKeys = await loadLicenseKeys(config.licensePublicKeys)
  const serverOptions = fastifyOptions(config)
  if (options.logStream !== undefined) serverOptions.logger = { ...(serverOptions.logger as object), stream: options.logStream }
  // Every route schema compiled once per test process, not once per app (test/helpers/shared-compilers.ts).
  serverOptions.schemaController = { compilersFactory: sharedCompilers as never }
  const fastify = Fastify(serverOptions)
  if (options.onRoute !== undefined) fastify.addHook('onRoute', options.onRoute)
  await fastify.register(app, { config, licenseKeys, authSecret, database, ...(options.now !== undefined && { now: options.now }), ...(options.dashboardDir !== undefined && { dashboardDir: options.dashboardDir }) })
  await fastify.ready()

  const tokens = {
    admin: (await issuePublisherToken(authSecret, { sub: 'alice-admin', role: 'admin', expiresIn: 3600 })).token,
    publisher: (await issuePublisherToken(authSecret, { sub: 'rita-release', role: 'publisher', expiresIn: 3600 })).token,
    reader: (await issuePublisherToken(authSecret, { sub: 'rob-reader', role: 'reader', expiresIn: 3600 })).token
  }
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    await fastify.close()
    if (ownsDatabase) await database.close()
    rmSync(scratch, { recursive: true, force: true })
  }
  t.teardown(close)

  const server: TestServer = {
    app: fastify,
    config,
    database,
    keyPair,
    licenseKeys,
    authSecret,
    tokens,
    databaseUrl,
    license: async (request = {}, nowSeconds) => await issueLicense(keyPair.privatePem, { sub: 'cluster-1', channels: ['*'], expiresIn: 3600, ...request }, nowSeconds ?? (options.now === undefined ? undefined : Math.floor(options.now() / 1000))),
    publish: async (version, body = {}) => await fastify.inject({
      method: 'POST',
      url: '/releases',
      headers: { authorization: `Bearer ${tokens.publisher}` },
      payload: { version, chart: { url: 'https://charts.example.com/acme', name: 'acme-app', version: '0.1.0' }, ...body }
    }),
    promote: async (channel, version) => await fastify.inject({
      method: 'POST',
      url: `/channels/${channel}/releases`,
      headers: { authorization: `Bearer ${tokens.publisher}` },
      payload: { version }
    }),
    putChannel: async (name, body = {}) => await fastify.inject({
      method: 'PUT',
      url: `/channels/${name}`,
      headers: { authorization: `Bearer ${tokens.admin}` },
      payload: body
    }),
    listen: async () => {
      await fastify.listen({ port: 0, host: '127.0.0.1' })
      const address = fastify.server.address()
      if (address === null || typeof address === 'string') throw new Error('no listening address')
      return `http://127.0.0.1:${address.port}`
    },
    close
  }
  return server
}
