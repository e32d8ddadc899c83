/**
 * Says what went wrong when the server cannot use its PostgreSQL database at start-up. The
 * first query (the migrator's CREATE SCHEMA) is where a wrong DATABASE_URL shows, and drizzle
 * reports any failure there as "Failed query: ...", hiding whether the port was closed, the
 * database missing or the role unknown. The message is built only from the host, port, user
 * and database name and from PostgreSQL's own message, never from the URL, so no password can
 * end up in it.
 */
import pg from 'pg'

export class DatabaseConnectionError extends Error {
  readonly code = 'DATABASE_CONNECTION_FAILED'
  constructor (message: string) {
    super(message)
    this.name = 'DatabaseConnectionError'
  }
}

export interface ConnectionTarget { host: string, port: number, user: string, database: string }

/** Where pg will connect for this URL, with its defaults (PGHOST, PGUSER, ...) applied. */
export function connectionTarget (databaseUrl: string): ConnectionTarget {
  const client = new pg.Client({ connectionString: databaseUrl })
  return { host: client.host, port: client.port, user: client.user ?? '', database: client.database ?? '' }
}

interface ErrorLike { code?: unknown, message?: unknown, cause?: unknown, severity?: unknown }

/** The error itself and its causes (drizzle wraps the driver's error in `cause`). */
function chain (error: unknown): ErrorLike[] {
  const found: ErrorLike[] = []
  let current = error
  while (typeof current === 'object' && current !== null && found.length < 10) {
    found.push(current as ErrorLike)
    current = (current as ErrorLike).cause
  }
  return found
}

/** pg reports its own connect timeouts by message only. */
const TIMEOUT_MESSAGES = [/timeout expired/i, /connection timeout/i, /timeout exceeded when trying to connect/i, /Query read timeout/i]

function reason (error: ErrorLike, target: ConnectionTarget, where: string): string | null {
  const code = typeof error.code === 'string' ? error.code : null
  const message = typeof error.message === 'string' ? error.message : ''
  switch (code) {
    case 'ECONNREFUSED': return `connection refused at ${where}`
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME': return `cannot resolve host "${target.host}"`
    case 'ETIMEDOUT': return `no answer from ${where} (connection timed out)`
    case 'EHOSTUNREACH':
    case 'ENETUNREACH': return `${where} is unreachable (${code})`
    case 'ECONNRESET': return `${where} closed the connection`
    case 'ENOENT': return `no PostgreSQL socket at ${where}`
    case '3D000': return `database "${target.database}" does not exist on ${where}`
    case '28P01': return `password authentication failed for user "${target.user}" on ${where}`
    case '28000': return `authentication failed for user "${target.user}" on ${where}: ${message}`
  }
  if (TIMEOUT_MESSAGES.some((pattern) => pattern.test(message))) return `no answer from ${where} within the connect timeout`
  if (/Connection terminated/i.test(message)) return `${where} closed the connection`
  // Any other refusal by the server itself: its message names no secret.
  if (code !== null && typeof error.severity === 'string') return `${message} (SQLSTATE ${code}) on ${where}`
  return null
}

/**
 * A DatabaseConnectionError saying what failed, or null when `error` is not one we can
 * explain (then the caller rethrows it unchanged).
 */
export function explainConnectionFailure (error: unknown, target: ConnectionTarget): DatabaseConnectionError | null {
  const where = target.host.startsWith('/') ? `socket ${target.host}/.s.PGSQL.${target.port}` : `${target.host}:${target.port}`
  for (const link of chain(error)) {
    const why = reason(link, target, where)
    if (why !== null) return new DatabaseConnectionError(`DATABASE_URL: ${why}`)
  }
  return null
}
