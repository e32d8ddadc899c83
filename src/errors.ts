/**
 * The error catalogue: every error a client can see, with one HTTP status and one title
 * per code (RFC 9457 problem details). Clients branch on `code`, never on the message.
 * No framework import, so the domain can throw these too.
 */
export const ERROR_CATALOGUE = {
  VALIDATION_FAILED: { status: 400, title: 'Request is not valid' },
  MALFORMED_BODY: { status: 400, title: 'Request body cannot be parsed' },
  MALFORMED_REQUEST: { status: 400, title: 'Request cannot be parsed' },
  FORBIDDEN_KEY: { status: 400, title: 'Values contain a forbidden key' },
  UNAUTHORIZED: { status: 401, title: 'Authentication required' },
  FORBIDDEN: { status: 403, title: 'Not allowed for this role' },
  ORIGIN_NOT_ALLOWED: { status: 403, title: 'Request does not come from this server\'s pages' },
  NO_ROLE: { status: 403, title: 'Signed in, but given no chartcast role' },
  SIGN_IN_FAILED: { status: 400, title: 'Sign-in could not be completed' },
  TOKEN_REVOKED: { status: 401, title: 'Publisher token has been revoked' },
  LICENSE_MISSING: { status: 401, title: 'License required' },
  LICENSE_INVALID: { status: 401, title: 'License is not valid' },
  LICENSE_EXPIRED: { status: 401, title: 'License has expired' },
  LICENSE_NOT_YET_VALID: { status: 401, title: 'License is not valid yet' },
  LICENSE_REVOKED: { status: 403, title: 'License has been revoked' },
  CHANNEL_NOT_ENTITLED: { status: 403, title: 'License does not cover this channel' },
  NOT_FOUND: { status: 404, title: 'No such resource' },
  CHANNEL_NOT_FOUND: { status: 404, title: 'Channel not found' },
  CHANNEL_EMPTY: { status: 404, title: 'Channel has no release' },
  RELEASE_NOT_FOUND: { status: 404, title: 'Release not found' },
  RELEASE_NOT_IN_CHANNEL: { status: 404, title: 'Release is not in this channel' },
  REVOCATION_NOT_FOUND: { status: 404, title: 'Revocation not found' },
  DEPLOYMENT_NOT_FOUND: { status: 404, title: 'Deployment not found' },
  ROLLOUT_NOT_FOUND: { status: 404, title: 'Release has no rollout in this channel' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed' },
  REQUEST_TIMEOUT: { status: 408, title: 'Request not received in time' },
  RELEASE_CONFLICT: { status: 409, title: 'Release exists with other content' },
  CHANNEL_MANAGED_BY_FILE: { status: 409, title: 'Channel is defined by a channel file' },
  REVOCATION_ALREADY_LIFTED: { status: 409, title: 'Revocation has already been lifted' },
  ROLLOUT_STATE: { status: 409, title: 'Rollout is not in a state for this action' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Request body too large' },
  BODY_TOO_COMPLEX: { status: 413, title: 'Request body has too many values' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported content type' },
  HEADERS_TOO_LARGE: { status: 431, title: 'Request headers too large' },
  VERSION_NOT_ACCEPTED: { status: 422, title: 'Version not accepted by channel' },
  CHANNEL_FROZEN: { status: 423, title: 'Channel is frozen' },
  RATE_LIMITED: { status: 429, title: 'Too many requests' },
  INTERNAL: { status: 500, title: 'Internal server error' },
  IDENTITY_PROVIDER_UNAVAILABLE: { status: 502, title: 'Identity provider unavailable' },
  DATABASE_UNAVAILABLE: { status: 503, title: 'Database unavailable' },
  NOT_READY: { status: 503, title: 'Not ready' }
} as const satisfies Record<string, { status: number, title: string }>

export type ErrorCode = keyof typeof ERROR_CATALOGUE

export class ChartcastError extends Error {
  readonly status: number
  readonly title: string

  constructor (readonly code: ErrorCode, readonly detail: string, readonly headers: Record<string, string> = {}) {
    super(detail)
    this.name = 'ChartcastError'
    this.status = ERROR_CATALOGUE[code].status
    this.title = ERROR_CATALOGUE[code].title
  }
}

export interface Problem {
  type: string
  title: string
  status: number
  detail: string
  code: ErrorCode
}

export const PROBLEM_TYPE_BASE = 'https://chartcast.dev/problems/'

export function toProblem (error: ChartcastError): Problem {
  return {
    type: PROBLEM_TYPE_BASE + error.code.toLowerCase().replaceAll('_', '-'),
    title: error.title,
    status: error.status,
    detail: error.detail,
    code: error.code
  }
}
