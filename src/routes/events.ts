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
      description: 'text/event-stream. At most 10 streams per token, counting the dashboard sessions signed in with it (429 RATE_LIMITED past it); a stream that falls 256 events behind is closed, and the stream ends when the token (or session) expires or is revoked, and a session stream also when the publisher token it was made from is revoked.',
      tags: ['events'],
      produces: ['text/event-stream'],
      ...publisherRoute({ 200: Type.String({ description: 'text/event-stream' }) })
    }
  }, async (request, reply) => {
    const user = request.user
    const raw = reply.raw
    // A session made from a publisher token counts under that token, so signing in again with
    // it gives no more streams than the token has; the stream ends when either the session or
    // the token does. Any other credential (a Bearer token, a single sign-on session) is its own key.
    const tokenJti = request.dashboardSession?.tokenJti
    const ownId = user.jti ?? user.sub
    const result = fastify.events.subscribe(tokenJti ?? ownId, {
      write: (chunk) => raw.write(chunk),
      onDrain: (listener) => { raw.once('drain', listener) },
      close: () => { raw.destroy() }
    }, tokenJti === undefined ? [] : [ownId])
    if (!result.ok) {
      throw new ChartcastError('RATE_LIMITED', result.reason === 'per-key'
        ? 'this token already has the most live event streams open; close a dashboard tab'
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
