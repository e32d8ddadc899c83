import type { Values } from '../domain/values.js'
import { HelmError } from './appliers/helm.js'
import { REPORT_DETAIL_MAX } from './client.js'
import { errorMessage } from './errors.js'

export const REDACTED = '[redacted]'

/*
 * Shorter strings are left alone: replacing every "eu" or "app" would shred the message, and
 * three characters hold no secret worth the name. Everything from four characters up is
 * treated as possibly secret, whatever its key, because a values file gives no reliable way
 * to tell a password from a hostname.
 */
const MIN_SECRET_LENGTH = 4

/** How much of a failure goes into the apply-failed log line. */
const LOG_REASON_MAX = 500

/**
 * Every spelling in which a value may turn up in an error text: helm and the Kubernetes API
 * quote rejected values ("Invalid value: \"...\"", Go %q escapes them much like JSON), Secret
 * templates base64-encode them, and a multi-line value (a certificate) is printed line by line.
 */
export function secretSpellings (values: Values, extra: readonly string[] = []): string[] {
  const found = new Set<string>()
  const add = (text: string): void => {
    if (text.length < MIN_SECRET_LENGTH) return
    found.add(text)
    found.add(JSON.stringify(text).slice(1, -1))
    const b64 = Buffer.from(text, 'utf8').toString('base64')
    found.add(b64)
    found.add(b64.replace(/=+$/, ''))
    for (const line of text.split(/\r?\n/)) {
      const trimmed = line.trim()
      if (trimmed.length >= MIN_SECRET_LENGTH && trimmed !== text) add(trimmed)
    }
  }
  const walk = (node: unknown): void => {
    if (typeof node === 'string') add(node)
    else if (typeof node === 'number' || typeof node === 'bigint') add(String(node))
    else if (Array.isArray(node)) node.forEach(walk)
    else if (node !== null && typeof node === 'object') Object.values(node).forEach(walk)
  }
  walk(values)
  extra.forEach(add)
  // Longest first, so a value containing another is replaced whole.
  return [...found].filter((s) => s.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length)
}

export function redact (text: string, spellings: readonly string[]): string {
  let out = text
  for (const secret of spellings) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED)
  }
  return out
}

/** A failed apply, described for the report (`detail`) and the log line (`reason`), with every value redacted. */
export interface FailureText {
  detail: string
  reason: string
}

/**
 * Helm's own words are the useful part of a failure, but helm and the API server quote
 * rendered manifests and rejected values in them; the text is redacted whole before it is
 * cut, so a cut can never leave the visible half of a secret behind.
 */
export function describeFailure (err: unknown, spellings: readonly string[]): FailureText {
  if (err instanceof HelmError) {
    const prefix = `helm ${err.status}`
    const stderr = redact(err.stderr.trim(), spellings)
    if (stderr === '') return { detail: prefix, reason: prefix }
    // Helm prints warnings first and its "Error: ..." last, so the end is what to keep.
    const lastLines = stderr.split('\n').slice(-3).join(' | ')
    return {
      detail: `${prefix}: ${keepTail(stderr, REPORT_DETAIL_MAX - prefix.length - 2)}`,
      reason: `${prefix}: ${keepTail(lastLines, LOG_REASON_MAX)}`
    }
  }
  const message = redact(errorMessage(err), spellings)
  return { detail: keepHead(message, REPORT_DETAIL_MAX), reason: keepHead(message, LOG_REASON_MAX) }
}

/** At most `max` UTF-16 units (so at most `max` characters by any count), never half a surrogate pair. */
export function keepHead (text: string, max: number): string {
  if (text.length <= max) return text
  let cut = text.slice(0, max - 1)
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1)
  return `${cut}…`
}

export function keepTail (text: string, max: number): string {
  if (text.length <= max) return text
  let cut = text.slice(text.length - (max - 1))
  if (/^[\uDC00-\uDFFF]/.test(cut)) cut = cut.slice(1)
  return `…${cut}`
}
