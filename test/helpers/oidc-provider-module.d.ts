/** The little of oidc-provider (which ships no types) that test/helpers/oidc-provider.ts uses. */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http'
  interface InteractionDetails {
    prompt: { name: string, details: Record<string, unknown> }
    params: Record<string, unknown>
    session?: { accountId: string }
    grantId?: string
  }
  interface Grant {
    addOIDCScope (scope: string): void
    addOIDCClaims (claims: string[]): void
    addResourceScope (resource: string, scope: string): void
    save (): Promise<string>
  }
  export default class Provider {
    constructor (issuer: string, configuration: Record<string, unknown>)
    callback (): (req: IncomingMessage, res: ServerResponse) => void
    interactionDetails (req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>
    interactionFinished (req: IncomingMessage, res: ServerResponse, result: Record<string, unknown>, options?: { mergeWithLastSubmission?: boolean }): Promise<void>
    Grant: { new (properties: { accountId: string, clientId: string }): Grant, find (id: string): Promise<Grant | undefined> }
    on (event: string, listener: (...args: unknown[]) => void): void
  }
}
