/**
 * The dashboard's live events (GET /events): a set of subscribers, each a server-sent-events
 * stream (https://html.spec.whatwg.org/multipage/server-sent-events.html), and what to do with
 * one that cannot keep up. Plain class: the route hands it a sink per connection.
 *
 * Bounds: at most `maxPerKey` streams per credential (a token, a session) and `maxClients` in
 * all; a stream whose socket stops taking data holds at most `maxBuffered` events, and past
 * that it is closed (the browser's EventSource reconnects and reloads what it shows).
 */

/** One connection's output: `write` answers false when the socket's buffer is full (Node's backpressure). */
export interface EventSink {
  write (chunk: string): boolean
  /** Calls back once when the socket takes data again after a `false`. */
  onDrain (listener: () => void): void
  close (): void
}

export interface EventHubOptions {
  maxPerKey: number
  maxClients: number
  maxBuffered: number
}

export type SubscribeResult =
  | { ok: true, unsubscribe: () => void }
  | { ok: false, reason: 'per-key' | 'total' }

interface Subscriber {
  key: string
  /** The key and every other credential id whose end ends this stream (a session's publisher token). */
  credentials: readonly string[]
  sink: EventSink
  /** Events waiting for the socket to drain; null while it takes writes directly. */
  queue: string[] | null
}

/** One SSE message; data is JSON on one line (JSON.stringify never emits a raw newline). */
export function formatEvent (type: string, data: unknown): string {
  return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`
}

export class EventHub {
  private readonly subscribers = new Set<Subscriber>()
  private readonly perKey = new Map<string, number>()
  private droppedCount = 0

  constructor (private readonly options: EventHubOptions) {}

  get size (): number { return this.subscribers.size }

  /** Streams closed because they fell more than maxBuffered events behind. */
  get dropped (): number { return this.droppedCount }

  /**
   * `endedBy`: further credential ids whose revocation ends the stream as its key's does: a
   * dashboard session made from a publisher token is counted under the token (its key), and
   * must end when either the session or that token does.
   */
  subscribe (key: string, sink: EventSink, endedBy: readonly string[] = []): SubscribeResult {
    if (this.subscribers.size >= this.options.maxClients) return { ok: false, reason: 'total' }
    const count = this.perKey.get(key) ?? 0
    if (count >= this.options.maxPerKey) return { ok: false, reason: 'per-key' }
    this.perKey.set(key, count + 1)
    const subscriber: Subscriber = { key, credentials: [key, ...endedBy], sink, queue: null }
    this.subscribers.add(subscriber)
    return { ok: true, unsubscribe: () => { this.remove(subscriber) } }
  }

  /** Sends one event to every subscriber (serialised once). */
  publish (type: string, data: unknown): void {
    if (this.subscribers.size === 0) return
    const chunk = formatEvent(type, data)
    for (const subscriber of [...this.subscribers]) this.send(subscriber, chunk)
  }

  /** A comment line keeps proxies from closing an idle stream; it is never shown to the page. */
  heartbeat (): void {
    for (const subscriber of [...this.subscribers]) this.send(subscriber, ': keep-alive\n\n')
  }

  /** Ends the streams whose key, or a credential they are ended by, `ended` names (a revoked token). */
  closeKeys (ended: (key: string) => boolean): void {
    for (const subscriber of [...this.subscribers]) {
      if (!subscriber.credentials.some(ended)) continue
      this.remove(subscriber)
      subscriber.sink.close()
    }
  }

  /** Ends every stream (server shutdown). */
  closeAll (): void {
    for (const subscriber of [...this.subscribers]) {
      this.remove(subscriber)
      subscriber.sink.close()
    }
  }

  private send (subscriber: Subscriber, chunk: string): void {
    if (subscriber.queue !== null) {
      if (subscriber.queue.length >= this.options.maxBuffered) {
        this.droppedCount++
        this.remove(subscriber)
        subscriber.sink.close()
        return
      }
      subscriber.queue.push(chunk)
      return
    }
    if (!subscriber.sink.write(chunk)) {
      subscriber.queue = []
      subscriber.sink.onDrain(() => { this.drain(subscriber) })
    }
  }

  private drain (subscriber: Subscriber): void {
    const queued = subscriber.queue ?? []
    subscriber.queue = null
    if (!this.subscribers.has(subscriber)) return
    for (let i = 0; i < queued.length; i++) {
      if (!subscriber.sink.write(queued[i]!)) {
        subscriber.queue = queued.slice(i + 1)
        subscriber.sink.onDrain(() => { this.drain(subscriber) })
        return
      }
    }
  }

  private remove (subscriber: Subscriber): void {
    if (!this.subscribers.delete(subscriber)) return
    const count = (this.perKey.get(subscriber.key) ?? 1) - 1
    if (count <= 0) this.perKey.delete(subscriber.key)
    else this.perKey.set(subscriber.key, count)
  }
}
