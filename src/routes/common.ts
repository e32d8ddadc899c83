/** Response schemas shared by the routes: every error status answers a problem document. */
import { Problem } from '../schemas.js'

export const problemResponses = {
  400: Problem, 401: Problem, 403: Problem, 404: Problem, 409: Problem, 413: Problem, 415: Problem, 422: Problem, 429: Problem, 503: Problem
}

export const bearerSecurity = [{ publisherToken: [] }]
