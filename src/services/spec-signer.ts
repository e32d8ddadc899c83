/**
 * Signs spec statements with an online Ed25519 key: a compact JWS (RFC 7515 7.1), alg EdDSA
 * (RFC 8037), `kid` the key's RFC 7638 thumbprint as listed in the keyset, `typ`
 * chartcast-spec+jws. The server signs when a spec is compiled and again by a timer, never per
 * request; the bundle exporter signs with its own TTL.
 */
import { readFileSync } from 'node:fs'
import type { KeyObject } from 'node:crypto'
import { CompactSign } from 'jose'
import { keysetKeyOf, parseKeysetChain, readEd25519PrivateKey, type Keyset } from '../domain/keyset.js'
import { specStatement, SPEC_STATEMENT_TYP, type SpecStatement, type StatementSubject } from '../domain/spec-statement.js'

/** SPEC_SIGNATURE_TTL when unset: 7 days. */
export const DEFAULT_SIGNATURE_TTL_MS = 7 * 86_400_000

export interface OnlineSigningKey {
  kid: string
  privateKey: KeyObject
}

export interface SignedStatement {
  /** The compact JWS: the `Chartcast-Signature` value. */
  jws: string
  statement: SpecStatement
  /** `statement.expires` in milliseconds. */
  expiresAtMs: number
}

export function onlineKeyFromPem (pem: string): OnlineSigningKey {
  const privateKey = readEd25519PrivateKey(pem)
  return { kid: keysetKeyOf(privateKey).kid, privateKey }
}

export async function signStatement (statement: SpecStatement, key: OnlineSigningKey): Promise<string> {
  return await new CompactSign(Buffer.from(JSON.stringify(statement), 'utf8'))
    .setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: SPEC_STATEMENT_TYP })
    .sign(key.privateKey)
}

export class SpecSigner {
  constructor (
    readonly key: OnlineSigningKey,
    readonly ttlMs: number = DEFAULT_SIGNATURE_TTL_MS,
    private readonly now: () => number = Date.now
  ) {}

  get kid (): string {
    return this.key.kid
  }

  /** Signs the statement about `body`, expiring `ttlMs` from now (whole seconds, rounded down). */
  async sign (body: string | Uint8Array, subject: StatementSubject, ttlMs: number = this.ttlMs): Promise<SignedStatement> {
    const expires = Math.floor((this.now() + ttlMs) / 1000)
    const statement = specStatement(body, subject, expires)
    return { jws: await signStatement(statement, this.key), statement, expiresAtMs: expires * 1000 }
  }
}

export interface SpecSigning {
  signer: SpecSigner
  /** The whole chain, version 1 first: what `GET /keys` serves. */
  chain: Keyset[]
}

export class SpecSigningConfigError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'SpecSigningConfigError'
  }
}

/**
 * The server's signing material from SPEC_SIGNING_KEYS (PEM files; the first signs) and
 * SPEC_KEYSET (the chain file). Every key must be an online key of the newest keyset: an answer
 * signed by any other key would not verify anywhere.
 */
export function loadSpecSigning (signingKeyFiles: string[], keysetFile: string, ttlMs: number = DEFAULT_SIGNATURE_TTL_MS, now: () => number = Date.now): SpecSigning {
  if (signingKeyFiles.length === 0) throw new SpecSigningConfigError('SPEC_SIGNING_KEYS names no key file')
  let chain: Keyset[]
  try {
    chain = parseKeysetChain(JSON.parse(readFileSync(keysetFile, 'utf8')))
  } catch (error) {
    throw new SpecSigningConfigError(`SPEC_KEYSET (${keysetFile}) is not a keyset chain: ${(error as Error).message}`)
  }
  chain = [...chain].sort((a, b) => a.signed.version - b.signed.version)
  const newest = chain[chain.length - 1]!
  const keys = signingKeyFiles.map((file) => {
    let key: OnlineSigningKey
    try {
      key = onlineKeyFromPem(readFileSync(file, 'utf8'))
    } catch (error) {
      throw new SpecSigningConfigError(`SPEC_SIGNING_KEYS: ${file}: ${(error as Error).message}`)
    }
    if (!newest.signed.keys.some((k) => k.kid === key.kid)) throw new SpecSigningConfigError(`SPEC_SIGNING_KEYS: ${file} (kid ${key.kid}) is not an online key of keyset ${newest.signed.version} in SPEC_KEYSET`)
    return key
  })
  if (Date.parse(newest.signed.expires) <= now()) throw new SpecSigningConfigError(`SPEC_KEYSET: keyset ${newest.signed.version} expired at ${newest.signed.expires}; rotate (chartcast keys rotate) to extend it`)
  return { signer: new SpecSigner(keys[0]!, ttlMs, now), chain }
}
