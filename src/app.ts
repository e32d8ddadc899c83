/**
 * chartcast as one fastify plugin: external plugins first, then ours (database, state,
 * auth, metrics, parsers, problems), then the routes. `server.ts` only boots it.
 */
import { LogController, type FastifyHttpOptions, type FastifyInstance, type FastifyReply } from 'fastify'
import { createServer, type Server, type ServerResponse } from 'node:http'
import fp from 'fastify-plugin'
import type { Duplex } from 'node:stream'
import rateLimit from '@fastify/rate-limit'
import { ConfigError, type Config } from './config.js'
import { formatDuration } from './domain/duration.js'
import type { Database } from './db/index.js'
import { ChartcastError, toProblem } from './errors.js'
import type { LicenseKey } from './services/license-verifier.js'
import { loadSpecSigning, SpecSigningConfigError, type SpecSigning } from './services/spec-signer.js'
import authPlugin from './plugins/auth.js'
import bodyParsers from './plugins/body-parsers.js'
import connectionLimitsPlugin from './plugins/connection-limits.js'
import dashboardPlugin from './plugins/dashboard.js'
import databasePlugin from './plugins/database.js'
import eventsPlugin from './plugins/events.js'
import fleetPlugin from './plugins/fleet.js'
import metricsPlugin from './plugins/metrics.js'
import openapiPlugin from './plugins/openapi.js'
import problemsPlugin, { sendProblem } from './plugins/problems.js'
import specStatePlugin from './plugins/spec-state.js'
import unmatchedRoutesPlugin from './plugins/unmatched-routes.js'
import { lazyRequestLogger } from './plugins/request-logger.js'
import auditRoutes from './routes/audit.js'
import channelsRoutes from './routes/channels.js'
import eventsRoutes from './routes/events.js'
import fleetRoutes from './routes/fleet.js'
import upgradePathRoutes from './routes/upgrade-paths.js'
import healthRoutes from './routes/health.js'
import keysRoutes from './routes/keys.js'
import licensesRoutes from './routes/licenses.js'
import releasesRoutes from './routes/releases.js'
import rolloutsRoutes from './routes/rollouts.js'
import specRoutes from './routes/spec.js'
import tokensRoutes from './routes/tokens.js'
import sessionRoutes from './routes/session.js'
import oidcRoutes from './routes/oidc.js'
import { tokenRateKey } from './routes/common.js'

export interface AppOptions {
  config: Config
  /** Public keys that verify licenses (loaded by the caller from LICENSE_PUBLIC_KEYS). */
  licenseKeys: LicenseKey[]
  /** HS256 secret for publisher tokens (AUTH_SECRET or the generated development one). */
  authSecret: string
  /** An already opened database; when absent the app opens (and closes) its own. */
  database?: Database
  /** Clock for license time checks; tests move it. */
  now?: () => number
  /** Spec signing material; when absent it is loaded from SPEC_SIGNING_KEYS and SPEC_KEYSET (null: unsigned). */
  specSigning?: SpecSigning | null
  /**
   * Not a setting: `false` makes pulls record no check-in, so the bench can show what
   * recording costs (bench/run.ts). Every server records.
   */
  recordCheckins?: boolean
  /** The dashboard's build (default dist/ui); tests build one of their own. */
  dashboardDir?: string
}

/** SPEC_SIGNING_KEYS + SPEC_KEYSET, loaded and checked once at start-up; null when not configured. */
export function specSigningOf (config: Config, now?: () => number): SpecSigning | null {
  if (config.specKeyset === null) return null
  try {
    return loadSpecSigning(config.specSigningKeys, config.specKeyset, config.specSignatureTtlMs, now)
  } catch (error) {
    if (error instanceof SpecSigningConfigError) throw new ConfigError(error.message)
    throw error
  }
}

/**
 * Errors Node's HTTP parser raises before fastify sees a request (headers over 16 kB, a
 * request that never completes, bytes that are not HTTP) answered as problem documents too,
 * not as fastify's default plain JSON.
 */
function answerClientError (error: Error & { code?: string }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  if (socket.writable) {
    const problem = error.code === 'HPE_HEADER_OVERFLOW'
      ? new ChartcastError('HEADERS_TOO_LARGE', 'request headers exceed 16 kB; a license is a few hundred bytes')
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new ChartcastError('REQUEST_TIMEOUT', 'the request was not received in time')
        : new ChartcastError('MALFORMED_REQUEST', 'the request is not valid HTTP')
    const body = JSON.stringify(toProblem(problem))
    socket.write(`HTTP/1.1 ${problem.status} ${problem.title}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/problem+json\r\nConnection: close\r\n\r\n${body}`)
  }
  socket.destroy(error)
}

/** RFC 9112 section 3.2: an HTTP/1.1 request without Host is answered 400. */
function answerMissingHost (response: ServerResponse): void {
  const body = JSON.stringify(toProblem(new ChartcastError('MALFORMED_REQUEST', 'an HTTP/1.1 request must carry a Host header (RFC 9112, section 3.2)')))
  response.writeHead(400, { 'content-type': 'application/problem+json', 'content-length': Buffer.byteLength(body), connection: 'close' })
  response.end(body)
}

/** Options that must be fixed when the fastify instance is created. */
/**
 * avvio's own message for a start-up step that ran past pluginTimeout blames a forgotten
 * `done`; the likelier cause here is a slow first database start, so say what to raise.
 */
export function explainStartupError (error: unknown, config: Pick<Config, 'startupTimeoutMs'>): unknown {
  if ((error as { code?: unknown } | null)?.code !== 'AVV_ERR_PLUGIN_EXEC_TIMEOUT') return error
  const step = /'([^']+)'/.exec((error as Error).message)?.[1] ?? 'a start-up step'
  return new Error(`start-up step "${step}" did not finish within STARTUP_TIMEOUT (${formatDuration(config.startupTimeoutMs)}); on a slow or busy machine the first start of the embedded database can take minutes: raise STARTUP_TIMEOUT`, { cause: error })
}

export function fastifyOptions (config: Config): FastifyHttpOptions<Server> {
  return {
    // A stalled request (headers or body) is cut off with 408 (answerClientError), so it cannot
    // hold a socket and its buffered body for ever. Node checks these deadlines every
    // connectionsCheckingInterval (30 s by default), so check often enough for the shortest.
    // (fastify leaves a server from serverFactory as it is, so the factory sets them all.)
    serverFactory: (handler) => {
      const server = createServer({
        requestTimeout: config.requestTimeoutMs,
        headersTimeout: config.headersTimeoutMs,
        keepAliveTimeout: config.keepAliveTimeoutMs,
        connectionsCheckingInterval: Math.min(1000, Math.ceil(config.headersTimeoutMs / 4)),
        // Node would answer a missing Host with an empty 400; this handler answers a problem.
        requireHostHeader: false
      }, (request, response) => {
        if (request.headers.host === undefined && request.httpVersion === '1.1') answerMissingHost(response)
        else handler(request, response)
      })
      return server
    },
    // Idle keep-alive connections close at once on close(); stalled ones are closed by
    // src/plugins/connection-limits.ts, requests being handled are let finish.
    forceCloseConnections: 'idle',
    // avvio gives up on a plugin (the database one: first PGlite start, migrations) after this.
    pluginTimeout: config.startupTimeoutMs,
    logger: {
      level: config.logLevel,
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'authorization', 'token', 'license'], censor: '[redacted]' }
    },
    // One line per request at info would cost more than the spec pull itself; see the onResponse log below.
    logController: new LogController({ disableRequestLogging: true }),
    // Each request's child logger (with its reqId) is made only when the request logs something.
    childLoggerFactory: lazyRequestLogger,
    bodyLimit: config.bodyLimitBytes,
    trustProxy: config.trustProxy,
    return503OnClosing: true,
    clientErrorHandler: answerClientError,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
    routerOptions: { maxParamLength: 256 },
    // The router answers a bad URL encoding or an over-long path parameter itself, bypassing the
    // error handler; without this those would be bare fastify JSON instead of problem documents.
    frameworkErrors: (error, _request, reply) => {
      const detail = error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'a path parameter is longer than 256 characters' : 'the URL is not validly percent-encoded'
      void sendProblem(reply as FastifyReply, new ChartcastError('VALIDATION_FAILED', detail))
    }
  }
}

async function chartcast (fastify: FastifyInstance, opts: AppOptions): Promise<void> {
  // The publisher API's limit per token. (The spec endpoints have their own, lighter limiter.)
  await fastify.register(rateLimit, {
    global: false,
    // The in-memory store keeps this many keys (tokens, addresses) per window; past the plugin's
    // default of 5,000 it evicts, and an evicted key's count starts again from zero.
    cache: 50_000,
    // The x-ratelimit-* headers go on 429 answers only, as on the spec endpoints.
    addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false }
  })

  await fastify.register(problemsPlugin)
  const { maxConnections, maxConnectionsPerAddress, trustProxy } = opts.config
  await fastify.register(connectionLimitsPlugin, { maxConnections, maxConnectionsPerAddress, trustProxy })
  await fastify.register(unmatchedRoutesPlugin)
  // Before any route, so it collects them all; after problems, so /docs errors are problem documents too.
  await fastify.register(openapiPlugin)
  await fastify.register(bodyParsers, { bodyLimitBytes: opts.config.bodyLimitBytes })
  await fastify.register(metricsPlugin)
  const signing = opts.specSigning !== undefined ? opts.specSigning : specSigningOf(opts.config, opts.now)
  await fastify.register(databasePlugin, { config: opts.config, ...(opts.database !== undefined && { database: opts.database }) })
  await fastify.register(specStatePlugin, {
    keys: opts.licenseKeys,
    policy: { issuer: opts.config.licenseIssuer, audience: opts.config.licenseAudience },
    resyncIntervalMs: opts.config.resyncIntervalMs,
    listenHeartbeatMs: opts.config.listenHeartbeatMs,
    signing,
    ...(opts.now !== undefined && { now: opts.now })
  })
  await fastify.register(fleetPlugin, {
    flushIntervalMs: opts.config.checkinFlushIntervalMs,
    maxPending: opts.config.checkinMaxPending,
    flushConcurrency: opts.config.checkinFlushConcurrency,
    reportRetentionSeconds: opts.config.reportRetentionSeconds,
    ...(opts.now !== undefined && { now: opts.now }),
    ...(opts.recordCheckins === false && { recordCheckins: false })
  })
  await fastify.register(eventsPlugin, { ...(opts.now !== undefined && { now: opts.now }) })
  await fastify.register(authPlugin, {
    secret: opts.authSecret,
    maxTokenLifetimeSeconds: opts.config.publisherTokenMaxLifetimeSeconds,
    sessionSecret: opts.config.sessionSecret,
    sessionMaxAgeSeconds: opts.config.sessionMaxAgeSeconds,
    publicOrigin: opts.config.publicOrigin,
    ...(opts.now !== undefined && { now: opts.now })
  })

  // One line per request, at debug. The hook is only installed when debug is on: on the spec
  // hot path even a hook that decides not to log costs measurable time (bench/README.md).
  // 5xx answers are logged by the error handler at any level.
  if ((fastify.log as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled?.('debug') === true) {
    fastify.addHook('onResponse', (request, reply, done) => {
      request.log.debug({ method: request.method, url: request.routeOptions.url ?? 'unmatched', status: reply.statusCode, ms: Math.round(reply.elapsedTime * 100) / 100 }, 'request completed')
      done()
    })
  }

  const { rateLimitSpec, rateLimitApi, rateLimitLicenseFailures, rateLimitWindowMs, anonymousChannel } = opts.config
  // The spec endpoints count per license without @fastify/rate-limit (src/services/spec-rate-limiter.ts).
  const specRateLimit = rateLimitSpec === 0 ? null : { limit: rateLimitSpec, windowMs: rateLimitWindowMs }
  const invalidLicenseLimit = rateLimitLicenseFailures === 0 ? null : { limit: rateLimitLicenseFailures, windowMs: rateLimitWindowMs }
  const apiRateLimit = rateLimitApi === 0 ? false : { max: rateLimitApi, timeWindow: rateLimitWindowMs, keyGenerator: tokenRateKey }

  await fastify.register(healthRoutes)
  const clock = opts.now !== undefined ? { now: opts.now } : {}
  await fastify.register(keysRoutes, { chain: signing?.chain ?? null })
  await fastify.register(specRoutes, { specRateLimit, invalidLicenseLimit, anonymousChannel, ...clock })
  await fastify.register(releasesRoutes, { apiRateLimit })
  await fastify.register(channelsRoutes, { apiRateLimit, ...clock })
  await fastify.register(rolloutsRoutes, { apiRateLimit, ...clock })
  await fastify.register(licensesRoutes, { apiRateLimit })
  await fastify.register(tokensRoutes, { apiRateLimit })
  await fastify.register(auditRoutes, { apiRateLimit })
  await fastify.register(fleetRoutes, { apiRateLimit, ...(opts.now !== undefined && { now: opts.now }) })
  await fastify.register(upgradePathRoutes, { apiRateLimit, ...(opts.now !== undefined && { now: opts.now }) })
  await fastify.register(sessionRoutes, { apiRateLimit, oidc: opts.config.oidc !== null })
  if (opts.config.oidc !== null) await fastify.register(oidcRoutes, { oidc: opts.config.oidc, production: opts.config.production, apiRateLimit })
  await fastify.register(eventsRoutes, { apiRateLimit })
  await fastify.register(dashboardPlugin, { ...(opts.dashboardDir !== undefined && { root: opts.dashboardDir }) })
}

/** Not encapsulated, so the server and tests see the app's decorators (jwt, store, specCache). */
export default fp(chartcast, { name: 'chartcast', fastify: '5.x' })
