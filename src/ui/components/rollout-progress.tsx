import type { Rollout } from '../api.js'
import { Time } from './status.js'

function nextStep (rollout: Rollout): number | null {
  const next = rollout.steps.find((step) => step.percent > rollout.percent)
  return next?.percent ?? null
}

/** A rollout's percent as a progress bar, with its state, next step and the reports counted against it. */
export function RolloutProgress ({ rollout }: { rollout: Rollout }) {
  const next = nextStep(rollout)
  const reported = rollout.reports.applied + rollout.reports.failed
  const label = `Rollout of ${rollout.version}`
  return (
    <div class={`rollout rollout-${rollout.state}`}>
      <div class="rollout-head">
        <strong>{rollout.version}</strong>
        <span class={`badge badge-${rollout.state}`}>{rollout.state}</span>
        <span>{rollout.percent}% of deployments</span>
      </div>
      <div class="bar" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={rollout.percent} aria-valuetext={`${rollout.percent}%, ${rollout.state}`}>
        <div class="bar-fill" style={{ width: `${rollout.percent}%` }} />
      </div>
      <p class="rollout-facts">
        {rollout.state === 'rolling' && next !== null && rollout.nextStepAt !== null && <span>Next: {next}% at <Time at={rollout.nextStepAt} />. </span>}
        {rollout.state === 'paused' && <span class="paused-reason">Paused{rollout.pausedReason !== null ? `: ${rollout.pausedReason}` : ''}. </span>}
        <span>Failures: {rollout.reports.failed} of {reported} reports.</span>
      </p>
    </div>
  )
}
