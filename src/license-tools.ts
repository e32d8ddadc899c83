/** Vendor-side license tooling: key pairs and signed licenses (used by the CLI and the tests). */
import { randomUUID, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { exportPKCS8, exportSPKI, generateKeyPair, SignJWT } from 'jose'
import type { LicenseAlgorithm } from './services/license-verifier.js'

export interface LicenseKeyPair {
  alg: LicenseAlgorithm
  privatePem: string
  publicPem: string
}

export async function generateLicenseKeyPair (alg: LicenseAlgorithm = 'ES256'): Promise<LicenseKeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' && { crv: 'Ed25519' }), ...(alg === 'RS256' && { modulusLength: 3072 }) })
  return { alg, privatePem: await exportPKCS8(privateKey), publicPem: await exportSPKI(publicKey) }
}

export interface LicenseRequest {
  sub: string
  channels: string[]
  /** Seconds from now until expiry. */
  expiresIn: number
  channel?: string
  jti?: string
  iss?: string
  aud?: string
  kid?: string
  /** Seconds from now until the license becomes valid. */
  notBefore?: number
  /** Extra claims, e.g. the customer's name. */
  extra?: Record<string, unknown>
}

export function algorithmOfPrivateKey (key: KeyObject): LicenseAlgorithm {
  if (key.asymmetricKeyType === 'ec') return 'ES256'
  if (key.asymmetricKeyType === 'rsa') return 'RS256'
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA'
  throw new Error(`unsupported private key type "${key.asymmetricKeyType}" (use EC P-256, RSA or Ed25519)`)
}

/** The signing key, with a plain message for the usual mistakes instead of OpenSSL's decoder error. */
export function readLicensePrivateKey (pem: string): KeyObject {
  try {
    return createPrivateKey(pem)
  } catch {
    let isPublicKey = false
    try {
      createPublicKey(pem)
      isPublicKey = true
    } catch {
      // Neither a private nor a public key: said below.
    }
    throw new Error(isPublicKey ? 'this is a public key; sign with the private key' : 'this is not a PEM private key (EC P-256, RSA or Ed25519)')
  }
}

export interface IssuedLicense {
  token: string
  /** The license id a revocation names. */
  jti: string
  /** Seconds since the epoch. */
  exp: number
}

export async function issueLicenseWithId (privatePem: string, request: LicenseRequest, nowSeconds = Math.floor(Date.now() / 1000)): Promise<IssuedLicense> {
  const key = readLicensePrivateKey(privatePem)
  const alg = algorithmOfPrivateKey(key)
  const jti = request.jti ?? randomUUID()
  const exp = nowSeconds + request.expiresIn
  const jwt = new SignJWT({ ...request.extra, channels: request.channels, ...(request.channel !== undefined && { channel: request.channel }) })
    .setProtectedHeader({ alg, typ: 'JWT', ...(request.kid !== undefined && { kid: request.kid }) })
    .setSubject(request.sub)
    .setIssuedAt(nowSeconds)
    .setExpirationTime(exp)
    .setJti(jti)
  if (request.iss !== undefined) jwt.setIssuer(request.iss)
  if (request.aud !== undefined) jwt.setAudience(request.aud)
  if (request.notBefore !== undefined) jwt.setNotBefore(nowSeconds + request.notBefore)
  return { token: await jwt.sign(key), jti, exp }
}

export async function issueLicense (privatePem: string, request: LicenseRequest, nowSeconds = Math.floor(Date.now() / 1000)): Promise<string> {
  return (await issueLicenseWithId(privatePem, request, nowSeconds)).token
}
