import { useEffect, useState } from 'preact/hooks'
import { get, query, seg, type Channel, type DeploymentDetail, type DeploymentList, type FleetDeployment } from '../api.js'
import { Empty, Loading, ProblemMessage, Time } from '../components/status.js'
import { useResource } from '../hooks.js'
import { useLiveEvent } from '../live.js'
import { navigate, useLocation } from '../router.js'

const PAGE = 50

function status (d: FleetDeployment): string {
  if (d.lastReport?.outcome === 'failed') return 'failed'
  return d.stale ? 'stale' : 'ok'
}

function Reports ({ id }: { id: string }) {
  const detail = useResource(async () => await get<DeploymentDetail>(`/deployments/${seg(id)}`), id)
  if (detail.problem !== null) return <ProblemMessage problem={detail.problem} onRetry={detail.reload} />
  if (detail.data === undefined) return <Loading what="reports" />
  if (detail.data.reports.length === 0) return <p class="muted">No apply report from {id} yet.</p>
  return (
    <table>
      <caption>Latest reports of {id}</caption>
      <thead><tr><th scope="col">When</th><th scope="col">Version</th><th scope="col">Outcome</th><th scope="col">Detail</th></tr></thead>
      <tbody>
        {detail.data.reports.map((r, i) => <tr key={i}><td><Time at={r.at} /></td><td>{r.version}</td><td>{r.outcome}</td><td>{r.detail ?? ''}</td></tr>)}
      </tbody>
    </table>
  )
}

export function FleetPage () {
  useEffect(() => { document.title = 'Fleet · chartcast' }, [])
  const { search } = useLocation()
  const filter = { channel: search.get('channel') ?? '', version: search.get('version') ?? '', status: search.get('status') ?? '' }
  const before = search.get('before') ?? undefined
  const [form, setForm] = useState(filter)
  const [open, setOpen] = useState<string | null>(null)
  const key = `${filter.channel}|${filter.version}|${filter.status}|${before ?? ''}`
  useEffect(() => { setForm(filter) }, [key])
  const channels = useResource(async () => (await get<{ channels: Channel[] }>('/channels')).channels, 'channels')
  const page = useResource(async () => await get<DeploymentList>(`/deployments${query({ ...filter, limit: PAGE, before })}`), key)
  useLiveEvent('fleet', () => { page.reload() })
  useLiveEvent('resync', () => { page.reload() })
  const apply = (event: Event) => {
    event.preventDefault()
    navigate(`/ui/fleet${query({ channel: form.channel, version: form.version.trim(), status: form.status })}`)
  }
  const items = page.data?.items ?? []
  return (
    <>
      <h1>Fleet</h1>
      <form class="inline-fields" onSubmit={apply} aria-label="Filter deployments">
        <div class="field">
          <label for="fleet-channel">Channel</label>
          <select id="fleet-channel" value={form.channel} onChange={(e) => { setForm({ ...form, channel: e.currentTarget.value }) }}>
            <option value="">Any channel</option>
            {channels.data?.map((c) => <option key={c.name} value={c.name}>{c.name}</option>)}
          </select>
        </div>
        <div class="field"><label for="fleet-version">Applied version</label><input id="fleet-version" type="text" value={form.version} onInput={(e) => { setForm({ ...form, version: e.currentTarget.value }) }} /></div>
        <div class="field">
          <label for="fleet-status">Status</label>
          <select id="fleet-status" value={form.status} onChange={(e) => { setForm({ ...form, status: e.currentTarget.value }) }}>
            <option value="">Any status</option>
            <option value="failed">Failed (latest report failed)</option>
            <option value="stale">Stale (not seen lately)</option>
            <option value="ok">OK</option>
          </select>
        </div>
        <button type="submit" class="secondary">Filter</button>
      </form>
      {page.problem !== null && <ProblemMessage problem={page.problem} onRetry={page.reload} />}
      {page.data === undefined && page.problem === null && <Loading what="deployments" />}
      {page.data !== undefined && items.length === 0 && (
        <Empty title={key === '|||' ? 'No deployment has checked in yet' : 'No deployment matches these filters'}>
          Deployments appear after their first spec pull (within CHECKIN_FLUSH_INTERVAL).
        </Empty>
      )}
      {items.length > 0 && (
        <table class="fleet">
          <thead><tr><th scope="col">Deployment</th><th scope="col">Channel</th><th scope="col">Applied</th><th scope="col">Served</th><th scope="col">Last seen</th><th scope="col">Status</th><th scope="col">Latest report</th><th scope="col"><span class="visually-hidden">Reports</span></th></tr></thead>
          <tbody>
            {items.map((d) => (
              <>
                <tr key={d.id}>
                  <th scope="row">{d.id}</th>
                  <td>{d.channel}</td>
                  <td>{d.appliedVersion ?? <span class="muted">unknown</span>}</td>
                  <td>{d.servedVersion ?? '—'}</td>
                  <td><Time at={d.lastSeenAt} /></td>
                  <td><span class={`badge badge-${status(d)}`}>{status(d)}</span></td>
                  <td>{d.lastReport === null ? <span class="muted">none</span> : <>{d.lastReport.outcome} {d.lastReport.version}{d.lastReport.detail !== null ? `: ${d.lastReport.detail}` : ''}</>}</td>
                  <td><button type="button" class="secondary" aria-expanded={open === d.id} onClick={() => { setOpen(open === d.id ? null : d.id) }}>Reports of {d.id}</button></td>
                </tr>
                {open === d.id && <tr key={`${d.id}-reports`}><td colSpan={8}><Reports id={d.id} /></td></tr>}
              </>
            ))}
          </tbody>
        </table>
      )}
      <nav class="pager" aria-label="Deployment pages">
        {before !== undefined && <button type="button" class="secondary" onClick={() => { navigate(`/ui/fleet${query(filter)}`) }}>First page</button>}
        {page.data?.nextBefore != null && <button type="button" class="secondary" onClick={() => { navigate(`/ui/fleet${query({ ...filter, before: page.data!.nextBefore })}`) }}>Next page</button>}
      </nav>
    </>
  )
}
