import type { Freeze } from '../api.js'
import { Time } from './status.js'

export function FreezeState ({ freeze }: { freeze: Freeze | null }) {
  if (freeze === null) return <span>Not frozen</span>
  return (
    <span class="frozen">
      <span class="badge badge-frozen">Frozen</span> {freeze.reason} (by {freeze.by}{freeze.until !== null ? <>, until <Time at={freeze.until} /></> : ''})
    </span>
  )
}
