/**
 * Keysets: which online keys may sign spec statements, as vouched for by an offline root key.
 * The layout follows TUF's root metadata (theupdateframework.io/specification, 5.3 "Update the
 * root role"), with a threshold of 1:
 *
 *   { "signed": { "version": N, "expires": "<RFC 3339>", "roots": [{kid, publicKey}],
 *                 "keys": [{kid, publicKey}] },
 *     "signatures": [{ "kid", "sig" }] }
 *
 * `sig` is base64url Ed25519 over the canonical JSON (RFC 8785) of `signed`. `roots` are the root
 * keys this keyset names: they sign this keyset and may sign the next one. `keys` are the online
 * keys that sign spec statements. A `kid` is the RFC 7638 JWK thumbprint of the public key.
 *
 * A chain is followed from a trusted anchor one version at a time: keyset N+1 must be signed by a
 * root of the last trusted keyset N (so a stolen new key cannot crown itself) and by a root it
 * names itself (so a root rotation proves possession of the new root). Only the newest keyset
 * must be unexpired: an expired intermediate one may still hand trust on (TUF 5.3.10).
 *
 * Pure functions (node:crypto only, synchronous): the server, the agent, the CLI and the bundle
 * tools share them.
 */
import { createHash, createPrivateKey, createPublicKey, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto'
import canonicalize from 'canonicalize'

export interface Ed25519Jwk {
  kty: 'OKP'
  crv: 'Ed25519'
  x: string
}

export interface KeysetKey {
  kid: string
  publicKey: Ed25519Jwk
}

export interface KeysetSigned {
  version: number
  /** RFC 3339 date-time. */
  expires: string
  /** Root keys: sign this keyset and (any one of them) the next. */
  roots: KeysetKey[]
  /** Online keys: sign spec statements. */
  keys: KeysetKey[]
}

export interface KeysetSignature {
  kid: string
  sig: string
}

export interface Keyset {
  signed: KeysetSigned
  signatures: KeysetSignature[]
}

/** What `GET /keys` serves and what SPEC_KEYSET holds: every keyset from version 1, in order. */
export interface KeysetChain {
  keysets: Keyset[]
}

/** Where a chain starts to be trusted: a root key the vendor shipped (version 0), or a shipped keyset. */
export interface TrustAnchor {
  version: number
  roots: KeysetKey[]
  /** The shipped keyset itself, when the anchor is one (its online keys are then trusted too). */
  keyset: Keyset | null
}

/** The checks a keyset chain can fail, named as the agent logs them. */
export type KeysetCheck = 'keyset-malformed' | 'keyset-chain-broken' | 'keyset-not-signed-by-root' | 'keyset-expired'

export class KeysetError extends Error {
  constructor (readonly check: KeysetCheck, message: string) {
    super(message)
    this.name = 'KeysetError'
  }
}

export type ChainResult = { ok: true, keyset: Keyset } | { ok: false, check: KeysetCheck, detail: string }

/** RFC 8785 canonical JSON, as bytes: what keyset signatures cover. */
export function canonicalBytes (value: unknown): Buffer {
  const text = canonicalize(value)
  if (text === undefined) throw new KeysetError('keyset-malformed', 'value has no JSON form')
  return Buffer.from(text, 'utf8')
}

/** RFC 7638 thumbprint of an Ed25519 JWK (members crv, kty, x in lexicographic order). */
export function jwkThumbprint (jwk: Ed25519Jwk): string {
  return createHash('sha256').update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x })).digest('base64url')
}

/** The public JWK of an Ed25519 key (public or private KeyObject). */
export function publicJwkOf (key: KeyObject): Ed25519Jwk {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key
  if (publicKey.asymmetricKeyType !== 'ed25519') throw new KeysetError('keyset-malformed', `keys must be Ed25519, not ${publicKey.asymmetricKeyType ?? 'unknown'}`)
  const jwk = publicKey.export({ format: 'jwk' })
  return { kty: 'OKP', crv: 'Ed25519', x: String(jwk.x) }
}

export function keysetKeyOf (key: KeyObject): KeysetKey {
  const publicKey = publicJwkOf(key)
  return { kid: jwkThumbprint(publicKey), publicKey }
}

export function publicKeyObject (jwk: Ed25519Jwk): KeyObject {
  return createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: 'jwk' })
}

/** An Ed25519 private key from PKCS#8 PEM. */
export function readEd25519PrivateKey (pem: string): KeyObject {
  let key: KeyObject
  try {
    key = createPrivateKey(pem)
  } catch {
    throw new KeysetError('keyset-malformed', 'not a PEM private key')
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new KeysetError('keyset-malformed', `signing keys must be Ed25519, not ${key.asymmetricKeyType ?? 'unknown'}`)
  return key
}

/** Signs `signed` with each root private key (threshold 1, but a root rotation signs with two). */
export function signKeyset (signed: KeysetSigned, rootPrivateKeys: KeyObject[]): Keyset {
  const bytes = canonicalBytes(signed)
  return {
    signed,
    signatures: rootPrivateKeys.map((key) => ({ kid: keysetKeyOf(key).kid, sig: edSign(null, bytes, key).toString('base64url') }))
  }
}

const KID = /^[A-Za-z0-9_-]{1,128}$/
const B64URL = /^[A-Za-z0-9_-]*$/

function parseKey (value: unknown, where: string): KeysetKey {
  const key = value as { kid?: unknown, publicKey?: { kty?: unknown, crv?: unknown, x?: unknown } } | null
  if (typeof key !== 'object' || key === null || typeof key.kid !== 'string' || !KID.test(key.kid)) throw new KeysetError('keyset-malformed', `${where}: a key needs a kid`)
  const jwk = key.publicKey
  if (typeof jwk !== 'object' || jwk === null || jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string' || !B64URL.test(jwk.x) || Buffer.from(jwk.x, 'base64url').length !== 32) {
    throw new KeysetError('keyset-malformed', `${where}: key ${key.kid} is not an Ed25519 public JWK`)
  }
  const publicKey: Ed25519Jwk = { kty: 'OKP', crv: 'Ed25519', x: jwk.x }
  // The kid is the key's thumbprint: two keysets can never give one kid two keys.
  if (jwkThumbprint(publicKey) !== key.kid) throw new KeysetError('keyset-malformed', `${where}: kid ${key.kid} is not the thumbprint of its key`)
  return { kid: key.kid, publicKey }
}

/** Checks the shape of one keyset (not its signatures). */
export function parseKeyset (value: unknown): Keyset {
  const keyset = value as { signed?: Partial<Record<keyof KeysetSigned, unknown>>, signatures?: unknown } | null
  if (typeof keyset !== 'object' || keyset === null || typeof keyset.signed !== 'object' || keyset.signed === null) throw new KeysetError('keyset-malformed', 'a keyset is {signed, signatures}')
  const { version, expires, roots, keys } = keyset.signed
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) throw new KeysetError('keyset-malformed', 'signed.version must be a positive integer')
  const where = `keyset ${version}`
  if (typeof expires !== 'string' || Number.isNaN(Date.parse(expires))) throw new KeysetError('keyset-malformed', `${where}: signed.expires must be an RFC 3339 date-time`)
  if (!Array.isArray(roots) || roots.length === 0) throw new KeysetError('keyset-malformed', `${where}: signed.roots must list at least one root key`)
  if (!Array.isArray(keys)) throw new KeysetError('keyset-malformed', `${where}: signed.keys must be a list`)
  if (!Array.isArray(keyset.signatures)) throw new KeysetError('keyset-malformed', `${where}: signatures must be a list`)
  const signatures = keyset.signatures.map((s: unknown) => {
    const sig = s as { kid?: unknown, sig?: unknown } | null
    if (typeof sig !== 'object' || sig === null || typeof sig.kid !== 'string' || typeof sig.sig !== 'string' || !B64URL.test(sig.sig)) throw new KeysetError('keyset-malformed', `${where}: a signature is {kid, sig}`)
    return { kid: sig.kid, sig: sig.sig }
  })
  return {
    // Rebuilt from the checked members only: what is verified is exactly what is used.
    signed: { version, expires, roots: roots.map((k) => parseKey(k, where)), keys: keys.map((k) => parseKey(k, where)) },
    signatures
  }
}

/** A chain as served by `GET /keys` or stored in SPEC_KEYSET: `{keysets: [...]}`, a bare list, or one keyset. */
export function parseKeysetChain (value: unknown): Keyset[] {
  const list = Array.isArray(value)
    ? value
    : typeof value === 'object' && value !== null && Array.isArray((value as { keysets?: unknown }).keysets)
      ? (value as { keysets: unknown[] }).keysets
      : [value]
  if (list.length === 0) throw new KeysetError('keyset-malformed', 'the chain holds no keyset')
  return list.map(parseKeyset)
}

/** Whether any of `roots` made a valid signature over the keyset. */
export function signedByAny (keyset: Keyset, roots: KeysetKey[]): boolean {
  const bytes = canonicalBytes(keyset.signed)
  for (const signature of keyset.signatures) {
    const root = roots.find((r) => r.kid === signature.kid)
    if (root === undefined) continue
    try {
      if (edVerify(null, bytes, publicKeyObject(root.publicKey), Buffer.from(signature.sig, 'base64url'))) return true
    } catch {
      // A malformed signature is simply not a valid one.
    }
  }
  return false
}

/** The anchor a root public key gives: trust starts before version 1. */
export function anchorFromRoot (root: KeysetKey): TrustAnchor {
  return { version: 0, roots: [root], keyset: null }
}

/** The anchor a shipped keyset gives (it must be signed by a root it names). */
export function anchorFromKeyset (keyset: Keyset): TrustAnchor {
  if (!signedByAny(keyset, keyset.signed.roots)) throw new KeysetError('keyset-not-signed-by-root', `keyset ${keyset.signed.version} is not signed by any root it names`)
  return { version: keyset.signed.version, roots: keyset.signed.roots, keyset }
}

/**
 * A trust root file: a root public key (PEM, or an Ed25519 JWK as JSON), a keyset, or a chain
 * (its newest keyset whose own roots signed it is the anchor; following it is checked later).
 */
export function parseTrustRoot (text: string): TrustAnchor {
  const trimmed = text.trim()
  if (trimmed.startsWith('-----BEGIN')) {
    let key: KeyObject
    try {
      key = createPublicKey(trimmed)
    } catch {
      throw new KeysetError('keyset-malformed', 'the trust root is not a PEM public key')
    }
    return anchorFromRoot(keysetKeyOf(key))
  }
  let json: unknown
  try {
    json = JSON.parse(trimmed)
  } catch {
    throw new KeysetError('keyset-malformed', 'the trust root is neither a PEM public key nor JSON (a JWK or a keyset)')
  }
  const object = json as { kty?: unknown } | null
  if (typeof object === 'object' && object !== null && object.kty !== undefined) {
    const jwk = json as Ed25519Jwk
    return anchorFromRoot(parseKey({ kid: jwkThumbprint(jwk), publicKey: jwk }, 'trust root'))
  }
  const chain = parseKeysetChain(json)
  // A shipped chain is trusted from its first keyset; the rest is followed like a served chain.
  const first = anchorFromKeyset(chain[0]!)
  const followed = followKeysetChain(chain, first, Number.NEGATIVE_INFINITY)
  if (!followed.ok) throw new KeysetError(followed.check, followed.detail)
  return anchorFromKeyset(followed.keyset)
}

/**
 * Follows `chain` from `anchor` (TUF 5.3, threshold 1) and returns the newest keyset reached,
 * which must not be expired at `nowMs`. Keysets at or below the anchor's version are skipped; the
 * rest must follow one another without a gap, each signed by a root of its predecessor and by one
 * of its own roots.
 */
export function followKeysetChain (chain: Keyset[], anchor: TrustAnchor, nowMs: number): ChainResult {
  let trustedRoots = anchor.roots
  let trusted: Keyset | null = anchor.keyset
  let version = anchor.version
  const sorted = [...chain].sort((a, b) => a.signed.version - b.signed.version)
  if (anchor.keyset === null) {
    // A bare root key is trusted from the first keyset it signs: a root rotated in at keyset
    // N+1 (signed by the old root and by it) is what new customers are shipped, and keysets
    // before N+1 were never its to sign. From there on the chain is followed as from any anchor.
    const first = sorted.find((keyset) => keyset.signed.version > version && signedByAny(keyset, trustedRoots))
    if (first !== undefined) version = first.signed.version - 1
  }
  for (const keyset of sorted) {
    const next = keyset.signed.version
    if (next <= version) continue
    if (next !== version + 1) return { ok: false, check: 'keyset-chain-broken', detail: `keyset ${version + 1} is missing before keyset ${next}` }
    if (!signedByAny(keyset, trustedRoots)) {
      return { ok: false, check: 'keyset-not-signed-by-root', detail: `keyset ${next} is not signed by a root of ${version === 0 ? 'the trust root' : `keyset ${version}`}` }
    }
    if (!signedByAny(keyset, keyset.signed.roots)) return { ok: false, check: 'keyset-not-signed-by-root', detail: `keyset ${next} is not signed by a root it names` }
    trusted = keyset
    trustedRoots = keyset.signed.roots
    version = next
  }
  if (trusted === null) return { ok: false, check: 'keyset-chain-broken', detail: 'the chain holds no keyset the trust root signed' }
  if (Date.parse(trusted.signed.expires) <= nowMs) return { ok: false, check: 'keyset-expired', detail: `keyset ${trusted.signed.version} expired at ${trusted.signed.expires}` }
  return { ok: true, keyset: trusted }
}
