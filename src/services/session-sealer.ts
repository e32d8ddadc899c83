/**
 * Seals what the browser carries (the session, and an OIDC login in progress) into encrypted,
 * authenticated JWTs (JWE, `dir` + A256GCM), so any replica that knows the key reads them and
 * no replica stores them. The browser can neither read nor change what it holds.
 *
 * The keys are derived (HKDF-SHA256, RFC 5869) from AUTH_SECRET, salted with SESSION_SECRET
 * when set: rotating either ends every session, and rotating AUTH_SECRET (which ends every
 * publisher token) therefore also ends the sessions made from those tokens. One key per use,
 * so a sealed login transaction can never be presented as a session.
 */
import { hkdfSync } from 'node:crypto'
import { EncryptJWT, jwtDecrypt, type JWTPayload } from 'jose'
import { isRole } from '../domain/publisher-token.js'
import type { SessionClaims } from '../domain/session.js'

/** An OIDC authorization request in progress (RFC 6749 10.12 state, OIDC nonce, RFC 7636 verifier). */
export interface OidcTransaction {
  state: string
  nonce: string
  codeVerifier: string
  returnTo: string
}

function deriveKey (authSecret: string, sessionSecret: string | null, use: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', authSecret, sessionSecret ?? '', `chartcast ${use} v1`, 32))
}

export class SessionSealer {
  private readonly sessionKey: Uint8Array
  private readonly transactionKey: Uint8Array

  constructor (authSecret: string, sessionSecret: string | null) {
    this.sessionKey = deriveKey(authSecret, sessionSecret, 'session cookie')
    this.transactionKey = deriveKey(authSecret, sessionSecret, 'oidc transaction cookie')
  }

  async sealSession (claims: SessionClaims): Promise<string> {
    return await new EncryptJWT({ ...claims }).setProtectedHeader({ alg: 'dir', enc: 'A256GCM' }).encrypt(this.sessionKey)
  }

  /** The session's claims, or null when the cookie is not one of ours, is altered, or has expired. */
  async openSession (sealed: string, nowSeconds: number): Promise<SessionClaims | null> {
    const payload = await this.open(sealed, this.sessionKey, nowSeconds)
    if (payload === null) return null
    const { sub, role, via, jti, exp, iat, tokenJti } = payload
    if (typeof sub !== 'string' || !isRole(role) || (via !== 'token' && via !== 'oidc') || typeof jti !== 'string' || typeof exp !== 'number' || typeof iat !== 'number') return null
    if (tokenJti !== undefined && typeof tokenJti !== 'string') return null
    return { sub, role, via, jti, exp, iat, ...(tokenJti !== undefined && { tokenJti }) }
  }

  async sealTransaction (transaction: OidcTransaction, expSeconds: number): Promise<string> {
    return await new EncryptJWT({ ...transaction }).setExpirationTime(expSeconds).setProtectedHeader({ alg: 'dir', enc: 'A256GCM' }).encrypt(this.transactionKey)
  }

  async openTransaction (sealed: string, nowSeconds: number): Promise<OidcTransaction | null> {
    const payload = await this.open(sealed, this.transactionKey, nowSeconds)
    if (payload === null) return null
    const { state, nonce, codeVerifier, returnTo } = payload
    if (typeof state !== 'string' || typeof nonce !== 'string' || typeof codeVerifier !== 'string' || typeof returnTo !== 'string') return null
    return { state, nonce, codeVerifier, returnTo }
  }

  private async open (sealed: string, key: Uint8Array, nowSeconds: number): Promise<JWTPayload | null> {
    // A cookie is a few hundred bytes; anything far larger is not one of ours and is not decrypted.
    if (sealed.length > 4096) return null
    try {
      const { payload } = await jwtDecrypt(sealed, key, {
        keyManagementAlgorithms: ['dir'],
        contentEncryptionAlgorithms: ['A256GCM'],
        currentDate: new Date(nowSeconds * 1000),
        requiredClaims: ['exp']
      })
      return payload
    } catch {
      return null
    }
  }
}
