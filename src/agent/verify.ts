/**
 * The agent's check of a signed spec answer. An answer is usable only when every check passes;
 * the first that fails is returned by name (the agent logs it and reports `skipped`):
 *
 *   keyset-*             the keyset chain does not lead from the trust root to an unexpired keyset
 *   keyset-unavailable   the chain could not be fetched (GET /keys)
 *   signature-missing    no Chartcast-Signature
 *   signature-malformed  not a compact JWS of a statement (alg EdDSA, typ chartcast-spec+jws)
 *   unknown-kid          its kid is no online key of the trusted keyset
 *   signature-invalid    the signature does not verify with that key
 *   signature-expired    the statement's `expires` has passed
 *   body-hash            the body bytes are not the ones signed
 *   channel              signed for another channel than the one asked for
 *   version              the signed version is not the body's (or the pinned one asked for)
 *   revision-rollback    a lower revision than the highest seen for the channel
 */
import { compactVerify, decodeProtectedHeader } from 'jose'
import { followKeysetChain, publicKeyObject, type Keyset, type KeysetCheck, type TrustAnchor } from '../domain/keyset.js'
import { bodySha256, parseSpecStatement, SPEC_STATEMENT_TYP, versionInBody, type SpecStatement } from '../domain/spec-statement.js'

export type SignatureCheck = 'signature-missing' | 'signature-malformed' | 'unknown-kid' | 'signature-invalid' | 'signature-expired'
export type AnswerCheck = 'body-hash' | 'channel' | 'version' | 'revision-rollback'
export type VerifyCheck = KeysetCheck | 'keyset-unavailable' | SignatureCheck | AnswerCheck

export type VerifyFailure = { ok: false, check: VerifyCheck, detail: string }
export type StatementResult = { ok: true, statement: SpecStatement, kid: string } | VerifyFailure
export type VerifyResult = { ok: true, statement: SpecStatement, keyset: Keyset } | VerifyFailure

export interface AnswerExpectation {
  /** The channel the agent asked for. */
  channel: string
  /** The version pinned in the request, if any (the body's own version is always checked). */
  version?: string | null
  /** The highest revision seen for the channel so far; null before the first. */
  highestRevision: number | null
  nowMs: number
}

export interface SignedAnswer {
  /** The exact body bytes received (for a 304: those of the body the ETag names). */
  body: string | Uint8Array
  /** The Chartcast-Signature header value. */
  signature: string | null | undefined
}

function fail (check: VerifyCheck, detail: string): VerifyFailure {
  return { ok: false, check, detail }
}

/** The JWS against the keyset's online keys, and its expiry. */
export async function verifyStatementSignature (signature: string | null | undefined, keyset: Keyset, nowMs: number): Promise<StatementResult> {
  if (signature === null || signature === undefined || signature.trim() === '') return fail('signature-missing', 'the answer carries no Chartcast-Signature')
  let header: ReturnType<typeof decodeProtectedHeader>
  try {
    header = decodeProtectedHeader(signature.trim())
  } catch {
    return fail('signature-malformed', 'Chartcast-Signature is not a compact JWS')
  }
  if (header.alg !== 'EdDSA' || header.typ !== SPEC_STATEMENT_TYP || typeof header.kid !== 'string') {
    return fail('signature-malformed', `Chartcast-Signature must be alg EdDSA, typ ${SPEC_STATEMENT_TYP}, with a kid`)
  }
  const kid = header.kid
  const key = keyset.signed.keys.find((k) => k.kid === kid)
  if (key === undefined) return fail('unknown-kid', `kid ${kid} is no online key of keyset ${keyset.signed.version}`)
  let payload: Uint8Array
  try {
    ({ payload } = await compactVerify(signature.trim(), publicKeyObject(key.publicKey), { algorithms: ['EdDSA'] }))
  } catch {
    return fail('signature-invalid', `the signature does not verify with key ${kid}`)
  }
  let decoded: unknown
  try {
    decoded = JSON.parse(Buffer.from(payload).toString('utf8'))
  } catch {
    decoded = null
  }
  const statement = parseSpecStatement(decoded)
  if (statement === null) return fail('signature-malformed', 'the signed payload is not a spec statement')
  if (statement.expires * 1000 <= nowMs) return fail('signature-expired', `the signature expired at ${new Date(statement.expires * 1000).toISOString()}`)
  return { ok: true, statement, kid }
}

/** A signed answer against a keyset already trusted. */
export async function verifySpecAnswer (answer: SignedAnswer, keyset: Keyset, expect: AnswerExpectation): Promise<VerifyResult> {
  const signed = await verifyStatementSignature(answer.signature, keyset, expect.nowMs)
  if (!signed.ok) return signed
  const { statement } = signed
  if (bodySha256(answer.body) !== statement.sha256) return fail('body-hash', 'the body is not the one signed (SHA-256 differs)')
  if (statement.channel !== expect.channel) return fail('channel', `signed for channel "${statement.channel}", asked for "${expect.channel}"`)
  const bodyVersion = versionInBody(answer.body)
  if (bodyVersion !== statement.version) return fail('version', `signed for version ${statement.version}, the body says ${bodyVersion ?? 'none'}`)
  if (expect.version !== undefined && expect.version !== null && expect.version !== statement.version) return fail('version', `signed for version ${statement.version}, asked for ${expect.version}`)
  if (expect.highestRevision !== null && statement.revision < expect.highestRevision) {
    return fail('revision-rollback', `revision ${statement.revision} is lower than ${expect.highestRevision}, the highest seen for channel "${expect.channel}"`)
  }
  return { ok: true, statement, keyset }
}

export interface AnswerWithChain extends SignedAnswer, AnswerExpectation {
  /** The keyset chain (from GET /keys or a bundle). */
  chain: Keyset[]
  trust: TrustAnchor
}

/** Everything at once: follow the chain from the trust root, then check the answer. */
export async function verifyAnswer (input: AnswerWithChain): Promise<VerifyResult> {
  const followed = followKeysetChain(input.chain, input.trust, input.nowMs)
  if (!followed.ok) return followed
  return await verifySpecAnswer(input, followed.keyset, input)
}
