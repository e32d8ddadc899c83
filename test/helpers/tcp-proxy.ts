/**
 * A stand-in for the network between a server and PostgreSQL: a TCP proxy on 127.0.0.1
 * that forwards to the real database and can simulate an outage without touching the
 * machine's PostgreSQL (other tests use it at the same time, so it is never stopped).
 *
 *   const proxy = await startTcpProxy({ host: '127.0.0.1', port: 5432 })
 *   const url = proxy.rewrite(databaseUrl)    // same database, through the proxy
 *   proxy.cut()        // drop every open connection and refuse new ones ("PostgreSQL is down")
 *   proxy.cut('blackhole')   // freeze open connections and accept new ones that never answer ("network partition")
 *   proxy.blackholeMatching('chartcast-listener')   // freeze just the connections whose first bytes
 *                      // (PostgreSQL's startup message: user, database, application_name) contain
 *                      // the text, open ones and new ones alike ("that one connection went half-open")
 *   proxy.restore()    // let connections through again ("PostgreSQL is back")
 */
import net from 'node:net'

export type CutMode = 'refuse' | 'blackhole'

export interface TcpProxy {
  readonly port: number
  /** The same URL with host and port pointing at the proxy. */
  rewrite (databaseUrl: string): string
  cut (mode?: CutMode): void
  /** Freezes (never closes) the connections whose first client bytes contain `text`, now and until restore. */
  blackholeMatching (text: string): void
  restore (): void
  /** Connections currently forwarded. */
  readonly openConnections: number
  close (): Promise<void>
}

interface Pair { client: net.Socket, upstream: net.Socket | null, startup: string | null }

export async function startTcpProxy (target: { host: string, port: number }): Promise<TcpProxy> {
  let mode: 'pass' | CutMode = 'pass'
  const pairs = new Set<Pair>()
  /** Sockets accepted while blackholed: held open, never answered. */
  const held = new Set<net.Socket>()
  /** Pairs frozen by blackholeMatching, and the text that selects them. */
  const frozen = new Set<Pair>()
  let matching: string | null = null

  /** Nothing moves in either direction any more, but neither side learns why. */
  const freeze = (pair: Pair): void => {
    pair.client.unpipe(pair.upstream!)
    pair.upstream!.unpipe(pair.client)
    pair.client.pause()
    pair.upstream!.pause()
  }
  const matches = (pair: Pair): boolean => matching !== null && pair.startup !== null && pair.startup.includes(matching)

  const drop = (pair: Pair): void => {
    pairs.delete(pair)
    // A reset, not a polite FIN: what a client sees when the server host goes away.
    pair.client.resetAndDestroy()
    pair.upstream?.resetAndDestroy()
  }

  const server = net.createServer((client) => {
    client.on('error', () => {})
    if (mode === 'refuse') {
      client.resetAndDestroy()
      return
    }
    if (mode === 'blackhole') {
      held.add(client)
      client.on('close', () => held.delete(client))
      client.pause()
      return
    }
    const pair: Pair = { client, upstream: null, startup: null }
    pairs.add(pair)
    const upstream = net.connect(target.port, target.host)
    pair.upstream = upstream
    upstream.on('error', () => drop(pair))
    client.on('close', () => drop(pair))
    upstream.on('close', () => drop(pair))
    client.pipe(upstream)
    upstream.pipe(client)
    // After pipe's own listener: the startup bytes reach the server, its answer never comes back.
    client.once('data', (chunk: Buffer) => {
      pair.startup = chunk.toString('latin1')
      if (matches(pair)) {
        frozen.add(pair)
        freeze(pair)
      }
    })
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('proxy has no port')
  const port = address.port

  return {
    port,
    get openConnections () { return pairs.size },
    rewrite (databaseUrl) {
      const url = new URL(databaseUrl)
      url.hostname = '127.0.0.1'
      url.port = String(port)
      return url.toString()
    },
    cut (next = 'refuse') {
      mode = next
      for (const pair of [...pairs]) {
        if (next === 'refuse') drop(pair)
        else freeze(pair)
      }
    },
    blackholeMatching (text) {
      matching = text
      for (const pair of pairs) {
        if (matches(pair)) {
          frozen.add(pair)
          freeze(pair)
        }
      }
    },
    restore () {
      // Connections frozen by a partition are beyond saving (a real one would time out
      // on both ends); drop them so clients reconnect.
      for (const pair of [...pairs]) if (mode === 'blackhole' || frozen.has(pair)) drop(pair)
      for (const socket of [...held]) socket.resetAndDestroy()
      held.clear()
      frozen.clear()
      matching = null
      mode = 'pass'
    },
    close: async () => {
      for (const pair of [...pairs]) drop(pair)
      for (const socket of [...held]) socket.resetAndDestroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

/** Host and port of a postgres:// URL (default port 5432). */
export function targetOf (databaseUrl: string): { host: string, port: number } {
  const url = new URL(databaseUrl)
  return { host: url.hostname === '' ? '127.0.0.1' : url.hostname, port: url.port === '' ? 5432 : Number(url.port) }
}

/**
 * A stand-in for a hostile network between an agent and the server: forwards TCP to `target`
 * and, while `tamper` is set, passes every chunk the server sends through it before the client
 * sees it (a compromised proxy rewriting answers). Rewrites that keep the length keep the HTTP
 * framing valid, so the client reads a well-formed, altered answer.
 *
 *   const proxy = await startTamperingProxy({ host: '127.0.0.1', port })
 *   proxy.tamper = (chunk) => Buffer.from(chunk.toString('latin1').replace('"replicas":2', '"replicas":9'), 'latin1')
 */
export interface TamperingProxy {
  readonly port: number
  /** http://127.0.0.1:<port> */
  readonly url: string
  tamper: ((chunk: Buffer) => Buffer) | null
  close (): Promise<void>
}

export async function startTamperingProxy (target: { host: string, port: number }): Promise<TamperingProxy> {
  const sockets = new Set<net.Socket>()
  let proxy: TamperingProxy | null = null
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host)
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('error', () => {})
      socket.on('close', () => sockets.delete(socket))
    }
    client.pipe(upstream)
    upstream.on('data', (chunk: Buffer) => { client.write(proxy?.tamper == null ? chunk : proxy.tamper(chunk)) })
    upstream.on('end', () => client.end())
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  proxy = {
    port,
    url: `http://127.0.0.1:${port}`,
    tamper: null,
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
  return proxy
}
