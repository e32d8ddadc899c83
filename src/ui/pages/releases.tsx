import { useEffect, useState } from 'preact/hooks'
import { stringify } from 'yaml'
import { get, query, seg, type ApiProblem, type Release } from '../api.js'
import { Empty, Loading, ProblemMessage, Time } from '../components/status.js'
import { diffLines, type DiffLine } from '../diff.js'
import { asProblem, useResource } from '../hooks.js'
import { navigate, useLocation } from '../router.js'

const PAGE = 20

/** What a diff compares: everything a release is made of. */
const releaseYaml = (release: Release): string => stringify({ chart: release.chart, values: release.values, notes: release.notes })

function ReleaseDiff ({ versions }: { versions: string[] }) {
  const [from, setFrom] = useState('')
  const [to, setTo] = useState('')
  const [lines, setLines] = useState<DiffLine[] | null>(null)
  const [problem, setProblem] = useState<ApiProblem | null>(null)
  const compare = async (event: Event) => {
    event.preventDefault()
    setProblem(null)
    setLines(null)
    try {
      const [a, b] = await Promise.all([get<Release>(`/releases/${seg(from.trim())}`), get<Release>(`/releases/${seg(to.trim())}`)])
      setLines(diffLines(releaseYaml(a), releaseYaml(b)))
    } catch (error) {
      setProblem(asProblem(error))
    }
  }
  const changed = lines?.filter((l) => l.kind !== 'same').length ?? 0
  return (
    <section aria-labelledby="diff-heading">
      <h2 id="diff-heading">Compare two releases</h2>
      <form class="inline-fields" onSubmit={(event) => { void compare(event) }}>
        <datalist id="release-versions">{versions.map((v) => <option key={v} value={v} />)}</datalist>
        <div class="field"><label for="diff-from">From version</label><input id="diff-from" list="release-versions" required value={from} onInput={(e) => { setFrom(e.currentTarget.value) }} /></div>
        <div class="field"><label for="diff-to">To version</label><input id="diff-to" list="release-versions" required value={to} onInput={(e) => { setTo(e.currentTarget.value) }} /></div>
        <button type="submit" class="primary">Compare</button>
      </form>
      {problem !== null && <ProblemMessage problem={problem} />}
      {lines !== null && (
        <>
          <p role="status">{changed === 0 ? 'The two releases have the same chart, values and notes.' : `${changed} changed lines.`}</p>
          <pre class="diff" aria-label={`Changes from ${from} to ${to}`}>
            {lines.map((line, i) => <span key={i} class={`diff-${line.kind}`}>{line.kind === 'added' ? '+ ' : line.kind === 'removed' ? '- ' : '  '}{line.text}</span>)}
          </pre>
        </>
      )}
    </section>
  )
}

export function ReleasesPage () {
  useEffect(() => { document.title = 'Releases · chartcast' }, [])
  const { search } = useLocation()
  const before = search.get('before') ?? undefined
  const q = search.get('q') ?? ''
  const [text, setText] = useState(q)
  const key = `${q}|${before ?? ''}`
  const page = useResource(async () => await get<{ releases: Release[], nextBefore: string | null }>(`/releases${query({ limit: PAGE, before, q })}`), key)
  const submit = (event: Event) => {
    event.preventDefault()
    navigate(`/ui/releases${query({ q: text.trim() })}`)
  }
  const releases = page.data?.releases ?? []
  return (
    <>
      <h1>Releases</h1>
      <form role="search" class="inline-fields" onSubmit={submit}>
        <div class="field"><label for="release-search">Search by version</label><input id="release-search" type="search" value={text} onInput={(e) => { setText(e.currentTarget.value) }} placeholder="e.g. 1.4" /></div>
        <button type="submit" class="secondary">Search</button>
      </form>
      {page.problem !== null && <ProblemMessage problem={page.problem} onRetry={page.reload} />}
      {page.data === undefined && page.problem === null && <Loading what="releases" />}
      {page.data !== undefined && releases.length === 0 && (
        q !== '' ? <Empty title={`No release version contains "${q}"`} /> : <Empty title="No release published yet">Publish one with <code>POST /releases</code> (JSON or YAML).</Empty>
      )}
      {releases.length > 0 && (
        <ul class="releases">
          {releases.map((release) => (
            <li key={release.version} class="card">
              <h2>{release.version}</h2>
              <dl class="facts">
                <dt>Chart</dt><dd>{release.chart.name ?? ''} {release.chart.version} <span class="muted">from</span> {release.chart.url}</dd>
                <dt>Published</dt><dd><Time at={release.createdAt} /> by {release.createdBy}</dd>
                <dt>Digest</dt><dd><code>{release.digest}</code></dd>
              </dl>
              {release.notes !== null && <p class="notes">{release.notes}</p>}
              <details>
                <summary>Values of {release.version} (YAML)</summary>
                <pre class="yaml">{Object.keys(release.values).length === 0 ? '# no values: the chart\'s defaults' : stringify(release.values)}</pre>
              </details>
            </li>
          ))}
        </ul>
      )}
      <nav class="pager" aria-label="Release pages">
        {before !== undefined && <button type="button" class="secondary" onClick={() => { navigate(`/ui/releases${query({ q })}`) }}>First page</button>}
        {page.data?.nextBefore !== null && page.data?.nextBefore !== undefined && (
          <button type="button" class="secondary" onClick={() => { navigate(`/ui/releases${query({ q, before: page.data!.nextBefore })}`) }}>Next page</button>
        )}
      </nav>
      <ReleaseDiff versions={releases.map((r) => r.version)} />
    </>
  )
}
