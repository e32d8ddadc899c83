/**
 * EventHub bounds, with a stand-in sink (`BlockableSink`) whose socket buffer is "full" when the
 * test says so, in place of a real slow TCP peer.
 */
import t from 'tap'
import { EventHub, formatEvent, type EventSink } from '../../src/services/event-hub.js'

class BlockableSink implements EventSink {
  written: string[] = []
  full = false
  closed = false
  private drainListener: (() => void) | null = null
  write (chunk: string): boolean { this.written.push(chunk); return !this.full }
  onDrain (listener: () => void): void { this.drainListener = listener }
  close (): void { this.closed = true }
  drain (): void {
    this.full = false
    const listener = this.drainListener
    this.drainListener = null
    listener?.()
  }
}

t.test('an event is one SSE message with the JSON data on one line', async (t) => {
  t.equal(formatEvent('channel', { channel: 'stable', note: 'a\nb' }), 'event: channel\ndata: {"channel":"stable","note":"a\\nb"}\n\n')
})

t.test('every subscriber gets every event, in order', async (t) => {
  const hub = new EventHub({ maxPerKey: 5, maxClients: 10, maxBuffered: 4 })
  const a = new BlockableSink()
  const b = new BlockableSink()
  hub.subscribe('k1', a)
  hub.subscribe('k2', b)
  hub.publish('channel', { n: 1 })
  hub.publish('channel', { n: 2 })
  t.same(a.written, [formatEvent('channel', { n: 1 }), formatEvent('channel', { n: 2 })])
  t.same(b.written, a.written)
})

t.test('a subscriber whose socket is full gets queued events once it drains, in order', async (t) => {
  const hub = new EventHub({ maxPerKey: 5, maxClients: 10, maxBuffered: 4 })
  const slow = new BlockableSink()
  hub.subscribe('k', slow)
  slow.full = true
  hub.publish('e', 1) // written, answered false: from here on events queue
  hub.publish('e', 2)
  hub.publish('e', 3)
  t.equal(slow.written.length, 1, 'nothing more is written while the socket is full')
  slow.drain()
  t.same(slow.written, [1, 2, 3].map((n) => formatEvent('e', n)))
  t.notOk(slow.closed)
})

t.test('a subscriber more than maxBuffered events behind is closed and forgotten; the others carry on', async (t) => {
  const hub = new EventHub({ maxPerKey: 5, maxClients: 10, maxBuffered: 3 })
  const slow = new BlockableSink()
  const fast = new BlockableSink()
  hub.subscribe('k', slow)
  hub.subscribe('k', fast)
  slow.full = true
  for (let n = 0; n < 4; n++) hub.publish('e', n)
  t.notOk(slow.closed, 'three queued events are within the bound')
  hub.publish('e', 4)
  t.ok(slow.closed, 'the fourth queued event is past it: the stream is closed')
  t.equal(hub.size, 1)
  t.equal(hub.dropped, 1)
  t.equal(fast.written.length, 5)
  t.ok(hub.subscribe('k', new BlockableSink()).ok, 'its place under the per-key bound is free again')
})

t.test('maxPerKey and maxClients refuse further subscriptions; unsubscribing frees a place', async (t) => {
  const hub = new EventHub({ maxPerKey: 2, maxClients: 3, maxBuffered: 3 })
  const first = hub.subscribe('a', new BlockableSink())
  t.ok(hub.subscribe('a', new BlockableSink()).ok)
  t.same(hub.subscribe('a', new BlockableSink()), { ok: false, reason: 'per-key' })
  t.ok(hub.subscribe('b', new BlockableSink()).ok)
  t.same(hub.subscribe('c', new BlockableSink()), { ok: false, reason: 'total' })
  if (first.ok) first.unsubscribe()
  t.ok(hub.subscribe('a', new BlockableSink()).ok)
})

t.test('closeKeys ends only the named keys\' streams; closeAll ends the rest', async (t) => {
  const hub = new EventHub({ maxPerKey: 2, maxClients: 5, maxBuffered: 3 })
  const revoked = new BlockableSink()
  const kept = new BlockableSink()
  hub.subscribe('jti-1', revoked)
  hub.subscribe('jti-2', kept)
  hub.closeKeys((key) => key === 'jti-1')
  t.ok(revoked.closed)
  t.notOk(kept.closed)
  hub.closeAll()
  t.ok(kept.closed)
  t.equal(hub.size, 0)
})

t.test('a stream subscribed with endedBy ends when its key or any of those ids is ended, and counts under its key only', async (t) => {
  const hub = new EventHub({ maxPerKey: 1, maxClients: 5, maxBuffered: 3 })
  const byToken = new BlockableSink()
  const bySession = new BlockableSink()
  const other = new BlockableSink()
  t.ok(hub.subscribe('session-1', byToken, ['token-1']).ok)
  t.ok(hub.subscribe('session-2', bySession, ['token-1']).ok)
  t.ok(hub.subscribe('token-1', other).ok, 'endedBy ids take no place under the per-key bound')
  hub.closeKeys((key) => key === 'session-2')
  t.ok(bySession.closed)
  t.notOk(byToken.closed)
  hub.closeKeys((key) => key === 'token-1')
  t.ok(byToken.closed, 'the token a session was made from ends its stream')
  t.ok(other.closed)
  t.equal(hub.size, 0)
})
