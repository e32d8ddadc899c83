import { useEffect, useState } from 'preact/hooks'
import { get, seg, type Channel, type ChannelDetail, type ChannelFleet, type Session } from '../api.js'
import { FleetVersionChart } from '../components/fleet-version-chart.js'
import { FreezeState } from '../components/freeze-state.js'
import { RolloutProgress } from '../components/rollout-progress.js'
import { Empty, Loading, ProblemMessage } from '../components/status.js'
import { useReloadAt, useResource } from '../hooks.js'
import { useLiveEvent } from '../live.js'
import { Link } from '../router.js'

/** One channel's card: head, freeze, running rollouts and the fleet chart, kept current by live events. */
function ChannelCard ({ channel }: { channel: Channel }) {
  const detail = useResource(async () => await get<ChannelDetail>(`/channels/${seg(channel.name)}`), channel.name)
  const fleetResource = useResource(async () => await get<ChannelFleet>(`/channels/${seg(channel.name)}/fleet`), channel.name)
  const [liveFleet, setLiveFleet] = useState<ChannelFleet | null>(null)
  useLiveEvent('channel', (change) => { if (change.channel === channel.name) detail.reload() })
  useLiveEvent('fleet', (summary) => { if (summary.channel === channel.name) { setLiveFleet(summary); detail.reload() } })
  useLiveEvent('resync', () => { detail.reload(); fleetResource.reload(); setLiveFleet(null) })
  const data = detail.data
  useReloadAt((data?.rollouts ?? []).map((r) => r.nextStepAt), detail.reload)
  const fleet = liveFleet ?? fleetResource.data
  const running = (data?.rollouts ?? []).filter((r) => r.state !== 'complete')
  const headingId = `channel-${channel.name}`
  return (
    <section class="card" aria-labelledby={headingId}>
      <h2 id={headingId}><Link to={`/channels/${seg(channel.name)}`}>{channel.name}</Link></h2>
      {channel.description !== '' && <p class="muted">{channel.description}</p>}
      <dl class="facts">
        <dt>Head</dt><dd>{(data?.head ?? channel.head) ?? <span class="muted">no release yet</span>}</dd>
        <dt>Freeze</dt><dd><FreezeState freeze={data?.freeze ?? null} /></dd>
      </dl>
      {detail.problem !== null && <ProblemMessage problem={detail.problem} onRetry={detail.reload} />}
      <h3>Rollouts</h3>
      {data === undefined && detail.problem === null
        ? <Loading what="rollouts" />
        : running.length === 0
          ? <p class="muted">No rollout running.</p>
          : running.map((rollout) => <RolloutProgress key={rollout.version} rollout={rollout} />)}
      <h3>Fleet</h3>
      {fleet !== undefined
        ? <FleetVersionChart fleet={fleet} label={`Versions running in ${channel.name}`} />
        : fleetResource.problem !== null ? <ProblemMessage problem={fleetResource.problem} /> : <Loading what="the fleet" />}
    </section>
  )
}

export function ChannelsPage ({ session }: { session: Session }) {
  useEffect(() => { document.title = 'Channels · chartcast' }, [])
  const channels = useResource(async () => (await get<{ channels: Channel[] }>('/channels')).channels, 'channels')
  useLiveEvent('channel', (change) => {
    if (channels.data !== undefined && !channels.data.some((c) => c.name === change.channel)) channels.reload()
  })
  useLiveEvent('resync', () => { channels.reload() })
  return (
    <>
      <h1>Channels</h1>
      {channels.problem !== null && <ProblemMessage problem={channels.problem} onRetry={channels.reload} />}
      {channels.data === undefined && channels.problem === null && <Loading what="channels" />}
      {channels.data !== undefined && channels.data.length === 0 && (
        <Empty title="No channels yet">
          {session.role === 'admin'
            ? <>Create one with <code>PUT /channels/stable</code>, or add a channel file to CHANNELS_DIR.</>
            : <>An admin creates channels (<code>PUT /channels/:name</code> or a channel file).</>}
        </Empty>
      )}
      <div class="cards">
        {channels.data?.map((channel) => <ChannelCard key={channel.name} channel={channel} />)}
      </div>
    </>
  )
}
