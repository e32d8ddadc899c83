/**
 * GET /events (reader): the dashboard's live stream, as server-sent events (text/event-stream).
 * What is sent is described in src/plugins/events.ts; `curl -N -H "authorization: Bearer $TOKEN"
 * localhost:8080/events` shows it too.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ChartcastError } from '../errors.js'
import { formatEvent } from '../services/event-hub.js'
import { publisherRoute } from './common.js'

/** An EventSource waits this long before reconnecting after the stream ends. */
const RETRY_MS = 3000

const eventsRoutes: FastifyPluginAsyncTypebox<{ apiRateLimit: object | false }> = async (fastify, opts) => {
  fastify.get('/events', {
    onRequest: fastify.requireRole('reader'),
    config: { rateLimit: opts.apiRateLimit },
    schema: {
      summary: 'Live changes as server-sent events: channel (a channel, its rollouts or freeze changed), fleet (a channel\'s fleet summary), resync (reload everything)',
      description: 'text/event-stream. At most 10 streams per token, counting the dashboard sessions signed in with it, and per single sign-on person across their sessions (429 RATE_LIMITED past it); a stream that falls 256 events behind is closed, and the stream ends when the token (or session) expires or is revoked, and a session stream also when the publisher token it was made from is revoked.',
      tags: ['events'],
      produces: ['text/event-stream'],
      ...publisherRoute({ 200: Type.String({ description: 'text/event-stream' }) })
    }
  }, async (request, reply) => {
    const user = request.user
    const raw = reply.raw
    // A session made from a publisher token counts under that token, and a single sign-on
    // session under its person, so signing in again gives no more streams; the stream still
    // ends when its own session does (and a token session's when the token is revoked). A
    // Bearer token is its own key.
    const session = request.dashboardSession
    const ownId = user.jti ?? user.sub
    const key = session?.tokenJti ?? (session?.via === 'oidc' ? `person:${session.sub}` : ownId)
    const result = fastify.events.subscribe(key, {
      write: (chunk) => raw.write(chunk),
      onDrain: (listener) => { raw.once('drain', listener) },
      close: () => { raw.destroy() }
    }, key === ownId ? [] : [ownId])
    if (!result.ok) {
      throw new ChartcastError('RATE_LIMITED', result.reason === 'per-key'
        ? `${session?.via === 'oidc' ? 'you already have' : 'this token already has'} the most live event streams open; close a dashboard tab`
        : 'the server has the most live event streams open', { 'retry-after': '10' })
    }
    // From here the response is written by hand: fastify's serialisation does not apply to a stream.
    reply.hijack()
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      // nginx buffers proxied responses unless told not to.
      'x-accel-buffering': 'no'
    })
    raw.write(`retry: ${RETRY_MS}\n\n`)
    raw.write(formatEvent('ready', { subject: user.sub, role: user.role }))
    // A stream never outlives the credential it was opened with.
    const expiresIn = typeof user.exp === 'number' ? user.exp * 1000 - Date.now() : null
    const expiry = expiresIn === null ? null : setTimeout(() => { result.unsubscribe(); raw.end() }, Math.max(0, Math.min(expiresIn, 2 ** 31 - 1)))
    expiry?.unref()
    raw.once('close', () => {
      if (expiry !== null) clearTimeout(expiry)
      result.unsubscribe()
    })
  })
}

export default eventsRoutes
