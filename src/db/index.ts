/**
 * The database behind one type. `DATABASE_URL` set: PostgreSQL through pg. Unset: embedded
 * PGlite persisted under DATA_DIR. Both run the same drizzle schema and the same migrations;
 * nothing outside this folder knows which one is in use.
 */
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { PGlite } from '@electric-sql/pglite'
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator'
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres'
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator'
import { sql } from 'drizzle-orm'
import pg from 'pg'
import * as schema from './schema.js'
import { connectionTarget, explainConnectionFailure } from './connection-error.js'
import { HOLDER_NAME, LOCK_NAME, lockDataDir, type DataDirLock } from './data-dir-lock.js'
import { OWNER_ONLY_UMASK, restrictToOwner } from './data-dir-permissions.js'

export type AppDatabase = PgDatabase<PgQueryResultHKT, typeof schema>

/** Migrations sit at the package root, two levels above both src/db and dist/db. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations', import.meta.url))

/** The NOTIFY channel every replica listens on. */
export const CHANGE_CHANNEL = 'chartcast_changes'

/** The listening connection's application_name: it is told apart in pg_stat_activity (and by the tests' proxy). */
export const LISTENER_APPLICATION_NAME = 'chartcast-listener'

export interface Database {
  readonly driver: 'pglite' | 'postgres'
  readonly db: AppDatabase
  migrate (): Promise<void>
  ping (): Promise<void>
  /**
   * Subscribes to change notifications. `onResync` runs whenever notifications may have been
   * missed (the listening connection was re-established), so the caller reloads everything.
   */
  listen (onChange: (payload: string) => void, onResync: () => void, options?: ListenOptions): Promise<() => Promise<void>>
  /** Whether change notifications are being received now (false while the listener reconnects). */
  listening (): boolean
  close (): Promise<void>
}

export interface ListenOptions {
  /**
   * PostgreSQL: how often the listening connection must answer a query, and how long it has
   * to answer. A half-open connection (a proxy or network that stops forwarding without a
   * FIN or RST) delivers nothing and raises no error; TCP keepalive would notice it only after
   * minutes. Default 10 s.
   */
  heartbeatMs?: number
}

/** LISTEN_HEARTBEAT_INTERVAL when unset. */
export const DEFAULT_LISTEN_HEARTBEAT_MS = 10_000

export interface DatabaseOptions {
  databaseUrl: string | null
  dataDir: string
  /** Embedded only: keep the database in memory (tests). */
  inMemory?: boolean
  /** Embedded in memory only: start from this data directory dump (PGlite `dumpDataDir`), skipping initdb (tests: seconds each). */
  loadDataDir?: Blob
  onListenError?: (error: Error) => void
  /**
   * Embedded on disk only: things the operator should hear about (paths under DATA_DIR that
   * could not be made owner-only, waiting for a dead holder's lock). Default: stderr.
   */
  onNotice?: (message: string) => void
  /**
   * Embedded on disk only: another process took the DATA_DIR lock from this one. Default:
   * stop the process at once (see stopOnLostLock).
   */
  onLockLost?: (error: Error) => void
}

export async function openDatabase (options: DatabaseOptions): Promise<Database> {
  return options.databaseUrl === null ? await openPglite(options) : openPostgres(options.databaseUrl, options.onListenError)
}

/** What the embedded database keeps in DATA_DIR, made owner-only at every start. */
const PGLITE_DIR = 'pglite'
const DEV_KEYS_DIR = 'dev-keys'
const OWN_ENTRIES = [PGLITE_DIR, DEV_KEYS_DIR, LOCK_NAME, HOLDER_NAME]

/**
 * Losing the lock means another process now writes the same database. Closing PGlite cleanly
 * would write this process's view over the other's, so stop at once instead: what this
 * process committed is on disk, and PostgreSQL's recovery on the next open is the same as
 * after kill -9.
 */
function stopOnLostLock (error: Error): void {
  process.stderr.write(`chartcast: lost the lock on DATA_DIR (${error.message}); another process may be using the database, stopping at once\n`)
  process.exit(1)
}

/**
 * PostgreSQL's default 128 MB of shared buffers live inside PGlite's WebAssembly memory, which
 * never shrinks. The catalogue is a few MB and the spec path never reads the database, so 16 MB
 * is plenty and keeps the embedded server's memory down (bench/README.md, RSS).
 */
const PGLITE_START_PARAMS = [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB']

async function openPglite (options: DatabaseOptions): Promise<Database> {
  if (options.inMemory === true) {
    const client = new PGlite({ startParams: PGLITE_START_PARAMS, ...(options.loadDataDir !== undefined && { loadDataDir: options.loadDataDir }) })
    await client.waitReady
    return wrapPglite(client, async () => {})
  }
  return await openPgliteOnDisk(options)
}

/**
 * The embedded database under DATA_DIR: owner-only (umask 077 while it is open, and what is
 * there tightened), and locked against every other process for as long as it is open.
 */
async function openPgliteOnDisk (options: DatabaseOptions): Promise<Database> {
  const notice = options.onNotice ?? ((message: string) => { process.stderr.write(`chartcast: ${message}\n`) })
  const dataDir = path.resolve(options.dataDir)
  // process.umask is process-wide; it is put back when the database closes.
  const previousUmask = process.umask(OWNER_ONLY_UMASK)
  let lock: DataDirLock | null = null
  let client: PGlite | null = null
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 })
    // DATA_DIR itself first, so nothing inside is reachable while PGlite unpacks 0666 files.
    restrictToOwner(dataDir, [])
    lock = await lockDataDir(dataDir, { onLost: options.onLockLost ?? stopOnLostLock, onNotice: notice })
    const dir = path.join(dataDir, PGLITE_DIR)
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    client = new PGlite(dir, { startParams: PGLITE_START_PARAMS })
    await client.waitReady
    const loose = restrictToOwner(dataDir, OWN_ENTRIES)
    if (loose.length > 0) {
      notice(`${loose.length} path(s) under DATA_DIR could not be made owner-only, e.g. ${loose[0]!.path} (${loose[0]!.reason}); others on this host may read the database`)
    }
  } catch (error) {
    if (client !== null && !client.closed) await client.close().catch(() => {})
    await lock?.release().catch(() => {})
    process.umask(previousUmask)
    throw error
  }
  const held = lock
  return wrapPglite(client, async () => {
    await held.release()
    process.umask(previousUmask)
  })
}

/** A Database over an opened PGlite instance; `afterClose` runs once, after PGlite has closed. */
function wrapPglite (client: PGlite, afterClose: () => Promise<void>): Database {
  const db = drizzlePglite(client, { schema }) as unknown as AppDatabase
  return {
    driver: 'pglite',
    db,
    migrate: async () => { await migratePglite(drizzlePglite(client), { migrationsFolder: MIGRATIONS_DIR }) },
    ping: async () => { await client.query('select 1') },
    listen: async (onChange) => {
      const unlisten = await client.listen(CHANGE_CHANNEL, onChange)
      return async () => { if (!client.closed) await unlisten() }
    },
    // In-process: notices cannot be lost on the way.
    listening: () => !client.closed,
    close: async () => {
      if (client.closed) return
      await client.close()
      await afterClose()
    }
  }
}

/**
 * pg's query_timeout fails the query but keeps the connection, with the timed-out query still
 * occupying it: the transaction's ROLLBACK then queues behind it and waits a second timeout,
 * and the client goes back to the pool unusable. A query that timed out means the
 * connection is not answering, so destroy it: what is queued fails at once, and the pool
 * discards the client on release.
 */
function abandonConnectionOnTimeout (client: pg.PoolClient): void {
  const abandon = (error: unknown): void => {
    if (error instanceof Error && error.message === 'Query read timeout') client.connection.stream.destroy()
  }
  const query = client.query.bind(client) as (...args: unknown[]) => unknown
  ;(client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]): unknown => {
    const last = args.length - 1
    const callback = args[last]
    if (typeof callback === 'function') {
      args[last] = (error: unknown, result: unknown) => {
        abandon(error)
        ;(callback as (error: unknown, result: unknown) => void)(error, result)
      }
      return query(...args)
    }
    const result = query(...args)
    if (result instanceof Promise) result.catch(abandon)
    return result
  }
}

function openPostgres (databaseUrl: string, onListenError?: (error: Error) => void): Database {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: 10,
    // Also bounds the wait for a free pooled connection.
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    // A dead or unreachable server must fail a request within seconds (503), not hang it:
    // every query this server makes is small, so 5 s means the database is not answering.
    query_timeout: 5_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000
  })
  // An idle client losing its connection emits here; without a listener it would crash the process.
  pool.on('error', (error) => onListenError?.(error))
  const checkedOut = new WeakSet<pg.PoolClient>()
  pool.on('acquire', (client) => checkedOut.add(client))
  pool.on('release', (_error, client) => checkedOut.delete(client))
  pool.on('connect', (client) => {
    // A checked-out client (a transaction in progress) has no pool listener: its connection
    // dropping would be an unhandled 'error' event and take the whole server down. The
    // query in flight still fails with the error.
    client.on('error', (error) => {
      onListenError?.(error)
      // drizzle's transaction() sends BEGIN before its try/finally, so a connection lost
      // during BEGIN is never released: the pool slot leaks, and after `max` such failures
      // the pool is exhausted for good. A dead connection is of no use to anyone: hand it
      // back now (the pool discards it) and make the holder's own release a no-op.
      if (checkedOut.has(client)) {
        const release = client.release
        client.release = () => {}
        release(error)
      }
    })
    abandonConnectionOnTimeout(client)
  })
  const db = drizzlePg(pool, { schema }) as unknown as AppDatabase
  let listener: pg.Client | null = null
  let closed = false
  let stopped = false
  const halted = (): boolean => closed || stopped
  let retryTimer: NodeJS.Timeout | null = null
  let heartbeatTimer: NodeJS.Timeout | null = null
  let heartbeatMs = DEFAULT_LISTEN_HEARTBEAT_MS
  const stopHeartbeat = (): void => {
    if (heartbeatTimer !== null) clearInterval(heartbeatTimer)
    heartbeatTimer = null
  }

  /**
   * Every heartbeatMs, a query on the listening connection itself: notifications arrive on it,
   * so an answer proves they can. No answer within heartbeatMs: the connection is given up
   * (`retry`) and a new one made, whose LISTEN is followed by a full resync.
   */
  function startHeartbeat (client: pg.Client, retry: (error: Error) => void): void {
    stopHeartbeat()
    let inFlight = false
    heartbeatTimer = setInterval(() => {
      if (inFlight || listener !== client) return
      inFlight = true
      let timer: NodeJS.Timeout | undefined
      const timedOut = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`the listen connection did not answer a heartbeat within ${heartbeatMs} ms`)), heartbeatMs)
      })
      Promise.race([client.query('select 1'), timedOut]).then(
        () => { inFlight = false },
        (error: Error) => {
          inFlight = false
          if (listener !== client) return
          // A connection that does not answer would never deliver a notice again either.
          client.connection.stream.destroy()
          retry(error)
        }
      ).finally(() => clearTimeout(timer))
    }, heartbeatMs)
    heartbeatTimer.unref()
  }

  async function connectListener (onChange: (payload: string) => void, onResync: () => void, attempt: number): Promise<void> {
    if (halted()) return
    const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5_000, keepAlive: true, keepAliveInitialDelayMillis: 10_000, application_name: LISTENER_APPLICATION_NAME })
    const retry = (error: Error) => {
      if (listener === client) stopHeartbeat()
      onListenError?.(error)
      client.removeAllListeners('error')
      client.on('error', () => {})
      client.end().catch(() => {})
      if (listener === client) listener = null
      if (halted() || retryTimer !== null) return
      const delay = Math.min(5_000, 250 * 2 ** Math.min(attempt, 5))
      retryTimer = setTimeout(() => {
        retryTimer = null
        connectListener(onChange, onResync, attempt + 1).catch(() => {})
      }, delay)
      retryTimer.unref()
    }
    client.on('error', retry)
    client.on('end', () => { if (!halted() && listener === client) retry(new Error('listen connection ended')) })
    client.on('notification', (message) => { if (message.channel === CHANGE_CHANNEL) onChange(message.payload ?? '') })
    try {
      await client.connect()
      await client.query(`LISTEN ${CHANGE_CHANNEL}`)
    } catch (error) {
      retry(error as Error)
      return
    }
    if (halted()) {
      await client.end().catch(() => {})
      return
    }
    listener = client
    startHeartbeat(client, retry)
    // Anything committed while we were not listening is picked up by a full reload.
    if (attempt > 0) onResync()
  }

  return {
    driver: 'postgres',
    db,
    migrate: async () => {
      try {
        await migratePg(drizzlePg(pool), { migrationsFolder: MIGRATIONS_DIR })
      } catch (error) {
        // The first query a server or CLI command makes: where a wrong DATABASE_URL shows.
        throw explainConnectionFailure(error, connectionTarget(databaseUrl)) ?? error
      }
    },
    ping: async () => { await db.execute(sql`select 1`) },
    listen: async (onChange, onResync, options) => {
      heartbeatMs = options?.heartbeatMs ?? DEFAULT_LISTEN_HEARTBEAT_MS
      await connectListener(onChange, onResync, 0)
      return async () => {
        stopped = true
        stopHeartbeat()
        if (retryTimer !== null) clearTimeout(retryTimer)
        if (listener !== null) await listener.end().catch(() => {})
        listener = null
      }
    },
    listening: () => listener !== null && !halted(),
    close: async () => {
      closed = true
      stopHeartbeat()
      if (retryTimer !== null) clearTimeout(retryTimer)
      if (listener !== null) await listener.end().catch(() => {})
      await pool.end()
    }
  }
}
