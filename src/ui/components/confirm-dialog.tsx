import type { ComponentChildren } from 'preact'
import { useEffect, useId, useRef, useState } from 'preact/hooks'
import type { ApiProblem } from '../api.js'
import { asProblem } from '../hooks.js'
import { ProblemMessage } from './status.js'

export interface ActionDialogProps {
  title: string
  confirmLabel: string
  /** Destructive: the confirm button is styled as such. */
  danger?: boolean
  children?: ComponentChildren
  /** Runs the action; the dialog closes when it succeeds and shows the problem when it fails. */
  onConfirm: () => Promise<void>
  onClose: () => void
}

/**
 * A modal dialog (the native <dialog>: focus moves into it, Escape cancels, the page behind is
 * inert) asking to confirm an action, with the action's own fields.
 */
export function ActionDialog ({ title, confirmLabel, danger = false, children, onConfirm, onClose }: ActionDialogProps) {
  const ref = useRef<HTMLDialogElement>(null)
  const titleId = useId()
  const [busy, setBusy] = useState(false)
  const [problem, setProblem] = useState<ApiProblem | null>(null)
  useEffect(() => {
    const dialog = ref.current
    if (dialog !== null && !dialog.open) dialog.showModal()
    return () => { if (dialog?.open === true) dialog.close() }
  }, [])
  const submit = async (event: Event) => {
    event.preventDefault()
    setBusy(true)
    setProblem(null)
    try {
      await onConfirm()
      onClose()
    } catch (error) {
      setProblem(asProblem(error))
      setBusy(false)
    }
  }
  return (
    <dialog ref={ref} aria-labelledby={titleId} onCancel={(event) => { event.preventDefault(); onClose() }}>
      <form onSubmit={(event) => { void submit(event) }}>
        <h2 id={titleId}>{title}</h2>
        {children}
        {problem !== null && <ProblemMessage problem={problem} />}
        <div class="dialog-actions">
          <button type="button" class="secondary" onClick={onClose}>Cancel</button>
          <button type="submit" class={danger ? 'danger' : 'primary'} disabled={busy}>{confirmLabel}</button>
        </div>
      </form>
    </dialog>
  )
}
