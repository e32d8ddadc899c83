/**
 * Server configuration: read from the environment once, validated, then passed around.
 * The only module that reads process.env for the server.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import util from 'node:util'
import { parseDuration } from './domain/duration.js'
import { parseRoleMapping, type RoleRule } from './domain/session.js'
import { nearestKey } from './domain/unknown-key.js'

export interface Config {
  port: number
  host: string
  databaseUrl: string | null
  dataDir: string
  channelsDir: string
  /** CHANNELS_DIR was set: a missing directory is then an error, not a warning. */
  channelsDirExplicit: boolean
  logLevel: string
  licensePublicKeys: string[]
  licenseIssuer: string | null
  licenseAudience: string | null
  authSecret: string | null
  /** The longest a publisher token may live (exp - iat, and exp - now), in seconds. */
  publisherTokenMaxLifetimeSeconds: number
  anonymousChannel: string | null
  /** Spec pulls allowed per license per window (0 disables). */
  rateLimitSpec: number
  /** Publisher API requests allowed per token per window (0 disables). */
  rateLimitApi: number
  /**
   * New tokens per client address per window that may fail verification before 429 (0, the
   * default, disables: behind a proxy without TRUST_PROXY every client shares one address).
   */
  rateLimitLicenseFailures: number
  rateLimitWindowMs: number
  bodyLimitBytes: number
  trustProxy: boolean
  /** NODE_ENV=production: no development keys; the server refuses to start without real ones. */
  production: boolean
  /**
   * How long each start-up step (fastify's pluginTimeout) may take: opening the embedded
   * database for the first time, migrations and the channel sync can take well over fastify's
   * default of 10 s on a loaded machine.
   */
  startupTimeoutMs: number
  /** Time to receive a whole request, headers and body (Node's requestTimeout); over it: 408. */
  requestTimeoutMs: number
  /** Time to receive the request headers (Node's headersTimeout); at most requestTimeoutMs. */
  headersTimeoutMs: number
  /** How long an idle keep-alive connection is kept open. */
  keepAliveTimeoutMs: number
  /** Open connections in all (0: no cap); past it, new connections are closed at once. */
  maxConnections: number
  /** Open connections per client address (0: no cap); see src/plugins/connection-limits.ts for TRUST_PROXY. */
  maxConnectionsPerAddress: number
  /** How often a replica compares every channel's revision, and the revocation lists, with what it holds (RESYNC_INTERVAL). */
  resyncIntervalMs: number
  /** How often the PostgreSQL listening connection must answer (LISTEN_HEARTBEAT_INTERVAL). */
  listenHeartbeatMs: number
  /** How often check-ins and reports are written to the database (ms). */
  checkinFlushIntervalMs: number
  /** Deployments (and reports) held unwritten at most, e.g. while the database is down. */
  checkinMaxPending: number
  /** Check-in batches written at once on PostgreSQL (CHECKIN_FLUSH_CONCURRENCY); PGlite writes one at a time. */
  checkinFlushConcurrency: number
  /** Apply reports older than this are pruned (seconds). */
  reportRetentionSeconds: number
  /** SPEC_SIGNING_KEYS: online Ed25519 private keys (PEM files); the first signs spec answers. */
  specSigningKeys: string[]
  /** SPEC_KEYSET: the keyset chain file served at GET /keys. */
  specKeyset: string | null
  /** SPEC_SIGNATURE_TTL: how long a Chartcast-Signature is valid (ms). */
  specSignatureTtlMs: number
  /** PUBLIC_URL's origin (scheme://host[:port]): what a cookie-authenticated mutation's Origin must be. */
  publicOrigin: string | null
  /** SESSION_SECRET: mixed into the session cookie key (derived from AUTH_SECRET when unset). */
  sessionSecret: string | null
  /** The longest a dashboard session lives (SESSION_MAX_AGE), in seconds; less if its token ends first. */
  sessionMaxAgeSeconds: number
  /** OpenID Connect single sign-on, when OIDC_ISSUER is set. */
  oidc: OidcConfig | null
}

export interface OidcConfig {
  issuer: string
  clientId: string
  clientSecret: string
  /** The ID-token claim mapped to a role (OIDC_ROLE_CLAIM, default `groups`). */
  roleClaim: string
  /** OIDC_ROLES, parsed (src/domain/session.ts). */
  roles: RoleRule[]
  /** OIDC_SCOPES, space-separated; always includes openid. */
  scopes: string
  /** `${PUBLIC_URL}/auth/oidc/callback`, registered with the provider. */
  redirectUri: string
}

export class ConfigError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

/** PUBLISHER_TOKEN_MAX_LIFETIME when unset. */
export const DEFAULT_PUBLISHER_TOKEN_MAX_LIFETIME = '90d'

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])

type Env = Record<string, string | undefined>

function text (env: Env, key: string): string | null {
  const value = env[key]?.trim()
  return value === undefined || value === '' ? null : value
}

function integer (env: Env, key: string, fallback: number, min: number, max: number): number {
  const raw = text(env, key)
  if (raw === null) return fallback
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${key} must be a whole number, got "${raw}"`)
  const value = Number(raw)
  if (value < min || value > max) throw new ConfigError(`${key} must be between ${min} and ${max}, got ${value}`)
  return value
}

function bool (env: Env, key: string, fallback: boolean): boolean {
  const raw = text(env, key)
  if (raw === null) return fallback
  if (/^(1|true|yes)$/i.test(raw)) return true
  if (/^(0|false|no)$/i.test(raw)) return false
  throw new ConfigError(`${key} must be true or false, got "${raw}"`)
}

function duration (env: Env, key: string, fallback: string, minMs: number): number {
  const raw = text(env, key) ?? fallback
  const ms = parseDuration(raw)
  if (ms === null || ms < minMs) throw new ConfigError(`${key} must be a duration of at least ${minMs} ms (e.g. 30s), got "${raw}"`)
  return ms
}

/** A timer's period: a duration of at least 100ms (and at most a day, which setInterval can hold). */
function interval (env: Env, key: string, fallback: string): number {
  const raw = text(env, key) ?? fallback
  const ms = parseDuration(raw)
  if (ms === null || ms < 100 || ms > 86_400_000) throw new ConfigError(`${key} must be a duration between 100ms and 1d, got "${raw}"`)
  return ms
}

/** PUBLIC_URL: the address people open the server at; only its origin counts. */
function publicOrigin (env: Env): string | null {
  const raw = text(env, 'PUBLIC_URL')
  if (raw === null) return null
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new ConfigError(`PUBLIC_URL must be an http:// or https:// URL, got "${raw}"`)
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '' || url.pathname !== '/') {
    throw new ConfigError(`PUBLIC_URL must be the server's origin only, like https://chartcast.example.com (no path, query or credentials), got "${raw}"`)
  }
  return url.origin
}

const OIDC_VARIABLES = ['OIDC_ISSUER', 'OIDC_CLIENT_ID', 'OIDC_CLIENT_SECRET', 'OIDC_ROLES', 'OIDC_ROLE_CLAIM', 'OIDC_SCOPES']

/** The OIDC_* variables: all or none of the required ones, a role mapping that parses, and PUBLIC_URL. */
function oidcConfig (env: Env, origin: string | null, production: boolean): OidcConfig | null {
  // A misspelt variable (OIDC_ROLE for OIDC_ROLES) would otherwise leave sign-on half set up, silently.
  for (const key of Object.keys(env)) {
    if (key.startsWith('OIDC_') && !OIDC_VARIABLES.includes(key) && text(env, key) !== null) {
      const near = nearestKey(key, OIDC_VARIABLES)
      throw new ConfigError(`${key} is not a chartcast setting${near === null ? '' : `; did you mean ${near}?`} (single sign-on reads ${OIDC_VARIABLES.join(', ')})`)
    }
  }
  const set = OIDC_VARIABLES.filter((key) => text(env, key) !== null)
  if (set.length === 0) return null
  const missing = ['OIDC_ISSUER', 'OIDC_CLIENT_ID', 'OIDC_CLIENT_SECRET', 'OIDC_ROLES'].filter((key) => text(env, key) === null)
  if (missing.length > 0) throw new ConfigError(`single sign-on needs ${missing.join(', ')} too (${set.join(', ')} ${set.length === 1 ? 'is' : 'are'} set); see docs/dashboard.md`)
  if (origin === null) throw new ConfigError('single sign-on needs PUBLIC_URL (the provider redirects back to PUBLIC_URL/auth/oidc/callback)')
  const issuer = text(env, 'OIDC_ISSUER')!
  let issuerUrl: URL
  try {
    issuerUrl = new URL(issuer)
  } catch {
    throw new ConfigError(`OIDC_ISSUER must be the provider's issuer URL, got "${issuer}"`)
  }
  if (issuerUrl.protocol !== 'https:' && !(issuerUrl.protocol === 'http:' && !production)) {
    throw new ConfigError(`OIDC_ISSUER must be an https:// URL${production ? ' (http:// is accepted outside NODE_ENV=production only)' : ''}, got "${issuer}"`)
  }
  const mapping = parseRoleMapping(text(env, 'OIDC_ROLES')!)
  if (!mapping.ok) throw new ConfigError(`OIDC_ROLES: ${mapping.message}; the format is claim-value=role,... with role reader, publisher or admin and * for anyone, e.g. chartcast-admins=admin,*=reader`)
  const roleClaim = text(env, 'OIDC_ROLE_CLAIM') ?? 'groups'
  const scopeList = (text(env, 'OIDC_SCOPES') ?? 'openid email profile').split(/\s+/)
  if (!scopeList.includes('openid')) scopeList.unshift('openid')
  return {
    issuer,
    clientId: text(env, 'OIDC_CLIENT_ID')!,
    clientSecret: text(env, 'OIDC_CLIENT_SECRET')!,
    roleClaim,
    roles: mapping.rules,
    scopes: scopeList.join(' '),
    redirectUri: `${origin}/auth/oidc/callback`
  }
}

export function loadConfig (env: Env = process.env): Config {
  const databaseUrl = text(env, 'DATABASE_URL')
  if (databaseUrl !== null && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL must be a postgres:// or postgresql:// URL')
  }
  const logLevel = text(env, 'LOG_LEVEL') ?? 'info'
  if (!LOG_LEVELS.has(logLevel)) throw new ConfigError(`LOG_LEVEL must be one of ${[...LOG_LEVELS].join(', ')}, got "${logLevel}"`)
  const authSecret = text(env, 'AUTH_SECRET')
  if (authSecret !== null && authSecret.length < 32) {
    throw new ConfigError('AUTH_SECRET must be at least 32 characters (it signs publisher tokens with HS256)')
  }
  const maxLifetimeText = text(env, 'PUBLISHER_TOKEN_MAX_LIFETIME') ?? DEFAULT_PUBLISHER_TOKEN_MAX_LIFETIME
  const maxLifetimeMs = parseDuration(maxLifetimeText)
  if (maxLifetimeMs === null || maxLifetimeMs < 60_000 || maxLifetimeMs % 1000 !== 0) {
    throw new ConfigError(`PUBLISHER_TOKEN_MAX_LIFETIME must be a duration of whole seconds, at least 1m, got "${maxLifetimeText}"`)
  }
  const windowText = text(env, 'RATE_LIMIT_WINDOW') ?? '1m'
  const rateLimitWindowMs = parseDuration(windowText)
  if (rateLimitWindowMs === null || rateLimitWindowMs < 1000) throw new ConfigError(`RATE_LIMIT_WINDOW must be a duration of at least 1s, got "${windowText}"`)
  const requestTimeoutMs = duration(env, 'REQUEST_TIMEOUT', '30s', 100)
  const headersTimeoutMs = duration(env, 'HEADERS_TIMEOUT', requestTimeoutMs < 10_000 ? `${requestTimeoutMs}ms` : '10s', 100)
  if (headersTimeoutMs > requestTimeoutMs) throw new ConfigError('HEADERS_TIMEOUT must not be longer than REQUEST_TIMEOUT (the headers are part of the request)')
  const resyncIntervalMs = interval(env, 'RESYNC_INTERVAL', '30s')
  const listenHeartbeatMs = interval(env, 'LISTEN_HEARTBEAT_INTERVAL', '10s')
  const flushText = text(env, 'CHECKIN_FLUSH_INTERVAL') ?? '5s'
  const checkinFlushIntervalMs = parseDuration(flushText)
  if (checkinFlushIntervalMs === null || checkinFlushIntervalMs < 100 || checkinFlushIntervalMs > 3_600_000) throw new ConfigError(`CHECKIN_FLUSH_INTERVAL must be a duration between 100ms and 1h, got "${flushText}"`)
  const retentionText = text(env, 'REPORT_RETENTION') ?? '30d'
  const retentionMs = parseDuration(retentionText)
  // The reports table's trigger never lets a report younger than an hour be deleted.
  if (retentionMs === null || retentionMs < 3_600_000 || retentionMs % 1000 !== 0) throw new ConfigError(`REPORT_RETENTION must be a duration of whole seconds, at least 1h, got "${retentionText}"`)
  const sessionSecret = text(env, 'SESSION_SECRET')
  if (sessionSecret !== null && sessionSecret.length < 32) throw new ConfigError('SESSION_SECRET must be at least 32 characters (it keys the session cookie)')
  const sessionText = text(env, 'SESSION_MAX_AGE') ?? '12h'
  const sessionMs = parseDuration(sessionText)
  if (sessionMs === null || sessionMs < 60_000 || sessionMs > 30 * 86_400_000 || sessionMs % 1000 !== 0) throw new ConfigError(`SESSION_MAX_AGE must be a duration of whole seconds between 1m and 30d, got "${sessionText}"`)
  const production = text(env, 'NODE_ENV') === 'production'
  const origin = publicOrigin(env)
  const specSigningKeys = (text(env, 'SPEC_SIGNING_KEYS') ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '').map((p) => path.resolve(p))
  const specKeysetText = text(env, 'SPEC_KEYSET')
  if ((specSigningKeys.length === 0) !== (specKeysetText === null)) throw new ConfigError('SPEC_SIGNING_KEYS and SPEC_KEYSET go together: set both to sign spec answers, or neither')
  const ttlText = text(env, 'SPEC_SIGNATURE_TTL') ?? '7d'
  const specSignatureTtlMs = parseDuration(ttlText)
  // At least 10s: the re-sign timer renews at half the TTL, and an agent needs time to use an answer.
  if (specSignatureTtlMs === null || specSignatureTtlMs < 10_000 || specSignatureTtlMs > 366 * 86_400_000) throw new ConfigError(`SPEC_SIGNATURE_TTL must be a duration between 10s and 366d, got "${ttlText}"`)
  return {
    port: integer(env, 'PORT', 8080, 0, 65535),
    host: text(env, 'HOST') ?? '0.0.0.0',
    databaseUrl,
    dataDir: path.resolve(text(env, 'DATA_DIR') ?? './data'),
    channelsDir: path.resolve(text(env, 'CHANNELS_DIR') ?? './channels'),
    channelsDirExplicit: text(env, 'CHANNELS_DIR') !== null,
    logLevel,
    licensePublicKeys: (text(env, 'LICENSE_PUBLIC_KEYS') ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '').map((p) => path.resolve(p)),
    licenseIssuer: text(env, 'LICENSE_ISSUER'),
    licenseAudience: text(env, 'LICENSE_AUDIENCE'),
    authSecret,
    publisherTokenMaxLifetimeSeconds: maxLifetimeMs / 1000,
    anonymousChannel: text(env, 'ANONYMOUS_CHANNEL'),
    rateLimitSpec: integer(env, 'RATE_LIMIT_SPEC', 600, 0, 10_000_000),
    rateLimitApi: integer(env, 'RATE_LIMIT_API', 300, 0, 10_000_000),
    rateLimitLicenseFailures: integer(env, 'RATE_LIMIT_LICENSE_FAILURES', 0, 0, 10_000_000),
    rateLimitWindowMs,
    bodyLimitBytes: integer(env, 'BODY_LIMIT', 1_048_576, 1024, 64 * 1_048_576),
    trustProxy: bool(env, 'TRUST_PROXY', false),
    production,
    startupTimeoutMs: duration(env, 'STARTUP_TIMEOUT', '5m', 1000),
    requestTimeoutMs,
    headersTimeoutMs,
    keepAliveTimeoutMs: duration(env, 'KEEP_ALIVE_TIMEOUT', '72s', 100),
    maxConnections: integer(env, 'MAX_CONNECTIONS', 10_000, 0, 10_000_000),
    maxConnectionsPerAddress: integer(env, 'MAX_CONNECTIONS_PER_ADDRESS', 100, 0, 10_000_000),
    resyncIntervalMs,
    listenHeartbeatMs,
    checkinFlushIntervalMs,
    checkinMaxPending: integer(env, 'CHECKIN_MAX_PENDING', 1_000_000, 1, 100_000_000),
    checkinFlushConcurrency: integer(env, 'CHECKIN_FLUSH_CONCURRENCY', 1, 1, 8),
    reportRetentionSeconds: retentionMs / 1000,
    publicOrigin: origin,
    sessionSecret,
    sessionMaxAgeSeconds: sessionMs / 1000,
    oidc: oidcConfig(env, origin, production),
    specSigningKeys,
    specKeyset: specKeysetText === null ? null : path.resolve(specKeysetText),
    specSignatureTtlMs
  }
}

const ENV_ASSIGNMENT = /^(?:export\s+)?[A-Za-z_][A-Za-z0-9_]*\s*=\s*(.*)$/

/**
 * Node's .env parser skips what it cannot read without a word (and may fold a stray line into
 * the next variable's name), so a typo would silently leave a setting at its default. Every
 * line must be blank, a comment or NAME=value; a quoted value may run over several lines.
 * The message names the line, never its text (it may hold a secret).
 */
function checkEnvFile (content: string, file: string): void {
  const lines = content.split(/\r?\n/)
  let openQuote: { quote: string, line: number } | null = null
  for (const [index, line] of lines.entries()) {
    if (openQuote !== null) {
      if (line.includes(openQuote.quote)) openQuote = null
      continue
    }
    const trimmed = line.trim()
    if (trimmed === '' || trimmed.startsWith('#')) continue
    const match = ENV_ASSIGNMENT.exec(trimmed)
    if (match === null) throw new ConfigError(`${file} line ${index + 1}: expected NAME=value`)
    const value = match[1]!
    const quote = value[0]
    if ((quote === '"' || quote === "'" || quote === '`') && !value.slice(1).includes(quote)) openQuote = { quote, line: index + 1 }
  }
  if (openQuote !== null) throw new ConfigError(`${file} line ${openQuote.line}: the quoted value is never closed`)
}

/**
 * Fills gaps in `env` from a .env file (default: `.env` in the working directory). The real
 * environment wins: a variable already set, even to "", keeps its value. No file is fine.
 * Returns whether a file was read.
 */
export function loadEnvFile (file = '.env', env: Env = process.env): boolean {
  let content: string
  try {
    content = readFileSync(file, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return false
    throw new ConfigError(`cannot read ${file} (${code ?? String(error)})`)
  }
  checkEnvFile(content, file)
  // util.parseEnv arrived in Node 20.12; looked up here so older versions fail only with a .env.
  const parseEnv = (util as Partial<typeof util>).parseEnv
  if (parseEnv === undefined) throw new ConfigError(`reading ${file} needs Node.js 20.12 or newer (this is ${process.version})`)
  for (const [key, value] of Object.entries(parseEnv(content))) {
    if (env[key] === undefined && value !== undefined) env[key] = value
  }
  return true
}
