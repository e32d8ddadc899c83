import { useEffect, useState } from 'preact/hooks'
import { api, get, type ApiProblem, type Session } from '../api.js'
import { ProblemMessage } from '../components/status.js'
import { asProblem } from '../hooks.js'

/** Sign in: single sign-on where OIDC is configured, and always with a publisher token from `chartcast token create`. */
export function LoginPage ({ onSignedIn }: { onSignedIn: (session: Session) => void }) {
  const [oidc, setOidc] = useState(false)
  const [token, setToken] = useState('')
  const [busy, setBusy] = useState(false)
  const [problem, setProblem] = useState<ApiProblem | null>(null)
  useEffect(() => {
    document.title = 'Sign in · chartcast'
    get<{ oidc: boolean }>('/auth/config').then((config) => { setOidc(config.oidc) }, () => { setOidc(false) })
  }, [])
  const submit = async (event: Event) => {
    event.preventDefault()
    setBusy(true)
    setProblem(null)
    try {
      onSignedIn(await api<Session>('POST', '/auth/session', { token: token.trim() }))
    } catch (error) {
      setProblem(asProblem(error))
      setBusy(false)
    }
  }
  const returnTo = location.pathname.startsWith('/ui/') ? `${location.pathname}${location.search}` : '/ui/'
  return (
    <main id="main" class="login">
      <h1>Sign in to chartcast</h1>
      {oidc && (
        <p><a class="button primary" href={`/auth/oidc/login?returnTo=${encodeURIComponent(returnTo)}`}>Sign in with single sign-on</a></p>
      )}
      <form onSubmit={(event) => { void submit(event) }}>
        <h2>{oidc ? 'Or sign in with a token' : 'Sign in with a token'}</h2>
        <label for="token">Publisher token</label>
        <input id="token" name="token" type="password" autoComplete="off" required value={token} onInput={(e) => { setToken(e.currentTarget.value) }} aria-describedby="token-help" />
        <p id="token-help" class="help">
          An operator creates one with <code>chartcast token create --sub YOUR-NAME --role publisher</code> (reader, publisher or admin).
          The browser keeps only a session cookie, never the token.
        </p>
        {problem !== null && <ProblemMessage problem={problem} />}
        <button type="submit" class="primary" disabled={busy}>Sign in</button>
      </form>
    </main>
  )
}
