/**
 * HTTP over a bare TCP socket, for what `inject()` cannot show: requests a client library would
 * not send (no Host header, a body that never arrives) and what the server does with the socket.
 *
 *   const res = await rawRequest(port, 'POST /releases HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n')
 *   res.status, res.headers['connection'], res.json(), res.closed
 */
import net from 'node:net'

export interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
  /** The server closed the connection after answering (or without answering: status 0). */
  closed: boolean
  json (): Record<string, unknown>
}

function parseResponse (raw: string, closed: boolean): RawResponse | null {
  const end = raw.indexOf('\r\n\r\n')
  if (end === -1) return closed ? { status: 0, headers: {}, body: raw, closed, json: () => ({}) } : null
  const [statusLine = '', ...lines] = raw.slice(0, end).split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  const body = raw.slice(end + 4)
  const length = Number(headers['content-length'] ?? '0')
  if (!closed && Buffer.byteLength(body) < length) return null
  return { status: Number(statusLine.split(' ')[1]), headers, body, closed, json: () => JSON.parse(body) as Record<string, unknown> }
}

/** An open socket to 127.0.0.1:port; resolves once connected. */
export async function openSocket (port: number): Promise<net.Socket> {
  return await new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => { resolve(socket) })
    socket.once('error', reject)
  })
}

/**
 * Writes `text` and resolves with the first complete response, or when the server closes the
 * connection. `waitForClose` also waits for the close after a complete response.
 */
export async function readResponse (socket: net.Socket, waitForClose = false): Promise<RawResponse> {
  return await new Promise((resolve) => {
    let raw = ''
    let answered: RawResponse | null = null
    const finish = (closed: boolean): void => {
      const res = parseResponse(raw, closed) ?? answered
      if (res === null) return
      if (!closed && waitForClose) { answered = res; return }
      socket.removeAllListeners('data')
      resolve(closed ? { ...res, closed: true } : res)
    }
    socket.on('data', (chunk: Buffer) => { raw += chunk.toString('utf8'); finish(false) })
    socket.on('error', () => { /* a reset closes it too */ })
    socket.once('close', () => { finish(true) })
  })
}

export async function rawRequest (port: number, text: string, waitForClose = false): Promise<RawResponse> {
  const socket = await openSocket(port)
  const response = readResponse(socket, waitForClose)
  socket.write(text)
  const res = await response
  socket.destroy()
  return res
}

/** The port a test server's listen() URL points at. */
export function portOf (baseUrl: string): number {
  return Number(new URL(baseUrl).port)
}
