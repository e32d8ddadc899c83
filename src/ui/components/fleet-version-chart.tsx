import type { ChannelFleet } from '../api.js'
import { compareVersionsDescending } from '../versions.js'

/** The channel's fleet by applied version, as horizontal bars; the numbers are in the text, the bars only show them. */
export function FleetVersionChart ({ fleet, label }: { fleet: ChannelFleet, label: string }) {
  const versions = Object.entries(fleet.byVersion).filter(([, v]) => v.deployments > 0 || v.failed > 0)
    .sort(([a], [b]) => compareVersionsDescending(a, b))
  if (fleet.total === 0 || versions.length === 0) return <p class="muted">No deployment has checked in yet.</p>
  const most = Math.max(...versions.map(([, v]) => v.deployments), 1)
  return (
    <figure class="fleet-chart">
      <figcaption>{label}: {fleet.total} deployments{fleet.stale > 0 ? `, ${fleet.stale} stale` : ''}</figcaption>
      <ul>
        {versions.map(([version, v]) => (
          <li key={version}>
            <span class="fleet-version">{version}</span>
            <span class="fleet-bar" aria-hidden="true"><span class="fleet-bar-fill" style={{ width: `${Math.max(2, (v.deployments / most) * 100)}%` }} /></span>
            <span class="fleet-count">{v.deployments} running{v.failed > 0 ? `, ${v.failed} failed` : ''}</span>
          </li>
        ))}
      </ul>
    </figure>
  )
}
