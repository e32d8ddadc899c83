/** Vendor-side license tooling: key pairs and signed licenses (used by the CLI and the tests). */
import { randomUUID, createPrivateKey, type KeyObject } from 'node:crypto'
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

export async function issueLicense (privatePem: string, request: LicenseRequest, nowSeconds = Math.floor(Date.now() / 1000)): Promise<string> {
  const key = createPrivateKey(privatePem)
  const alg = algorithmOfPrivateKey(key)
  const jwt = new SignJWT({ ...request.extra, channels: request.channels, ...(request.channel !== undefined && { channel: request.channel }) })
    .setProtectedHeader({ alg, typ: 'JWT', ...(request.kid !== undefined && { kid: request.kid }) })
    .setSubject(request.sub)
    .setIssuedAt(nowSeconds)
    .setExpirationTime(nowSeconds + request.expiresIn)
    .setJti(request.jti ?? randomUUID())
  if (request.iss !== undefined) jwt.setIssuer(request.iss)
  if (request.aud !== undefined) jwt.setAudience(request.aud)
  if (request.notBefore !== undefined) jwt.setNotBefore(nowSeconds + request.notBefore)
  return await jwt.sign(key)
}
