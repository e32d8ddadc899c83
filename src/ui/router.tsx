/** A small history router for the pages under /ui/ (the server answers every such path with the app). */
import type { ComponentChildren } from 'preact'
import { useEffect, useState } from 'preact/hooks'

export const BASE = '/ui'

const listeners = new Set<() => void>()
function notify (): void { for (const listener of listeners) listener() }
globalThis.addEventListener?.('popstate', notify)

export function navigate (to: string): void {
  if (`${location.pathname}${location.search}` === to) return
  history.pushState(null, '', to)
  notify()
  globalThis.scrollTo?.(0, 0)
}

/** The path below /ui (always starting with "/") and the query. */
export function useLocation (): { path: string, search: URLSearchParams } {
  const [, setTick] = useState(0)
  useEffect(() => {
    const listener = () => { setTick((n) => n + 1) }
    listeners.add(listener)
    return () => { listeners.delete(listener) }
  }, [])
  const rest = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : location.pathname
  return { path: rest === '' ? '/' : rest, search: new URLSearchParams(location.search) }
}

export function href (path: string): string { return `${BASE}${path}` }

interface LinkProps { to: string, children: ComponentChildren, 'aria-current'?: 'page' | undefined, class?: string }

export function Link ({ to, children, ...rest }: LinkProps) {
  const onClick = (event: MouseEvent) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return
    event.preventDefault()
    navigate(href(to))
  }
  return <a href={href(to)} onClick={onClick} {...rest}>{children}</a>
}
