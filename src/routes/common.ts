/**
 * What the routes declare for the OpenAPI document (src/plugins/openapi.ts) and the response
 * serializers: security, request body media types and every response a route can give.
 *
 *   schema: { summary, tags, body: ReleaseInput,
 *     ...publisherRoute({ 200: Release, 201: described(Release, 'Published') }, { body: true, problems: ['RELEASE_CONFLICT'] }) }
 *   schema: { summary, tags, params,
 *     ...licensedRoute('license', { 200: Spec, 304: Type.Null({ description: 'Not Modified' }) }, ['VALIDATION_FAILED', 'CHANNEL_NOT_FOUND']) }
 *
 * The route names only its own refusals; those of its kind (token or license, rate limit,
 * database, request body) are added. Each error status gets one problem document response
 * whose `code` is limited to the codes named for it. test/routes/openapi.test.ts checks every
 * route against this.
 */
import type { FastifyRequest } from 'fastify'
import { STATUS_CODES } from 'node:http'
import { Type, type TSchema } from 'typebox'
import { ChartcastError, ERROR_CATALOGUE, type ErrorCode } from '../errors.js'
import { checkStorableText } from '../domain/storable-text.js'
import { cookieValue, SESSION_COOKIE } from '../domain/session.js'
import { Problem } from '../schemas.js'

/** The request body media types the body parsers accept (src/plugins/body-parsers.ts). */
export const BODY_MEDIA_TYPES = ['application/json', 'application/yaml', 'application/x-yaml', 'text/yaml']

export const PROBLEM_MEDIA_TYPE = 'application/problem+json'

/** What a request body can be refused for, besides the route's own rules. */
export const BODY_PROBLEMS: ErrorCode[] = ['MALFORMED_BODY', 'VALIDATION_FAILED', 'FORBIDDEN_KEY', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE']

/**
 * Every publisher API route: no or bad token or session, a role too low, a session-cookie
 * change from another origin, the per-token rate limit, the database down.
 */
const PUBLISHER_API_PROBLEMS: ErrorCode[] = ['UNAUTHORIZED', 'TOKEN_REVOKED', 'FORBIDDEN', 'ORIGIN_NOT_ALLOWED', 'RATE_LIMITED', 'DATABASE_UNAVAILABLE']

/** Every spec route: the license refused (401 or 403), or the per-license rate limit. */
const LICENSE_PROBLEMS: ErrorCode[] = ['LICENSE_MISSING', 'LICENSE_INVALID', 'LICENSE_EXPIRED', 'LICENSE_NOT_YET_VALID', 'LICENSE_REVOKED', 'CHANNEL_NOT_ENTITLED', 'RATE_LIMITED']

export type ProblemStatus = typeof ERROR_CATALOGUE[ErrorCode]['status']

/** A response given as a problem document (RFC 9457), with `code` limited to `codes`. */
export function problemResponse<E extends Record<string, TSchema>> (codes: ErrorCode[], extension: E = {} as E) {
  return {
    description: `Problem document (${PROBLEM_MEDIA_TYPE}); code ${codes.join(', ')}`,
    content: { [PROBLEM_MEDIA_TYPE]: { schema: Type.Object({ ...Problem.properties, code: Type.String({ enum: codes }), ...extension }) } }
  }
}

export type ProblemResponses = Partial<Record<ProblemStatus, ReturnType<typeof problemResponse>>>

/** One problem response per status for exactly these codes (grouped by their catalogue status). */
export function problemsFor (...codes: ErrorCode[]): ProblemResponses {
  const byStatus = new Map<ProblemStatus, ErrorCode[]>()
  for (const code of new Set(codes)) {
    const status = ERROR_CATALOGUE[code].status
    byStatus.set(status, [...(byStatus.get(status) ?? []), code])
  }
  const responses: ProblemResponses = {}
  for (const [status, grouped] of [...byStatus].sort(([a], [b]) => a - b)) responses[status] = problemResponse(grouped)
  return responses
}

export interface RouteShape {
  /** The route takes a request body (JSON or YAML): adds the media types and the body refusals (400, 413, 415). */
  body?: boolean
  /** The route's own refusals beyond those of its kind, e.g. RELEASE_NOT_FOUND. */
  problems?: ErrorCode[]
}

type SecurityScheme = 'publisherToken' | 'license' | 'operatorBasic' | 'session'

/** A response schema with the text the document shows for it (a copy: schemas are shared). */
export function described<S extends TSchema> (schema: S, description: string): S {
  return { ...schema, description }
}

/** Success responses without a description of their own are described by their status text. */
function describedByStatus<R extends Record<number, TSchema>> (success: R): R {
  return Object.fromEntries(Object.entries(success).map(([status, schema]) =>
    [status, typeof (schema as { description?: unknown }).description === 'string' ? schema : described(schema, STATUS_CODES[status] ?? status)])) as R
}

function routeDocs<R extends Record<number, TSchema>> (scheme: SecurityScheme | SecurityScheme[], success: R, kindProblems: ErrorCode[], shape: RouteShape) {
  const body = shape.body === true
  return {
    security: [scheme].flat().map((name) => ({ [name]: [] })),
    ...(body && { consumes: BODY_MEDIA_TYPES }),
    response: { ...describedByStatus(success), ...problemsFor(...(body ? BODY_PROBLEMS : []), ...(shape.problems ?? []), ...kindProblems) }
  }
}

/**
 * A publisher API route (Bearer publisher token, or the dashboard's session cookie):
 * security, body media types and responses.
 */
export function publisherRoute<R extends Record<number, TSchema>> (success: R, shape: RouteShape = {}) {
  return routeDocs(['publisherToken', 'session'], success, PUBLISHER_API_PROBLEMS, shape)
}

/** A route about the dashboard session itself (the session cookie only). */
export function sessionRoute<R extends Record<number, TSchema>> (success: R, shape: RouteShape = {}) {
  return routeDocs('session', success, PUBLISHER_API_PROBLEMS, shape)
}

/**
 * A spec route (the license as Bearer, or as Basic password for the W&B operator). `anonymous`:
 * a request without credentials is served too (ANONYMOUS_CHANNEL), so no security is an option.
 */
export function licensedRoute<R extends Record<number, TSchema>> (scheme: 'license' | 'operatorBasic', success: R, problems: ErrorCode[] = [], { anonymous = false } = {}) {
  const docs = routeDocs(scheme, success, LICENSE_PROBLEMS, { problems })
  return anonymous ? { ...docs, security: [...docs.security, {}] } : docs
}

/**
 * Publisher API rate-limit key: the token's tail (its signature) identifies a token without
 * storing long keys; a session cookie's tail (its authentication tag) a session.
 */
export function tokenRateKey (request: FastifyRequest): string {
  const header = request.headers.authorization
  if (header !== undefined) return `token:${header.slice(-64)}`
  const session = cookieValue(request.headers.cookie, SESSION_COOKIE)
  return session === null ? `ip:${request.ip}` : `session:${session.slice(-64)}`
}

/** The `limit` query parameter of a paged list: its default when absent, else 1..max. */
export function pageLimit (text: string | undefined, defaultLimit: number, max: number): number {
  const limit = text === undefined ? defaultLimit : Number(text)
  if (limit < 1 || limit > max) throw new ChartcastError('VALIDATION_FAILED', `limit must be between 1 and ${max}`)
  return limit
}

/**
 * preValidation hook of every route that writes what the client sent: text the database cannot
 * store (U+0000, unpaired surrogates) in the body, query or path is a 400, before anything runs.
 * Not installed on the spec routes: they store nothing and are the hot path.
 */
export async function refuseUnstorableText (request: FastifyRequest): Promise<void> {
  checkStorableText({ body: request.body, query: request.query, params: request.params })
}
