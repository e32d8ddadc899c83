/**
 * A server-sent-events client for tests: opens GET /events on a real listener and hands out the
 * events in the order they arrive. `next(type)` waits for the next event of that type (skipping
 * others); nothing here has a timeout of its own, the test's does.
 */
import http from 'node:http'

export interface SseEvent { type: string, data: unknown }

export interface EventStream {
  status: number
  headers: http.IncomingHttpHeaders
  /** The body of a refused request (a problem document). */
  body: string
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- event data is what the server sent; the tests assert on it
  next (type: string, matches?: (data: any) => boolean): Promise<any>
  /** Resolves when the server ends the stream. */
  ended: Promise<void>
  close (): void
}

/** `credential`: a publisher token (sent as Bearer), `{ cookie }` (a dashboard session), or null. */
export async function openEventStream (baseUrl: string, credential: string | { cookie: string } | null, path = '/events'): Promise<EventStream> {
  return await new Promise((resolve, reject) => {
    const request = http.get(`${baseUrl}${path}`, { headers: credential === null ? {} : typeof credential === 'string' ? { authorization: `Bearer ${credential}` } : { cookie: credential.cookie } }, (response) => {
      const queue: SseEvent[] = []
      const waiters: Array<{ type: string, matches: (data: unknown) => boolean, resolve: (data: unknown) => void }> = []
      let buffer = ''
      let body = ''
      let endResolve: () => void = () => {}
      const ended = new Promise<void>((resolve) => { endResolve = resolve })
      const deliver = (): void => {
        for (let w = 0; w < waiters.length; w++) {
          const waiter = waiters[w]!
          const index = queue.findIndex((e) => e.type === waiter.type && waiter.matches(e.data))
          if (index === -1) continue
          const [event] = queue.splice(0, index + 1).slice(-1)
          waiters.splice(w--, 1)
          waiter.resolve(event!.data)
        }
      }
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => {
        if (response.statusCode !== 200) { body += chunk; return }
        buffer += chunk
        let end: number
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          let type = 'message'
          const data: string[] = []
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) type = line.slice(7)
            else if (line.startsWith('data: ')) data.push(line.slice(6))
          }
          if (data.length > 0) queue.push({ type, data: JSON.parse(data.join('\n')) })
        }
        deliver()
      })
      response.on('end', () => { endResolve() })
      response.on('close', () => { endResolve() })
      response.on('error', () => { endResolve() })
      const stream: EventStream = {
        status: response.statusCode ?? 0,
        headers: response.headers,
        get body () { return body },
        next: async (type, matches = () => true) => await new Promise((resolve) => {
          waiters.push({ type, matches, resolve })
          deliver()
        }),
        ended,
        close: () => { request.destroy() }
      }
      if (response.statusCode === 200) resolve(stream)
      else response.on('end', () => { resolve(stream) })
    })
    request.on('error', reject)
  })
}

/**
 * Opens the 10 streams one credential holder may have: five with each of two session cookies,
 * asserting each is accepted. The streams are closed when the test ends.
 */
export async function openTenStreams (t: { equal: (found: unknown, wanted: unknown) => unknown, teardown: (fn: () => void) => void }, baseUrl: string, first: string, second: string): Promise<EventStream[]> {
  const streams: EventStream[] = []
  t.teardown(() => { for (const stream of streams) stream.close() })
  for (let i = 0; i < 10; i++) {
    const stream = await openEventStream(baseUrl, { cookie: i < 5 ? first : second })
    t.equal(stream.status, 200)
    streams.push(stream)
  }
  return streams
}
