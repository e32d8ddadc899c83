/**
 * Requests no route matches: 405 with an `Allow` header when the path exists under other
 * methods (RFC 9110 section 15.5.6), else 404. Both are answered in `onRequest`, before
 * fastify reads the body, so a large or slow body sent to a wrong path costs nothing.
 */
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { ChartcastError } from '../errors.js'
import { sendProblem } from './problems.js'

interface RoutePattern { matcher: RegExp, methods: Set<string> }

/** A fastify route path as a RegExp over a request path: `:param` is one segment, `*` the rest. */
function patternToRegExp (url: string): RegExp {
  const source = url.split('/').map((segment) => {
    if (segment === '*') return '.*'
    if (segment.startsWith(':')) return '[^/]+'
    return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\\\*$/, '.*')
  }).join('/')
  return new RegExp(`^${source}$`)
}

export default fp(async (fastify) => {
  const patterns = new Map<string, RoutePattern>()
  fastify.addHook('onRoute', (route) => {
    const url = route.path ?? route.url
    let pattern = patterns.get(url)
    if (pattern === undefined) {
      pattern = { matcher: patternToRegExp(url), methods: new Set() }
      patterns.set(url, pattern)
    }
    for (const method of [route.method].flat()) pattern.methods.add(method.toUpperCase())
  })

  function allowedMethods (path: string): string[] {
    const allowed = new Set<string>()
    for (const { matcher, methods } of patterns.values()) {
      if (matcher.test(path)) for (const method of methods) allowed.add(method)
    }
    // fastify answers HEAD for every GET route.
    if (allowed.has('GET')) allowed.add('HEAD')
    return [...allowed].sort()
  }

  function answerUnmatched (request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const length = request.headers['content-length']
    if (request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) reply.header('connection', 'close')
    const path = request.url.split('?')[0] ?? '/'
    const allowed = allowedMethods(path)
    if (allowed.length > 0 && !allowed.includes(request.method)) {
      const list = allowed.join(', ')
      return sendProblem(reply, new ChartcastError('METHOD_NOT_ALLOWED', `${request.method} is not allowed on ${path}; use ${list}`, { allow: list }))
    }
    return sendProblem(reply, new ChartcastError('NOT_FOUND', `no route for ${request.method} ${path}`))
  }

  // fastify gives the 404 context every lifecycle hook passed here (lib/four-oh-four.js), though
  // its types name only preValidation and preHandler; test/plugins/unmatched-routes.test.ts
  // checks that the body is indeed never parsed.
  const notFoundHooks = { onRequest: async (request: FastifyRequest, reply: FastifyReply) => answerUnmatched(request, reply) }
  fastify.setNotFoundHandler(notFoundHooks as object, (request, reply) => answerUnmatched(request, reply))
}, { name: 'chartcast-unmatched-routes' })
