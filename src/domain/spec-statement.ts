/**
 * The statement a `Chartcast-Signature` signs. The signature covers this small JSON object, not
 * the body: the body is named by its SHA-256, so one signature serves a 200 and a 304 (whose
 * ETag names the same body), and the W&B body stays byte-identical to what it always was.
 */
import { createHash } from 'node:crypto'

/** The JWS `typ` of a signed statement (RFC 7515 4.1.9): no other JWS can be passed off as one. */
export const SPEC_STATEMENT_TYP = 'chartcast-spec+jws'

/** The HTTP header that carries the compact JWS. */
export const SIGNATURE_HEADER = 'chartcast-signature'

export interface SpecStatement {
  /** SHA-256 of the exact body bytes, lowercase hex. */
  sha256: string
  channel: string
  version: string
  /** The channel's revision the answer was served from (never goes down for a channel). */
  revision: number
  /** NumericDate (seconds since the epoch, RFC 7519 2) after which the statement is refused. */
  expires: number
}

export type StatementSubject = Omit<SpecStatement, 'sha256' | 'expires'>

export function bodySha256 (body: string | Uint8Array): string {
  return createHash('sha256').update(body).digest('hex')
}

export function specStatement (body: string | Uint8Array, subject: StatementSubject, expires: number): SpecStatement {
  return { sha256: bodySha256(body), channel: subject.channel, version: subject.version, revision: subject.revision, expires }
}

/** A decoded JWS payload checked for the statement's shape; null when it is not one. */
export function parseSpecStatement (value: unknown): SpecStatement | null {
  const s = value as Partial<Record<keyof SpecStatement, unknown>> | null
  if (typeof s !== 'object' || s === null) return null
  if (typeof s.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(s.sha256)) return null
  if (typeof s.channel !== 'string' || typeof s.version !== 'string') return null
  if (typeof s.revision !== 'number' || !Number.isSafeInteger(s.revision) || s.revision < 0) return null
  if (typeof s.expires !== 'number' || !Number.isFinite(s.expires)) return null
  return { sha256: s.sha256, channel: s.channel, version: s.version, revision: s.revision, expires: s.expires }
}

/**
 * The version a spec body says it carries: `version` of a chartcast spec, `metadata.version` of
 * a W&B operator body. Null when the body is not JSON or names none.
 */
export function versionInBody (body: string | Uint8Array): string | null {
  let parsed: unknown
  try {
    parsed = JSON.parse(typeof body === 'string' ? body : Buffer.from(body).toString('utf8'))
  } catch {
    return null
  }
  const spec = parsed as { version?: unknown, metadata?: { version?: unknown } } | null
  if (typeof spec !== 'object' || spec === null) return null
  if (typeof spec.version === 'string') return spec.version
  if (typeof spec.metadata === 'object' && spec.metadata !== null && typeof spec.metadata.version === 'string') return spec.metadata.version
  return null
}
