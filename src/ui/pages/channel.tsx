import { useEffect, useState } from 'preact/hooks'
import { api, get, query, seg, type ChannelDetail, type ChannelEvent, type ChannelFleet, type Release, type Rollout, type Session } from '../api.js'
import { ActionDialog } from '../components/confirm-dialog.js'
import { FleetVersionChart } from '../components/fleet-version-chart.js'
import { FreezeState } from '../components/freeze-state.js'
import { RolloutProgress } from '../components/rollout-progress.js'
import { Empty, Loading, ProblemMessage, Time } from '../components/status.js'
import { asProblem, useReloadAt, useResource } from '../hooks.js'
import { useLiveEvent } from '../live.js'
import { Link } from '../router.js'
import { DEFAULT_AUTO_PAUSE, DEFAULT_STEPS, parseSteps } from '../rollout-input.js'
import type { ApiProblem } from '../api.js'

type Dialog =
  | { kind: 'withdraw', version: string }
  | { kind: 'pause' | 'complete', version: string }
  | { kind: 'freeze' }
  | { kind: 'unfreeze' }
  | null

function PromoteForm ({ channel, active, onDone }: { channel: string, active: string[], onDone: () => void }) {
  const releases = useResource(async () => (await get<{ releases: Release[] }>('/releases?limit=200')).releases, 'releases')
  const candidates = (releases.data ?? []).map((r) => r.version).filter((v) => !active.includes(v))
  const [version, setVersion] = useState('')
  const [staged, setStaged] = useState(false)
  const [steps, setSteps] = useState(DEFAULT_STEPS)
  const [autoPause, setAutoPause] = useState(true)
  const [maxFailures, setMaxFailures] = useState(String(DEFAULT_AUTO_PAUSE.maxFailures))
  const [maxRate, setMaxRate] = useState(String(DEFAULT_AUTO_PAUSE.maxFailureRate * 100))
  const [minReports, setMinReports] = useState(String(DEFAULT_AUTO_PAUSE.minReports))
  const [problem, setProblem] = useState<ApiProblem | null>(null)
  const [stepsError, setStepsError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const [done, setDone] = useState<string | null>(null)
  const chosen = version !== '' ? version : candidates[0] ?? ''

  const submit = async (event: Event) => {
    event.preventDefault()
    setProblem(null)
    setStepsError(null)
    setDone(null)
    let rollout: object | undefined
    if (staged) {
      const parsed = parseSteps(steps)
      if (!parsed.ok) { setStepsError(parsed.message); return }
      rollout = {
        steps: parsed.steps,
        autoPause: autoPause ? { maxFailures: Number(maxFailures), maxFailureRate: Number(maxRate) / 100, minReports: Number(minReports) } : null
      }
    }
    setBusy(true)
    try {
      await api('POST', `/channels/${seg(channel)}/releases`, { version: chosen, ...(rollout !== undefined && { rollout }) })
      setDone(staged ? `${chosen} is rolling out in ${channel}.` : `${chosen} is promoted to ${channel}.`)
      setVersion('')
      onDone()
    } catch (error) {
      setProblem(asProblem(error))
    } finally {
      setBusy(false)
    }
  }

  const doneMessage = done !== null && <p class="done" role="status">{done}</p>
  if (releases.problem !== null) return <ProblemMessage problem={releases.problem} onRetry={releases.reload} />
  if (releases.data === undefined) return <Loading what="published releases" />
  if (candidates.length === 0) return <>{doneMessage}<Empty title="Nothing to promote">Every published release is in this channel already. Publish one with <code>POST /releases</code>.</Empty></>
  return (
    <form class="promote" onSubmit={(event) => { void submit(event) }} aria-label={`Promote a release to ${channel}`}>
      <div class="field">
        <label for="promote-version">Release</label>
        <select id="promote-version" value={chosen} onChange={(e) => { setVersion(e.currentTarget.value) }}>
          {candidates.map((v) => <option key={v} value={v}>{v}</option>)}
        </select>
      </div>
      <div class="field checkbox">
        <input id="promote-staged" type="checkbox" checked={staged} onChange={(e) => { setStaged(e.currentTarget.checked) }} />
        <label for="promote-staged">Staged rollout</label>
      </div>
      {staged && (
        <fieldset>
          <legend>Rollout</legend>
          <div class="field">
            <label for="promote-steps">Steps</label>
            <input id="promote-steps" type="text" value={steps} onInput={(e) => { setSteps(e.currentTarget.value) }} aria-describedby="promote-steps-help" aria-invalid={stepsError !== null} />
            <p id="promote-steps-help" class="help">Percent of deployments and time after the promotion, comma-separated: the first at 0s, the last 100%.</p>
            {stepsError !== null && <p class="field-error" role="alert">{stepsError}</p>}
          </div>
          <div class="field checkbox">
            <input id="promote-autopause" type="checkbox" checked={autoPause} onChange={(e) => { setAutoPause(e.currentTarget.checked) }} />
            <label for="promote-autopause">Pause automatically when applies fail</label>
          </div>
          {autoPause && (
            <div class="inline-fields">
              <div class="field"><label for="ap-failures">Failed deployments</label><input id="ap-failures" type="number" min={1} value={maxFailures} onInput={(e) => { setMaxFailures(e.currentTarget.value) }} /></div>
              <div class="field"><label for="ap-rate">Failure rate (%)</label><input id="ap-rate" type="number" min={0} max={100} step="0.1" value={maxRate} onInput={(e) => { setMaxRate(e.currentTarget.value) }} /></div>
              <div class="field"><label for="ap-min">Reports before the rate counts</label><input id="ap-min" type="number" min={1} value={minReports} onInput={(e) => { setMinReports(e.currentTarget.value) }} /></div>
            </div>
          )}
        </fieldset>
      )}
      {problem !== null && <ProblemMessage problem={problem} />}
      {doneMessage}
      <button id="promote-submit" type="submit" class="primary" disabled={busy}>Promote</button>
    </form>
  )
}

function RolloutActions ({ rollout, frozen, onAction, onDialog }: { rollout: Rollout, frozen: boolean, onAction: (path: string) => void, onDialog: (d: Dialog) => void }) {
  if (rollout.state === 'complete') return null
  // A freeze refuses resume and complete (423): they would admit more deployments. A pause,
  // the emergency stop, stays offered.
  return (
    <div class="actions" role="group" aria-label={`Rollout of ${rollout.version}`}>
      {rollout.state === 'rolling' && <button type="button" class="secondary" onClick={() => { onDialog({ kind: 'pause', version: rollout.version }) }}>Pause {rollout.version}</button>}
      {!frozen && rollout.state === 'paused' && <button type="button" class="primary" onClick={() => { onAction(`/rollouts/${seg(rollout.version)}/resume`) }}>Resume {rollout.version}</button>}
      {!frozen && <button type="button" class="secondary" onClick={() => { onDialog({ kind: 'complete', version: rollout.version }) }}>Complete {rollout.version}</button>}
      {frozen && <span class="muted">Resume and complete wait for the channel to be unfrozen.</span>}
    </div>
  )
}

export function ChannelPage ({ name, session }: { name: string, session: Session }) {
  useEffect(() => { document.title = `${name} · chartcast` }, [name])
  const canAct = session.role !== 'reader'
  const base = `/channels/${seg(name)}`
  const detail = useResource(async () => await get<ChannelDetail>(base), name)
  const history = useResource(async () => (await get<{ events: ChannelEvent[] }>(`${base}/releases`)).events, name)
  const fleet = useResource(async () => await get<ChannelFleet>(`${base}/fleet`), name)
  const [liveFleet, setLiveFleet] = useState<ChannelFleet | null>(null)
  const [dialog, setDialog] = useState<Dialog>(null)
  const [actionProblem, setActionProblem] = useState<ApiProblem | null>(null)
  const [reason, setReason] = useState('')
  const [rollback, setRollback] = useState(false)
  const [until, setUntil] = useState('')

  const reloadAll = () => { detail.reload(); history.reload() }
  useLiveEvent('channel', (change) => { if (change.channel === name) reloadAll() })
  useLiveEvent('fleet', (summary) => { if (summary.channel === name) { setLiveFleet(summary); detail.reload() } })
  useLiveEvent('resync', () => { reloadAll(); fleet.reload(); setLiveFleet(null) })

  const act = (path: string, method = 'POST', body?: unknown) => {
    setActionProblem(null)
    api(method, `${base}${path}`, body).then(reloadAll, (error: unknown) => { setActionProblem(asProblem(error)) })
  }
  useReloadAt((detail.data?.rollouts ?? []).map((r) => r.nextStepAt), detail.reload)
  const openDialog = (d: Dialog) => { setReason(''); setRollback(false); setUntil(''); setDialog(d) }
  const closeDialog = () => { setDialog(null) }

  if (detail.problem !== null && detail.data === undefined) {
    return (<><h1>Channel {name}</h1><ProblemMessage problem={detail.problem} onRetry={detail.reload} /><p><Link to="/">All channels</Link></p></>)
  }
  const data = detail.data
  if (data === undefined) return (<><h1>Channel {name}</h1><Loading what="the channel" /></>)
  const rollouts = data.rollouts ?? []
  const rolloutOf = new Map(rollouts.map((r) => [r.version, r]))
  const freeze = data.freeze ?? null
  const shownFleet = liveFleet ?? fleet.data

  return (
    <>
      <p class="crumbs"><Link to="/">Channels</Link> / {name}</p>
      <h1>Channel {name}</h1>
      {data.description !== '' && <p>{data.description}</p>}
      <dl class="facts">
        <dt>Head</dt><dd>{data.head ?? <span class="muted">no release yet</span>}</dd>
        <dt>Accepts</dt><dd>{data.accepts ?? 'any version'}</dd>
        <dt>Poll interval</dt><dd>{data.pollInterval ?? 'agent default'}</dd>
        <dt>Freeze</dt><dd><FreezeState freeze={freeze} /></dd>
        <dt>Revision</dt><dd>{data.revision}</dd>
      </dl>
      {canAct && (
        <div class="actions">
          {freeze === null
            ? <button type="button" class="secondary" onClick={() => { openDialog({ kind: 'freeze' }) }}>Freeze channel</button>
            : <button type="button" class="secondary" onClick={() => { openDialog({ kind: 'unfreeze' }) }}>Unfreeze channel</button>}
        </div>
      )}
      {actionProblem !== null && <ProblemMessage problem={actionProblem} />}

      <section aria-labelledby="rollouts-heading">
        <h2 id="rollouts-heading">Rollouts</h2>
        {rollouts.length === 0
          ? <p class="muted">No staged rollout in this channel.</p>
          : rollouts.map((rollout) => (
            <div key={rollout.version} class="rollout-row">
              <RolloutProgress rollout={rollout} />
              {canAct && <RolloutActions rollout={rollout} frozen={freeze !== null} onAction={(path) => { act(path) }} onDialog={openDialog} />}
            </div>
          ))}
      </section>

      {canAct && (
        <section aria-labelledby="promote-heading">
          <h2 id="promote-heading">Promote</h2>
          {freeze !== null
            ? <p class="muted">The channel is frozen: promotions are refused until it is unfrozen{freeze.until !== null ? <> or the freeze ends at <Time at={freeze.until} /></> : ''}.</p>
            : <PromoteForm channel={name} active={data.releases.map((r) => r.version)} onDone={reloadAll} />}
        </section>
      )}

      <section aria-labelledby="releases-heading">
        <h2 id="releases-heading">Releases in {name}</h2>
        {data.releases.length === 0
          ? <Empty title="No release in this channel">{canAct ? 'Promote a published release above.' : 'A publisher promotes releases into it.'}</Empty>
          : (
            <table>
              <thead><tr><th scope="col">Version</th><th scope="col">Promoted</th><th scope="col">By</th><th scope="col">Rollout</th>{canAct && <th scope="col">Actions</th>}</tr></thead>
              <tbody>
                {data.releases.map((r) => (
                  <tr key={r.version}>
                    <th scope="row">{r.version}{r.version === data.head ? ' (head)' : ''}</th>
                    <td><Time at={r.promotedAt} /></td>
                    <td>{r.promotedBy}</td>
                    <td>{rolloutOf.get(r.version) !== undefined ? `${rolloutOf.get(r.version)!.percent}% ${rolloutOf.get(r.version)!.state}` : 'everyone'}</td>
                    {canAct && <td><button type="button" class="danger" onClick={() => { openDialog({ kind: 'withdraw', version: r.version }) }}>Withdraw {r.version}</button></td>}
                  </tr>
                ))}
              </tbody>
            </table>)}
      </section>

      <section aria-labelledby="fleet-heading">
        <h2 id="fleet-heading">Fleet</h2>
        {shownFleet !== undefined
          ? <FleetVersionChart fleet={shownFleet} label={`Versions running in ${name}`} />
          : fleet.problem !== null ? <ProblemMessage problem={fleet.problem} /> : <Loading what="the fleet" />}
        <p><Link to={`/fleet?channel=${seg(name)}`}>Deployments of {name}</Link></p>
      </section>

      <section aria-labelledby="history-heading">
        <h2 id="history-heading">History</h2>
        {history.problem !== null && <ProblemMessage problem={history.problem} onRetry={history.reload} />}
        {history.data === undefined && history.problem === null && <Loading what="the history" />}
        {history.data !== undefined && history.data.length === 0 && <Empty title="Nothing has happened in this channel yet" />}
        {history.data !== undefined && history.data.length > 0 && (
          <table>
            <thead><tr><th scope="col">When</th><th scope="col">Action</th><th scope="col">Version</th><th scope="col">By</th><th scope="col">Reason</th></tr></thead>
            <tbody>
              {history.data.map((e) => (
                <tr key={e.id}><td><Time at={e.at} /></td><td>{e.action}</td><td>{e.version}</td><td>{e.actor}</td><td>{e.reason ?? ''}</td></tr>
              ))}
            </tbody>
          </table>
        )}
      </section>

      {dialog?.kind === 'withdraw' && (
        <ActionDialog title={`Withdraw ${dialog.version} from ${name}?`} confirmLabel={`Withdraw ${dialog.version}`} danger onClose={closeDialog}
          onConfirm={async () => { await api('DELETE', `${base}/releases/${seg(dialog.version)}${query({ reason, rollback: rollback ? 'true' : undefined })}`); reloadAll() }}>
          <p>Nobody new gets {dialog.version}; deployments fall back to the next highest release in the channel.</p>
          <div class="field"><label for="withdraw-reason">Reason</label><input id="withdraw-reason" type="text" required value={reason} onInput={(e) => { setReason(e.currentTarget.value) }} /></div>
          <div class="field checkbox">
            <input id="withdraw-rollback" type="checkbox" checked={rollback} onChange={(e) => { setRollback(e.currentTarget.checked) }} />
            <label for="withdraw-rollback">Roll back deployments that run {dialog.version} (a sanctioned downgrade)</label>
          </div>
        </ActionDialog>
      )}
      {dialog?.kind === 'pause' && (
        <ActionDialog title={`Pause the rollout of ${dialog.version}?`} confirmLabel={`Pause ${dialog.version}`} onClose={closeDialog}
          onConfirm={async () => { await api('POST', `${base}/rollouts/${seg(dialog.version)}/pause`, { reason }); reloadAll() }}>
          <p>Nobody new gets {dialog.version} while it is paused; those who have it keep it.</p>
          <div class="field"><label for="pause-reason">Reason</label><input id="pause-reason" type="text" required value={reason} onInput={(e) => { setReason(e.currentTarget.value) }} /></div>
        </ActionDialog>
      )}
      {dialog?.kind === 'complete' && (
        <ActionDialog title={`Complete the rollout of ${dialog.version}?`} confirmLabel={`Complete ${dialog.version}`} danger onClose={closeDialog}
          onConfirm={async () => { await api('POST', `${base}/rollouts/${seg(dialog.version)}/complete`); reloadAll() }}>
          <p>Every deployment of {name} gets {dialog.version} at its next poll.</p>
        </ActionDialog>
      )}
      {dialog?.kind === 'freeze' && (
        <ActionDialog title={`Freeze ${name}?`} confirmLabel="Freeze" onClose={closeDialog}
          onConfirm={async () => { await api('POST', `${base}/freeze`, { reason, ...(until !== '' && { until: new Date(until).toISOString() }) }); reloadAll() }}>
          <p>Promotions are refused and rollout steps wait while the channel is frozen; withdrawals and pauses still work.</p>
          <div class="field"><label for="freeze-reason">Reason</label><input id="freeze-reason" type="text" required value={reason} onInput={(e) => { setReason(e.currentTarget.value) }} /></div>
          <div class="field"><label for="freeze-until">Until (optional, your local time)</label><input id="freeze-until" type="datetime-local" value={until} onInput={(e) => { setUntil(e.currentTarget.value) }} /></div>
        </ActionDialog>
      )}
      {dialog?.kind === 'unfreeze' && (
        <ActionDialog title={`Unfreeze ${name}?`} confirmLabel="Unfreeze" danger onClose={closeDialog}
          onConfirm={async () => { await api('DELETE', `${base}/freeze`); reloadAll() }}>
          <p>Promotions are accepted again and paused rollout steps resume their schedule.</p>
        </ActionDialog>
      )}
    </>
  )
}
