/**
 * The one place errors become responses: RFC 9457 problem details with a stable `code`.
 * Anything not in the catalogue is logged (without message text that could carry SQL or
 * secrets) and answered as a bare 500.
 */
import fp from 'fastify-plugin'
import type { FastifyError, FastifyReply, FastifySchema } from 'fastify'
import { ChartcastError, toProblem, type ErrorCode } from '../errors.js'
import { allowedKeysAt, describeUnknownKey, pointerSegments } from '../domain/unknown-key.js'

const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'EAI_AGAIN',
  // PostgreSQL: connection exceptions (08xxx) and operator intervention (57P0x).
  '08000', '08001', '08003', '08004', '08006', '57P01', '57P02', '57P03'
])
const CONNECTION_ERROR_TEXT = /Connection terminated|connection timeout|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Connection refused|PGlite is closed|Cannot use a pool after calling end/i

/**
 * Answers a catalogued error as a problem document. Also used where fastify answers without
 * reaching the error handler (the router's frameworkErrors).
 */
export function sendProblem (reply: FastifyReply, error: ChartcastError, headers: Record<string, string> = error.headers): FastifyReply {
  return reply.code(error.status).headers(headers).type('application/problem+json').send(JSON.stringify(toProblem(error)))
}

/** Walks the `cause` chain (drizzle wraps driver errors) looking for a lost connection. */
export function isDatabaseUnavailable (error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && CONNECTION_ERROR_CODES.has(code)) return true
    if (CONNECTION_ERROR_TEXT.test(e.message)) return true
    if (e instanceof AggregateError && e.errors.some((inner) => isDatabaseUnavailable(inner))) return true
  }
  return false
}

/**
 * What a log line may say about a failure in the background (a reload, a flush, a signature
 * renewal). drizzle's query errors carry the SQL and its parameters (client text) in their
 * message, so for a database error only its kind and SQLSTATE are said; any other error is our
 * own code's, and its message is kept.
 */
export function logSafeReason (error: unknown): string {
  if (isDatabaseUnavailable(error)) return 'the database is unreachable'
  let query = false
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return `the database refused the query (SQLSTATE ${code})`
    query ||= 'query' in e || 'params' in e
  }
  if (query) return 'a database query failed'
  return error instanceof Error ? error.message : 'an unknown failure'
}

/** Other 4xx errors raised by fastify or its plugins, by status. */
const CODE_FOR_CLIENT_STATUS: Partial<Record<number, ErrorCode>> = {
  401: 'UNAUTHORIZED', 403: 'FORBIDDEN', 404: 'NOT_FOUND', 405: 'METHOD_NOT_ALLOWED', 413: 'PAYLOAD_TOO_LARGE', 415: 'UNSUPPORTED_MEDIA_TYPE'
}

/**
 * A schema validation failure in words. ajv says "body must NOT have additional properties"
 * without naming the key; an unknown key is named, with the nearest allowed one and the list
 * (taken from the route's own schema).
 */
function describeValidationError (error: FastifyError, routeSchema: FastifySchema | undefined): string {
  const first = error.validation?.[0]
  const key = (first?.params as { additionalProperty?: unknown } | undefined)?.additionalProperty
  const context = error.validationContext
  if (first === undefined || first.keyword !== 'additionalProperties' || typeof key !== 'string' || context === undefined) return error.message
  const segments = pointerSegments(first.instancePath)
  const allowed = allowedKeysAt((routeSchema as Record<string, unknown> | undefined)?.[context], segments) ?? []
  if (context === 'querystring' && segments.length === 0) return describeUnknownKey(key, allowed, 'query parameter')
  return `${[context, ...segments].join('.')}: ${describeUnknownKey(key, allowed)}`
}

function fromFastifyError (error: FastifyError, routeSchema?: FastifySchema): ChartcastError | null {
  if (error instanceof ChartcastError) return error
  if (error.validation !== undefined) return new ChartcastError('VALIDATION_FAILED', describeValidationError(error, routeSchema))
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ChartcastError('PAYLOAD_TOO_LARGE', 'request body is larger than the configured limit (BODY_LIMIT; YAML bodies at most 256 KiB)')
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ChartcastError('UNSUPPORTED_MEDIA_TYPE', 'send application/json or application/yaml')
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ChartcastError('MALFORMED_BODY', 'request body is not valid JSON')
  }
  if (error.statusCode === 429) {
    return new ChartcastError('RATE_LIMITED', 'too many requests; retry after the time in Retry-After')
  }
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    const code = CODE_FOR_CLIENT_STATUS[error.statusCode] ?? 'MALFORMED_BODY'
    return new ChartcastError(code, error.code?.startsWith('FST_') === true ? error.message : 'the request cannot be processed')
  }
  return null
}

export default fp(async (fastify) => {
  fastify.setErrorHandler((error: FastifyError, request, reply) => {
    let problemError = fromFastifyError(error, request.routeOptions.schema)
    if (problemError === null && isDatabaseUnavailable(error)) {
      problemError = new ChartcastError('DATABASE_UNAVAILABLE', 'the database is unreachable; nothing was changed, retry later', { 'retry-after': '5' })
      request.log.warn({ err: { type: error.name, code: error.code } }, 'database unavailable')
    }
    if (problemError === null) {
      // No message or stack: driver messages can quote SQL and parameters.
      const cause = (error as { cause?: { code?: string, name?: string } }).cause
      request.log.error({ err: { type: error.name, code: error.code, causeType: cause?.name, causeCode: cause?.code } }, 'unexpected error')
      problemError = new ChartcastError('INTERNAL', 'an unexpected error occurred; it has been logged')
    }
    if (problemError.status >= 500 && problemError.code !== 'INTERNAL') request.log.warn({ code: problemError.code }, problemError.detail)
    const headers: Record<string, string> = { ...problemError.headers }
    if (problemError.status === 401 && headers['www-authenticate'] === undefined) headers['www-authenticate'] = 'Bearer realm="chartcast"'
    if (problemError.code === 'RATE_LIMITED' && reply.getHeader('retry-after') === undefined) headers['retry-after'] = '60'
    return sendProblem(reply, problemError, headers)
  })
}, { name: 'chartcast-problems' })
