/**
 * Caps on open connections, and closing the ones that would hold up shutdown.
 *
 * - MAX_CONNECTIONS: Node's `server.maxConnections`; a connection past it is closed at once.
 * - MAX_CONNECTIONS_PER_ADDRESS, directly exposed (TRUST_PROXY off): counted per socket, by the
 *   peer address; a connection past it is closed at once, before a byte of it is read.
 * - MAX_CONNECTIONS_PER_ADDRESS behind a proxy (TRUST_PROXY on): every socket comes from the
 *   proxy, so a socket count per peer would cap the proxy, i.e. everyone. The client address is
 *   only known per request (X-Forwarded-For), so there the cap counts that address's requests in
 *   progress (answered 429 past it, before the body is read), and per-client connection limits
 *   are the proxy's job (it holds the client sockets).
 *
 * On close(), connections that are idle or still sending their request (a stalled body, a
 * slow header) are closed at once; requests already received are let finish.
 */
import fp from 'fastify-plugin'
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { ChartcastError } from '../errors.js'

export interface ConnectionLimitsOptions {
  maxConnections: number
  maxConnectionsPerAddress: number
  trustProxy: boolean
}

/** Counts per key; a key whose count falls to zero is forgotten. */
class Counts {
  private readonly counts = new Map<string, number>()

  /** Adds one unless that would pass `max`; true when added. */
  tryAdd (key: string, max: number): boolean {
    const count = this.counts.get(key) ?? 0
    if (count >= max) return false
    this.counts.set(key, count + 1)
    return true
  }

  remove (key: string): void {
    const count = this.counts.get(key) ?? 0
    if (count <= 1) this.counts.delete(key)
    else this.counts.set(key, count - 1)
  }
}

/** The request whose response is in progress on this socket, if any (Node's own link, as http-terminator reads it). */
function currentResponse (socket: Socket): ServerResponse | null {
  return (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? null
}

export default fp<ConnectionLimitsOptions>(async (fastify, opts) => {
  const server = fastify.server
  if (opts.maxConnections > 0) server.maxConnections = opts.maxConnections
  const perAddressCap = opts.maxConnectionsPerAddress
  const capSockets = perAddressCap > 0 && !opts.trustProxy
  const socketsPerAddress = new Counts()
  const sockets = new Set<Socket>()

  server.on('connection', (socket: Socket) => {
    if (capSockets) {
      const address = socket.remoteAddress ?? 'unknown'
      if (!socketsPerAddress.tryAdd(address, perAddressCap)) {
        socket.destroy()
        return
      }
      socket.once('close', () => { socketsPerAddress.remove(address) })
    }
    sockets.add(socket)
    socket.once('close', () => { sockets.delete(socket) })
  })

  if (perAddressCap > 0 && opts.trustProxy) {
    const requestsPerAddress = new Counts()
    fastify.addHook('onRequest', (request, reply, done) => {
      const address = request.ip
      if (!requestsPerAddress.tryAdd(address, perAddressCap)) {
        reply.header('connection', 'close')
        done(new ChartcastError('RATE_LIMITED', `more than ${perAddressCap} requests from this address are in progress`, { 'retry-after': '1' }))
        return
      }
      // 'close' fires once per response, whether it finished or the client went away.
      reply.raw.once('close', () => { requestsPerAddress.remove(address) })
      done()
    })
  }

  fastify.addHook('preClose', (done) => {
    for (const socket of sockets) {
      const response = currentResponse(socket)
      if (response === null || !response.req.complete) socket.destroy()
    }
    done()
  })
}, { name: 'chartcast-connection-limits' })
