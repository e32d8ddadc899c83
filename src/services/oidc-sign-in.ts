/**
 * OpenID Connect sign-in (authorization code flow with PKCE, OIDC Core 3.1 and RFC 7636) with
 * openid-client: builds the authorization request and, on the callback, exchanges the code
 * and validates the ID token (signature, iss, aud, exp, nonce) and the state. The provider's
 * metadata is discovered on first use, not at start-up, so the server starts (and serves
 * licenses) while the provider is down; a failed discovery is tried again on the next sign-in.
 */
import * as client from 'openid-client'
import type { OidcConfig } from '../config.js'
import { ChartcastError } from '../errors.js'
import type { OidcTransaction } from './session-sealer.js'

/** What the callback learnt about the person, from the validated ID token. */
export interface OidcIdentity {
  claims: Record<string, unknown> & { sub: string, exp: number }
}

export type SignInFailure = { kind: 'refused' | 'unavailable', message: string }

/**
 * What went wrong, from the provider's OAuth error (RFC 6749 5.2) or openid-client's check
 * and its cause (which names the claim or parameter that differed). Never a token.
 */
function describe (error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  const oauthError = (error as { error?: unknown, error_description?: unknown })
  if (typeof oauthError.error === 'string') return `${oauthError.error}${typeof oauthError.error_description === 'string' ? `: ${oauthError.error_description}` : ''}`
  return error.cause instanceof Error && error.cause.message !== error.message ? `${error.message}: ${error.cause.message}` : error.message
}

/** openid-client's errors: the provider unreachable or answering nonsense, or the response refused. */
function classify (error: unknown): SignInFailure {
  const message = describe(error)
  if (error instanceof TypeError) return { kind: 'unavailable', message }
  const code = (error as { code?: unknown }).code
  if (code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' || code === 'OAUTH_RESPONSE_IS_NOT_JSON') return { kind: 'unavailable', message }
  return { kind: 'refused', message }
}

export class OidcSignIn {
  private configuration: Promise<client.Configuration> | null = null

  /** `allowHttp`: an http:// issuer (development only; config.ts refuses it in production). */
  constructor (private readonly oidc: OidcConfig, private readonly allowHttp: boolean) {}

  private async discover (): Promise<client.Configuration> {
    this.configuration ??= client.discovery(
      new URL(this.oidc.issuer),
      this.oidc.clientId,
      undefined,
      client.ClientSecretBasic(this.oidc.clientSecret),
      this.allowHttp && this.oidc.issuer.startsWith('http:') ? { execute: [client.allowInsecureRequests] } : undefined
    ).catch((error: unknown) => {
      this.configuration = null
      const failure = classify(error)
      throw new ChartcastError('IDENTITY_PROVIDER_UNAVAILABLE', `the identity provider's metadata could not be read (${failure.message})`)
    })
    return await this.configuration
  }

  /** A new login: the secrets the callback checks, and the provider URL to send the browser to. */
  async start (returnTo: string): Promise<{ transaction: OidcTransaction, url: URL }> {
    const config = await this.discover()
    const transaction: OidcTransaction = {
      state: client.randomState(),
      nonce: client.randomNonce(),
      codeVerifier: client.randomPKCECodeVerifier(),
      returnTo
    }
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: this.oidc.redirectUri,
      response_type: 'code',
      scope: this.oidc.scopes,
      state: transaction.state,
      nonce: transaction.nonce,
      code_challenge: await client.calculatePKCECodeChallenge(transaction.codeVerifier),
      code_challenge_method: 'S256'
    })
    return { transaction, url }
  }

  /**
   * The callback: `callbackUrl` is the URL the provider redirected to (PUBLIC_URL plus the
   * path and query received). Returns the validated ID token's claims or a failure.
   */
  async finish (callbackUrl: URL, transaction: OidcTransaction): Promise<{ ok: true, identity: OidcIdentity } | { ok: false, failure: SignInFailure }> {
    const config = await this.discover()
    try {
      const tokens = await client.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: transaction.codeVerifier,
        expectedState: transaction.state,
        expectedNonce: transaction.nonce,
        idTokenExpected: true
      })
      const claims = tokens.claims()
      if (claims === undefined) return { ok: false, failure: { kind: 'refused', message: 'the provider sent no ID token' } }
      return { ok: true, identity: { claims: claims as OidcIdentity['claims'] } }
    } catch (error) {
      return { ok: false, failure: classify(error) }
    }
  }
}
