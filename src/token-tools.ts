/** Minting publisher tokens (used by `chartcast token create`, the development start-up and the tests). */
import { randomUUID } from 'node:crypto'
import { SignJWT } from 'jose'
import type { Role } from './domain/publisher-token.js'

export interface PublisherTokenRequest {
  sub: string
  role: Role
  /** Seconds from now until expiry; the server refuses more than PUBLISHER_TOKEN_MAX_LIFETIME. */
  expiresIn: number
  /** Token id to revoke it by; random when omitted. */
  jti?: string
}

export interface IssuedPublisherToken {
  token: string
  jti: string
  /** Seconds since the epoch. */
  exp: number
}

export async function issuePublisherToken (secret: string, request: PublisherTokenRequest, nowSeconds = Math.floor(Date.now() / 1000)): Promise<IssuedPublisherToken> {
  const jti = request.jti ?? randomUUID()
  const exp = nowSeconds + request.expiresIn
  const token = await new SignJWT({ role: request.role }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(request.sub).setIssuedAt(nowSeconds).setExpirationTime(exp).setJti(jti)
    .sign(new TextEncoder().encode(secret))
  return { token, jti, exp }
}
