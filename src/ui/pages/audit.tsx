import { useEffect } from 'preact/hooks'
import { get, query, type AuditEntry } from '../api.js'
import { Empty, Loading, ProblemMessage, Time } from '../components/status.js'
import { useResource } from '../hooks.js'
import { navigate, useLocation } from '../router.js'

const PAGE = 50

export function AuditPage () {
  useEffect(() => { document.title = 'Audit log · chartcast' }, [])
  const { search } = useLocation()
  const before = search.get('before') ?? undefined
  const page = useResource(async () => await get<{ entries: AuditEntry[], nextBefore: number | null }>(`/audit${query({ limit: PAGE, before })}`), before ?? '')
  return (
    <>
      <h1>Audit log</h1>
      {page.problem !== null && <ProblemMessage problem={page.problem} onRetry={page.reload} />}
      {page.data === undefined && page.problem === null && <Loading what="the audit log" />}
      {page.data !== undefined && page.data.entries.length === 0 && <Empty title="The audit log is empty" />}
      {page.data !== undefined && page.data.entries.length > 0 && (
        <table>
          <thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">Action</th><th scope="col">Target</th><th scope="col">Detail</th></tr></thead>
          <tbody>
            {page.data.entries.map((e) => (
              <tr key={e.id}><td><Time at={e.at} /></td><td>{e.actor}</td><td>{e.action}</td><td>{e.target}</td><td><code class="detail">{JSON.stringify(e.detail)}</code></td></tr>
            ))}
          </tbody>
        </table>
      )}
      <nav class="pager" aria-label="Audit log pages">
        {before !== undefined && <button type="button" class="secondary" onClick={() => { navigate('/ui/audit') }}>Newest</button>}
        {page.data?.nextBefore != null && <button type="button" class="secondary" onClick={() => { navigate(`/ui/audit${query({ before: page.data!.nextBefore })}`) }}>Older entries</button>}
      </nav>
    </>
  )
}
