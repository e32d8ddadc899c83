/**
 * The chartcast dashboard: Preact (a 4 kB React-compatible library) built by Vite, served by the
 * server at /ui/. It talks only to the public API, with the session cookie.
 */
import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { api, ApiProblem, get, whenUnauthorized, type Session } from './api.js'
import { ProblemMessage, Loading } from './components/status.js'
import { asProblem } from './hooks.js'
import { connectLive, disconnectLive, useLiveState, whenLiveRefused } from './live.js'
import { Link, useLocation } from './router.js'
import { AuditPage } from './pages/audit.js'
import { ChannelPage } from './pages/channel.js'
import { ChannelsPage } from './pages/channels.js'
import { FleetPage } from './pages/fleet.js'
import { LoginPage } from './pages/login.js'
import { ReleasesPage } from './pages/releases.js'
import './styles.css'

function LiveIndicator () {
  const state = useLiveState()
  const text = state === 'live' ? 'Live' : state === 'connecting' ? 'Connecting…' : 'Reconnecting…'
  return <span class={`live live-${state}`} role="status" aria-label={`Live updates: ${text}`}>{text}</span>
}

function Nav ({ session, path }: { session: Session, path: string }) {
  const items: Array<[string, string]> = [['/', 'Channels'], ['/releases', 'Releases'], ['/fleet', 'Fleet']]
  if (session.role === 'admin') items.push(['/audit', 'Audit log'])
  const current = (to: string) => to === '/' ? path === '/' || path.startsWith('/channels/') : path.startsWith(to)
  return (
    <nav aria-label="Main">
      <ul>
        {items.map(([to, label]) => <li key={to}><Link to={to} aria-current={current(to) ? 'page' : undefined}>{label}</Link></li>)}
      </ul>
    </nav>
  )
}

function Page ({ session, path }: { session: Session, path: string }) {
  const channel = /^\/channels\/([^/]+)\/?$/.exec(path)
  if (channel !== null) return <ChannelPage name={decodeURIComponent(channel[1]!)} session={session} />
  if (path === '/' || path === '/channels' || path === '/channels/') return <ChannelsPage session={session} />
  if (path.startsWith('/releases')) return <ReleasesPage />
  if (path.startsWith('/fleet')) return <FleetPage />
  if (path.startsWith('/audit')) return <AuditPage />
  return (
    <>
      <h1>Page not found</h1>
      <p>There is no dashboard page at this address. <Link to="/">Go to the channels</Link>.</p>
    </>
  )
}

function Shell ({ session, onSignedOut }: { session: Session, onSignedOut: () => void }) {
  const { path } = useLocation()
  useEffect(() => { connectLive() }, [])
  const signOut = async () => {
    try {
      await api('DELETE', '/auth/session')
    } finally {
      disconnectLive()
      onSignedOut()
    }
  }
  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <span class="brand">chartcast</span>
        <Nav session={session} path={path} />
        <div class="who">
          <LiveIndicator />
          <span>Signed in as <strong>{session.subject}</strong> ({session.role})</span>
          <button type="button" class="secondary" onClick={() => { void signOut() }}>Sign out</button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Page session={session} path={path} />
      </main>
    </>
  )
}

function App () {
  const [session, setSession] = useState<Session | null | undefined>(undefined)
  const [problem, setProblem] = useState<ApiProblem | null>(null)
  useEffect(() => {
    whenUnauthorized(() => { disconnectLive(); setSession(null) })
    // A refused event stream may mean the session ended (signed out elsewhere, its token revoked):
    // then show the sign-in page at once rather than "Reconnecting…" until the next click.
    whenLiveRefused(() => {
      get<Session>('/auth/session').catch((error: unknown) => {
        if (asProblem(error).status === 401) {
          disconnectLive()
          setSession(null)
        }
      })
    })
    get<Session>('/auth/session').then(setSession, (error: unknown) => {
      const p = asProblem(error)
      if (p.status === 401 || p.status === 404) setSession(null)
      else setProblem(p)
    })
  }, [])
  if (problem !== null) return <main id="main"><h1>chartcast</h1><ProblemMessage problem={problem} onRetry={() => { location.reload() }} /></main>
  if (session === undefined) return <main id="main"><h1>chartcast</h1><Loading what="your session" /></main>
  if (session === null) return <LoginPage onSignedIn={setSession} />
  return <Shell session={session} onSignedOut={() => { setSession(null) }} />
}

render(<App />, document.getElementById('app')!)
