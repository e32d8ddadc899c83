/** How loading, empty and failed answers look everywhere: a problem shows its title and detail, never a stack. */
import type { ComponentChildren } from 'preact'
import type { ApiProblem } from '../api.js'

export function ProblemMessage ({ problem, onRetry }: { problem: ApiProblem, onRetry?: () => void }) {
  return (
    <div class="problem" role="alert">
      <p class="problem-title"><strong>{problem.title}</strong></p>
      {problem.detail !== '' && <p class="problem-detail">{problem.detail}</p>}
      {onRetry !== undefined && problem.status !== 403 && <button type="button" class="secondary" onClick={onRetry}>Try again</button>}
    </div>
  )
}

export function Loading ({ what }: { what: string }) {
  return <p class="loading" role="status" aria-live="polite">Loading {what}…</p>
}

export function Empty ({ title, children }: { title: string, children?: ComponentChildren }) {
  return (
    <div class="empty">
      <p><strong>{title}</strong></p>
      {children !== undefined && <p>{children}</p>}
    </div>
  )
}

/** A timestamp as the reader's local time, machine-readable in `datetime`. */
export function Time ({ at }: { at: string | null | undefined }) {
  if (at === null || at === undefined) return <span>—</span>
  const date = new Date(at)
  return <time dateTime={at} title={at}>{date.toLocaleString()}</time>
}
