/**
 * `GET /keys`: the keyset chain, version 1 first, that an agent follows from the root key it
 * trusts to the online keys that sign spec answers (docs/signing.md). Public: it holds public
 * keys and root signatures only. Served from a body serialised once at start-up.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { Keyset } from '../domain/keyset.js'
import { ChartcastError } from '../errors.js'
import { problemsFor } from './common.js'

const KeysetKey = Type.Object({
  kid: Type.String({ description: 'RFC 7638 JWK thumbprint of the key' }),
  publicKey: Type.Object({ kty: Type.Literal('OKP'), crv: Type.Literal('Ed25519'), x: Type.String() }, { description: 'Ed25519 public key (JWK, RFC 8037)' })
})

export const KeysetSchema = Type.Object({
  signed: Type.Object({
    version: Type.Integer({ minimum: 1 }),
    expires: Type.String({ format: 'date-time' }),
    roots: Type.Array(KeysetKey, { description: 'root keys: sign this keyset and the next' }),
    keys: Type.Array(KeysetKey, { description: 'online keys: sign Chartcast-Signature statements' })
  }),
  signatures: Type.Array(Type.Object({ kid: Type.String(), sig: Type.String({ description: 'base64url Ed25519 signature over the RFC 8785 canonical JSON of `signed`' }) }))
})

export const KeysetChainSchema = Type.Object({
  keysets: Type.Array(KeysetSchema, { description: 'every keyset, version 1 first; each is signed by a root of the one before and by its own root' })
}, { description: 'The keyset chain' })

const keysRoutes: FastifyPluginAsyncTypebox<{ chain: Keyset[] | null }> = async (fastify, opts) => {
  const body = opts.chain === null ? null : JSON.stringify({ keysets: opts.chain })
  fastify.get('/keys', {
    schema: {
      summary: 'The keyset chain that verifies Chartcast-Signature (no authentication)',
      description: 'Follow it from the root key you trust: keyset N+1 must be signed by a root of keyset N and by one of its own; the newest must not be expired. 404 when this server does not sign spec answers.',
      tags: ['signing'],
      response: { 200: KeysetChainSchema, ...problemsFor('NOT_FOUND') }
    }
  }, (_request, reply) => {
    if (body === null) throw new ChartcastError('NOT_FOUND', 'this server does not sign spec answers (SPEC_SIGNING_KEYS and SPEC_KEYSET are not set)')
    reply.header('cache-control', 'public, max-age=300').type('application/json; charset=utf-8').send(body as never)
  })
}

export default keysRoutes
