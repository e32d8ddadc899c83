/**
 * License verification: signature against the vendor's public keys, with the algorithm
 * pinned by the key (so an HS256 token "signed" with a public key as the secret, or an
 * `alg: none` token, never verifies). Verified claims are cached per token; time, revocation
 * and entitlement are still decided on every request by the domain.
 */
import { readFileSync } from 'node:fs'
import { createHash, createPublicKey, type KeyObject } from 'node:crypto'
import { compactVerify, decodeProtectedHeader, importJWK, type JWK } from 'jose'
import { ChartcastError } from '../errors.js'
import { parseLicenseClaims, type LicenseClaims } from '../domain/license.js'

export type LicenseAlgorithm = 'ES256' | 'RS256' | 'EdDSA'
const ALLOWED_ALGORITHMS: ReadonlySet<string> = new Set(['ES256', 'RS256', 'EdDSA'])

export interface LicenseKey {
  kid: string | null
  alg: LicenseAlgorithm
  key: KeyObject | Awaited<ReturnType<typeof importJWK>>
  source: string
}

/** Tokens larger than this are refused before any parsing (a license is a few hundred bytes). */
export const MAX_TOKEN_BYTES = 8 * 1024
const MAX_CACHED_TOKENS = 100_000

function algorithmOf (key: KeyObject, source: string): LicenseAlgorithm {
  switch (key.asymmetricKeyType) {
    case 'ec':
      if (key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new Error(`${source}: EC keys must use the P-256 curve (ES256)`)
      return 'ES256'
    case 'rsa':
      if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) throw new Error(`${source}: RSA keys must be at least 2048 bits`)
      return 'RS256'
    case 'ed25519':
      return 'EdDSA'
    default:
      throw new Error(`${source}: unsupported key type "${key.asymmetricKeyType}" (use EC P-256, RSA or Ed25519)`)
  }
}

/** Reads PEM public keys and JWKS files; throws a message naming the file on anything unusable. */
export async function loadLicenseKeys (paths: string[]): Promise<LicenseKey[]> {
  const keys: LicenseKey[] = []
  for (const file of paths) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      throw new Error(`license key file ${file} cannot be read`)
    }
    if (text.trimStart().startsWith('{')) {
      let jwks: { keys?: JWK[] }
      try {
        jwks = JSON.parse(text) as { keys?: JWK[] }
      } catch {
        throw new Error(`${file}: not valid JSON (expected a JWKS document)`)
      }
      if (!Array.isArray(jwks.keys) || jwks.keys.length === 0) throw new Error(`${file}: a JWKS file needs a non-empty "keys" array`)
      for (const [i, jwk] of jwks.keys.entries()) {
        if ('d' in jwk) throw new Error(`${file}: key ${i} contains private material; give the server public keys only`)
        if (jwk.use !== undefined && jwk.use !== 'sig') continue
        const node = createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' })
        const alg = algorithmOf(node, `${file} key ${i}`)
        if (jwk.alg !== undefined && jwk.alg !== alg) throw new Error(`${file}: key ${i} declares alg ${jwk.alg} but is a ${alg} key`)
        keys.push({ kid: jwk.kid ?? null, alg, key: await importJWK({ ...jwk, alg }, alg), source: file })
      }
    } else {
      // createPublicKey would quietly derive a public key from a private PEM; refuse it as the JWKS branch does.
      if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) throw new Error(`${file}: contains a private key; give the server public keys only`)
      let node: KeyObject
      try {
        node = createPublicKey(text)
      } catch {
        throw new Error(`${file}: not a PEM public key or JWKS file`)
      }
      if (node.type !== 'public') throw new Error(`${file}: not a public key`)
      keys.push({ kid: null, alg: algorithmOf(node, file), key: node, source: file })
    }
  }
  return keys
}

interface VerifiedEntry { token: string, claims: LicenseClaims }

/**
 * Refusals are remembered apart from verified licenses, keyed by the token's SHA-256 rather
 * than its text: made-up tokens are free, so they must neither evict a verified license (which
 * would cost it a verification and reset its rate window) nor hold their own text in memory.
 * Every message of a cached refusal has a bounded length, so the table stays near this bound
 * times ~550 bytes (about 5 MB when full).
 */
export const MAX_CACHED_REFUSALS = 10_000

/**
 * The cache key of a token: its signature segment. Hashing a ~90-character key instead of the
 * whole ~500-character token was a measurable share of the hot path; the entry keeps the full
 * token, and only an exact match is a hit.
 */
function cacheKey (token: string): string {
  return token.slice(token.lastIndexOf('.') + 1)
}

/** Null for an oversized token: refused by its length alone, so not worth hashing. */
function refusalKeyOf (token: string): string | null {
  return token.length > MAX_TOKEN_BYTES ? null : createHash('sha256').update(token).digest('base64url')
}

const BASE64URL_SEGMENTS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

/**
 * RFC 7515 3.1 and 2 (base64url without padding). jose also accepts `=` padding, whitespace
 * and nonzero spare bits in a segment's last character, so one signature has many spellings.
 * The cache and the rate window are keyed by the token's text, so only the one canonical
 * spelling is accepted: a license is one cache entry and one rate window.
 */
function isCanonicalCompactJws (token: string): boolean {
  if (!BASE64URL_SEGMENTS.test(token)) return false
  for (const segment of token.split('.')) {
    if (Buffer.from(segment, 'base64url').toString('base64url') !== segment) return false
  }
  return true
}

export class LicenseVerifier {
  private readonly verified = new Map<string, VerifiedEntry>()
  private readonly refusals = new Map<string, ChartcastError>()

  constructor (private readonly keys: LicenseKey[]) {}

  get cachedTokens (): number {
    return this.verified.size
  }

  get cachedRefusals (): number {
    return this.refusals.size
  }

  /**
   * The cached outcome for a token, synchronously: its claims, or the cached refusal thrown;
   * undefined when the token has not been verified yet (then call verify).
   */
  cached (token: string): LicenseClaims | undefined {
    const claims = this.cachedClaims(token)
    if (claims !== undefined) return claims
    const refusal = this.refusals.size === 0 ? undefined : this.cachedRefusal(refusalKeyOf(token))
    if (refusal !== undefined) throw refusal
    return undefined
  }

  /**
   * The claims of a token already verified, else undefined; unlike `cached`, a refused or unknown
   * token is not looked up further (the caller then parses its header strictly and asks again).
   */
  verifiedClaims (token: string): LicenseClaims | undefined {
    return this.cachedClaims(token)
  }

  /** Signature and shape. Permanent failures are cached too, so a bad token costs one verification. */
  async verify (token: string): Promise<LicenseClaims> {
    const claims = this.cachedClaims(token)
    if (claims !== undefined) return claims
    const key = refusalKeyOf(token)
    const refusal = this.cachedRefusal(key)
    if (refusal !== undefined) throw refusal
    try {
      const verifiedClaims = await this.verifyUncached(token)
      this.rememberVerified({ token, claims: verifiedClaims })
      return verifiedClaims
    } catch (error) {
      if (error instanceof ChartcastError && key !== null) this.rememberRefusal(key, error)
      throw error
    }
  }

  private cachedClaims (token: string): LicenseClaims | undefined {
    const entry = this.verified.get(cacheKey(token))
    return entry !== undefined && entry.token === token ? entry.claims : undefined
  }

  private cachedRefusal (key: string | null): ChartcastError | undefined {
    return key === null ? undefined : this.refusals.get(key)
  }

  private rememberVerified (entry: VerifiedEntry): void {
    const key = cacheKey(entry.token)
    // Two verified tokens cannot share a signature segment unless the signer reused one: keep the first.
    if (this.verified.has(key)) return
    if (this.verified.size >= MAX_CACHED_TOKENS) {
      // Oldest first: Map iteration follows insertion order.
      const oldest = this.verified.keys().next().value
      if (oldest !== undefined) this.verified.delete(oldest)
    }
    this.verified.set(key, entry)
  }

  private rememberRefusal (key: string, error: ChartcastError): void {
    if (this.refusals.has(key)) return
    if (this.refusals.size >= MAX_CACHED_REFUSALS) {
      const oldest = this.refusals.keys().next().value
      if (oldest !== undefined) this.refusals.delete(oldest)
    }
    this.refusals.set(key, error)
  }

  private async verifyUncached (token: string): Promise<LicenseClaims> {
    if (token.length > MAX_TOKEN_BYTES) throw new ChartcastError('LICENSE_INVALID', `license token is larger than ${MAX_TOKEN_BYTES} bytes`)
    let header: ReturnType<typeof decodeProtectedHeader>
    try {
      header = decodeProtectedHeader(token)
    } catch {
      throw new ChartcastError('LICENSE_INVALID', 'license is not a well-formed JWT')
    }
    if (token.split('.').length !== 3) throw new ChartcastError('LICENSE_INVALID', 'license is not a well-formed JWT')
    if (typeof header.alg !== 'string' || !ALLOWED_ALGORITHMS.has(header.alg)) {
      // Truncated: the refusal is cached, and the header's text is the sender's.
      const named = String(header.alg)
      throw new ChartcastError('LICENSE_INVALID', `license algorithm "${named.length > 16 ? named.slice(0, 16) + '...' : named}" is not accepted (ES256, RS256 or EdDSA)`)
    }
    if (!isCanonicalCompactJws(token)) throw new ChartcastError('LICENSE_INVALID', 'license is not a compact JWT of three canonical base64url segments (no padding, whitespace or stray bits)')
    let candidates: LicenseKey[]
    if (header.kid !== undefined) {
      candidates = this.keys.filter((k) => k.kid === header.kid)
      if (candidates.length === 0) throw new ChartcastError('LICENSE_INVALID', 'license was signed with an unknown key id')
    } else {
      candidates = this.keys
    }
    candidates = candidates.filter((k) => k.alg === header.alg)
    if (candidates.length === 0) throw new ChartcastError('LICENSE_INVALID', `no license key accepts algorithm ${header.alg}`)
    for (const candidate of candidates) {
      let payload: Uint8Array
      try {
        ({ payload } = await compactVerify(token, candidate.key, { algorithms: [candidate.alg] }))
      } catch {
        continue
      }
      let decoded: unknown
      try {
        decoded = JSON.parse(new TextDecoder().decode(payload))
      } catch {
        throw new ChartcastError('LICENSE_INVALID', 'license payload is not JSON')
      }
      return parseLicenseClaims(decoded)
    }
    throw new ChartcastError('LICENSE_INVALID', 'license signature does not verify')
  }
}
