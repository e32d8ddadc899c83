/** Response schemas shared by the routes: every error status answers a problem document. */
import type { FastifyRequest } from 'fastify'
import { ChartcastError } from '../errors.js'
import { checkStorableText } from '../domain/storable-text.js'
import { Problem } from '../schemas.js'

export const problemResponses = {
  400: Problem, 401: Problem, 403: Problem, 404: Problem, 409: Problem, 413: Problem, 415: Problem, 422: Problem, 429: Problem, 503: Problem
}

export const bearerSecurity = [{ publisherToken: [] }]

/** Publisher API rate-limit key: the token's tail (its signature) identifies a token without storing long keys. */
export function tokenRateKey (request: FastifyRequest): string {
  const header = request.headers.authorization
  return header === undefined ? `ip:${request.ip}` : `token:${header.slice(-64)}`
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
