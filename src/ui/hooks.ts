import { useCallback, useEffect, useRef, useState } from 'preact/hooks'
import { ApiProblem } from './api.js'

export interface Resource<T> {
  data: T | undefined
  problem: ApiProblem | null
  loading: boolean
  /** Loads again, keeping what is shown until the answer arrives (no flicker on live updates). */
  reload: () => void
}

function asProblem (error: unknown): ApiProblem {
  return error instanceof ApiProblem ? error : new ApiProblem(0, 'Something went wrong', 'the page could not show this answer; reload to try again', 'CLIENT')
}

/** Data from the API for the current `key`; an answer to an older key or load is discarded. */
export function useResource<T> (load: () => Promise<T>, key: string): Resource<T> {
  const [data, setData] = useState<T | undefined>(undefined)
  const [problem, setProblem] = useState<ApiProblem | null>(null)
  const [loading, setLoading] = useState(true)
  const generation = useRef(0)
  const loadRef = useRef(load)
  loadRef.current = load

  const run = useCallback(() => {
    const mine = ++generation.current
    setLoading(true)
    loadRef.current().then(
      (value) => { if (mine === generation.current) { setData(value); setProblem(null); setLoading(false) } },
      (error: unknown) => { if (mine === generation.current) { setProblem(asProblem(error)); setLoading(false) } }
    )
  }, [])

  useEffect(() => {
    setData(undefined)
    run()
  }, [key])

  return { data, problem, loading, reload: run }
}

export { asProblem }

/**
 * A rollout's next step arrives with time, not with a change notice: reload when the earliest
 * of these moments has passed (a second after it, so the server's clock has passed it too).
 */
export function useReloadAt (times: Array<string | null | undefined>, reload: () => void): void {
  const next = times.filter((t): t is string => typeof t === 'string').map((t) => Date.parse(t)).filter((t) => Number.isFinite(t)).sort((a, b) => a - b)[0]
  useEffect(() => {
    if (next === undefined) return
    const timer = setTimeout(reload, Math.min(Math.max(0, next - Date.now()) + 1000, 2 ** 31 - 1))
    return () => { clearTimeout(timer) }
  }, [next])
}
