/**
 * The live connection: one EventSource on GET /events for the whole page (the session cookie
 * goes with it). Pages subscribe to the event types they show and reload from the API when one
 * arrives; the browser reconnects by itself, and a reconnect reloads everything (events may
 * have been missed meanwhile). An answer other than a stream (401 once the session or its token
 * ended, 429, 503 while the server restarts) makes the browser give up for good: then the page
 * asks whether it is still signed in (`whenLiveRefused`) and connects again a little later.
 */
import { useEffect, useRef, useState } from 'preact/hooks'
import type { ChannelFleet } from './api.js'

export interface ChannelChange { channel: string, head: string | null, revision: number | null }
export type LiveEvents = {
  channel: ChannelChange
  fleet: ChannelFleet
  resync: Record<string, never>
}
export type LiveState = 'connecting' | 'live' | 'reconnecting'

type Listener = { [K in keyof LiveEvents]: (data: LiveEvents[K]) => void }
const listeners: { [K in keyof LiveEvents]: Set<Listener[K]> } = { channel: new Set(), fleet: new Set(), resync: new Set() }
const stateListeners = new Set<(state: LiveState) => void>()
let source: EventSource | null = null
let state: LiveState = 'connecting'
let everOpened = false
let retryTimer: ReturnType<typeof setTimeout> | null = null
/** How long after a refused stream the page connects again. */
const RETRY_AFTER_REFUSAL_MS = 5_000
let onRefused: () => void = () => {}
/** Told when the server answered GET /events with something other than a stream. */
export function whenLiveRefused (listener: () => void): void { onRefused = listener }

function setState (next: LiveState): void {
  state = next
  for (const listener of stateListeners) listener(next)
}

function dispatch<K extends keyof LiveEvents> (type: K, data: LiveEvents[K]): void {
  for (const listener of listeners[type]) (listener as (data: LiveEvents[K]) => void)(data)
}

export function connectLive (): void {
  if (source !== null) return
  source = new EventSource('/events')
  source.addEventListener('open', () => {
    // After a reconnect what happened in between is unknown: every page reloads.
    if (everOpened) dispatch('resync', {})
    everOpened = true
    setState('live')
  })
  source.addEventListener('error', () => {
    setState('reconnecting')
    if (source?.readyState !== EventSource.CLOSED) return
    // Refused, not dropped: the browser will not try again by itself.
    source.close()
    source = null
    onRefused()
    retryTimer ??= setTimeout(() => {
      retryTimer = null
      connectLive()
    }, RETRY_AFTER_REFUSAL_MS)
  })
  for (const type of Object.keys(listeners) as Array<keyof LiveEvents>) {
    source.addEventListener(type, (event) => {
      try {
        dispatch(type, JSON.parse((event as MessageEvent<string>).data) as never)
      } catch {
        // A malformed event is ignored; the next one or a reload repairs the page.
      }
    })
  }
}

export function disconnectLive (): void {
  if (retryTimer !== null) clearTimeout(retryTimer)
  retryTimer = null
  source?.close()
  source = null
  everOpened = false
  setState('connecting')
}

/** Calls `listener` for each event of `type` while the component is mounted (the latest listener is used). */
export function useLiveEvent<K extends keyof LiveEvents> (type: K, listener: (data: LiveEvents[K]) => void): void {
  const latest = useRef(listener)
  latest.current = listener
  useEffect(() => {
    const call = (data: LiveEvents[K]) => { latest.current(data) }
    listeners[type].add(call as never)
    return () => { listeners[type].delete(call as never) }
  }, [type])
}

export function useLiveState (): LiveState {
  const [current, setCurrent] = useState(state)
  useEffect(() => {
    stateListeners.add(setCurrent)
    setCurrent(state)
    return () => { stateListeners.delete(setCurrent) }
  }, [])
  return current
}
