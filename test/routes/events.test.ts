/**
 * GET /events on both databases: who may open it, what it streams when a channel or its fleet
 * changes on this replica or on another one (test/helpers/replicas.ts), and its bounds.
 */
import t from 'tap'
import { issuePublisherToken } from '../../src/token-tools.js'
import { openEventStream, openTenStreams, type EventStream } from '../helpers/event-stream.js'
import { twoReplicas } from '../helpers/replicas.js'
import { buildTestServer, testDrivers } from '../helpers/server.js'

for (const driver of testDrivers()) {
  t.test(driver, async (t) => {
    t.test('without a token it is 401, with a reader token a text/event-stream that says who it is for', async (t) => {
      const s = await buildTestServer(t, { driver })
      const base = await s.listen()
      const refused = await openEventStream(base, null)
      t.equal(refused.status, 401)
      t.equal(JSON.parse(refused.body).code, 'UNAUTHORIZED')
      const stream = await openEventStream(base, s.tokens.reader)
      t.teardown(() => { stream.close() })
      t.equal(stream.status, 200)
      t.match(stream.headers['content-type'], /^text\/event-stream/)
      t.equal(stream.headers['cache-control'], 'no-cache, no-transform')
      t.same(await stream.next('ready'), { subject: 'rob-reader', role: 'reader' })
    })

    t.test('a promotion and a withdrawal on the other replica are channel events on this one', async (t) => {
      const { a, b } = await twoReplicas(t, driver)
      const stream = await openEventStream(await a.listen(), a.tokens.reader)
      t.teardown(() => { stream.close() })
      await stream.next('ready')
      t.equal((await b.putChannel('stable')).statusCode, 201)
      await b.publish('1.0.0')
      await b.publish('1.1.0')
      t.equal((await b.promote('stable', '1.0.0')).statusCode, 201)
      t.equal((await b.promote('stable', '1.1.0')).statusCode, 201)
      const promoted = await stream.next('channel', (d) => d.head === '1.1.0')
      t.equal(promoted.channel, 'stable')
      t.type(promoted.revision, 'number')
      const withdrawn = await b.app.inject({ method: 'DELETE', url: '/channels/stable/releases/1.1.0?reason=bad', headers: { authorization: `Bearer ${b.tokens.publisher}` } })
      t.equal(withdrawn.statusCode, 204)
      const fallback = await stream.next('channel', (d) => d.head === '1.0.0')
      t.ok(fallback.revision > promoted.revision, 'the revision moved on')
    })

    t.test('a staged promotion and a pause on the other replica are rollouts events here', async (t) => {
      const { a, b } = await twoReplicas(t, driver)
      const stream = await openEventStream(await a.listen(), a.tokens.reader)
      t.teardown(() => { stream.close() })
      await stream.next('ready')
      await b.putChannel('stable')
      await b.publish('1.0.0')
      const auth = { authorization: `Bearer ${b.tokens.publisher}` }
      const promoted = await b.app.inject({ method: 'POST', url: '/channels/stable/releases', headers: auth, payload: { version: '1.0.0', rollout: { steps: [{ percent: 10, after: '0s' }, { percent: 100, after: '1h' }] } } })
      t.equal(promoted.statusCode, 201)
      const rolling = await stream.next('rollouts', (d) => d.rollouts.length === 1)
      t.match(rolling, { channel: 'stable', rollouts: [{ version: '1.0.0', state: 'rolling', percent: 10 }] })
      const paused = await b.app.inject({ method: 'POST', url: '/channels/stable/rollouts/1.0.0/pause', headers: auth, payload: { reason: 'looking into a report' } })
      t.equal(paused.statusCode, 200)
      const after = await stream.next('rollouts', (d) => d.rollouts[0]?.state === 'paused')
      t.equal(after.rollouts[0].pausedReason, 'looking into a report')
    })

    t.test('check-ins and failure reports flushed on the other replica are a fleet summary here', async (t) => {
      const { a, b } = await twoReplicas(t, driver)
      await b.putChannel('stable')
      await b.publish('1.0.0')
      await b.promote('stable', '1.0.0')
      const stream = await openEventStream(await a.listen(), a.tokens.reader)
      t.teardown(() => { stream.close() })
      await stream.next('ready')
      const licenses = await Promise.all(['c1', 'c2', 'c3'].map(async (sub) => await b.license({ sub, channels: ['stable'] })))
      for (const license of licenses) {
        const pull = await b.app.inject({ url: '/channels/stable/spec', headers: { authorization: `Bearer ${license}`, 'chartcast-applied': '1.0.0' } })
        t.equal(pull.statusCode, 200)
      }
      await b.app.checkins.flush()
      const running = await stream.next('fleet', (d) => d.total === 3)
      t.same(running.byVersion, { '1.0.0': { deployments: 3, applied: 0, failed: 0 } })
      for (const license of licenses.slice(0, 2)) {
        const report = await b.app.inject({ method: 'POST', url: '/channels/stable/reports', headers: { authorization: `Bearer ${license}` }, payload: { version: '1.0.0', outcome: 'failed', detail: 'helm: timed out' } })
        t.equal(report.statusCode, 202)
      }
      await b.app.checkins.flush()
      const failing = await stream.next('fleet', (d) => d.byVersion['1.0.0']?.failed === 2)
      t.same(failing, { channel: 'stable', total: 3, stale: 0, staleAfterSeconds: 86400, byVersion: { '1.0.0': { deployments: 3, applied: 0, failed: 2 } } })
    })

    t.test('a token may hold 10 streams; the 11th is 429 RATE_LIMITED, and closing one frees its place', async (t) => {
      const s = await buildTestServer(t, { driver })
      const base = await s.listen()
      const streams: EventStream[] = []
      for (let i = 0; i < 10; i++) {
        const stream = await openEventStream(base, s.tokens.reader)
        t.equal(stream.status, 200)
        streams.push(stream)
      }
      t.teardown(() => { for (const stream of streams) stream.close() })
      const refused = await openEventStream(base, s.tokens.reader)
      t.equal(refused.status, 429)
      t.equal(JSON.parse(refused.body).code, 'RATE_LIMITED')
      const other = await openEventStream(base, s.tokens.publisher)
      t.equal(other.status, 200, 'another token is not held back')
      streams.push(other)
      streams[0]!.close()
      await streams[0]!.ended
      // The server sees the close asynchronously: wait for the count to drop, then open again.
      while (s.app.events.size > 10) await new Promise((resolve) => setImmediate(resolve))
      const again = await openEventStream(base, s.tokens.reader)
      t.equal(again.status, 200)
      streams.push(again)
    })

    t.test('sessions signed in with one token share its 10 streams: signing in again gives no more', async (t) => {
      const s = await buildTestServer(t, { driver })
      const base = await s.listen()
      const cookieOf = async (token: string): Promise<string> => {
        const signIn = await s.app.inject({ method: 'POST', url: '/auth/session', payload: { token } })
        t.equal(signIn.statusCode, 200, signIn.body)
        return [signIn.headers['set-cookie']].flat().find((c) => c?.startsWith('chartcast_session='))!.split(';')[0]!
      }
      const first = await cookieOf(s.tokens.reader)
      const second = await cookieOf(s.tokens.reader)
      const streams = await openTenStreams(t, base, first, second)
      for (const credential of [{ cookie: first }, { cookie: second }, { cookie: await cookieOf(s.tokens.reader) }, s.tokens.reader]) {
        const refused = await openEventStream(base, credential)
        t.equal(refused.status, 429)
        t.equal(JSON.parse(refused.body).code, 'RATE_LIMITED')
      }
      const other = await openEventStream(base, { cookie: await cookieOf(s.tokens.publisher) })
      t.equal(other.status, 200, 'a session made from another token is not held back')
      streams.push(other)
      // Signing out one session ends its streams only, and frees their places for the token.
      const signOut = await s.app.inject({ method: 'DELETE', url: '/auth/session', headers: { cookie: first, origin: 'http://localhost' } }) // inject's Host is localhost
      t.equal(signOut.statusCode, 204)
      await Promise.all(streams.slice(0, 5).map(async (stream) => { await stream.ended }))
      while (s.app.events.size > 6) await new Promise((resolve) => setImmediate(resolve))
      t.equal((await openEventStream(base, { cookie: second }).then((stream) => { streams.push(stream); return stream })).status, 200)
    })

    t.test('revoking the token ends its stream', async (t) => {
      const s = await buildTestServer(t, { driver })
      const { token, jti } = await issuePublisherToken(s.authSecret, { sub: 'temp', role: 'reader', expiresIn: 3600 })
      const stream = await openEventStream(await s.listen(), token)
      t.teardown(() => { stream.close() })
      await stream.next('ready')
      const revoked = await s.app.inject({ method: 'POST', url: '/tokens/revocations', headers: { authorization: `Bearer ${s.tokens.admin}` }, payload: { jti, reason: 'left the team' } })
      t.equal(revoked.statusCode, 201)
      await stream.ended
      t.pass('the stream ended')
    })

    t.test('a dashboard session opens a stream with its cookie, and signing out ends it', async (t) => {
      const s = await buildTestServer(t, { driver })
      const base = await s.listen()
      const signIn = await s.app.inject({ method: 'POST', url: '/auth/session', payload: { token: s.tokens.publisher } })
      t.equal(signIn.statusCode, 200)
      const setCookie = [signIn.headers['set-cookie']].flat().find((c) => c?.startsWith('chartcast_session='))
      t.ok(setCookie, 'the session cookie was set')
      const cookie = setCookie!.split(';')[0]!
      const stream = await openEventStream(base, { cookie })
      t.teardown(() => { stream.close() })
      t.equal(stream.status, 200)
      t.same(await stream.next('ready'), { subject: 'rita-release', role: 'publisher' })
      const signOut = await s.app.inject({ method: 'DELETE', url: '/auth/session', headers: { cookie, origin: 'http://localhost' } }) // inject's Host is localhost
      t.equal(signOut.statusCode, 204)
      await stream.ended
      t.pass('the stream ended with the session')
    })

    t.test('revoking the publisher token a dashboard session was made from ends that session\'s open stream at once', async (t) => {
      const s = await buildTestServer(t, { driver })
      const base = await s.listen()
      const { token, jti } = await issuePublisherToken(s.authSecret, { sub: 'temp-release', role: 'publisher', expiresIn: 3600 })
      const cookieOf = async (credential: string): Promise<string> => {
        const signIn = await s.app.inject({ method: 'POST', url: '/auth/session', payload: { token: credential } })
        t.equal(signIn.statusCode, 200, signIn.body)
        return [signIn.headers['set-cookie']].flat().find((c) => c?.startsWith('chartcast_session='))!.split(';')[0]!
      }
      const revokedSession = await openEventStream(base, { cookie: await cookieOf(token) })
      const otherSession = await openEventStream(base, { cookie: await cookieOf(s.tokens.publisher) })
      t.teardown(() => { revokedSession.close(); otherSession.close() })
      t.same(await revokedSession.next('ready'), { subject: 'temp-release', role: 'publisher' })
      await otherSession.next('ready')
      const revoked = await s.app.inject({ method: 'POST', url: '/tokens/revocations', headers: { authorization: `Bearer ${s.tokens.admin}` }, payload: { jti, reason: 'leaked' } })
      t.equal(revoked.statusCode, 201)
      await revokedSession.ended
      t.pass('the stream of the session made from the revoked token ended')
      // The other session's stream is still open: it gets the next change.
      t.equal((await s.putChannel('stable')).statusCode, 201)
      t.match(await otherSession.next('channel'), { channel: 'stable' })
    })

    t.test('closing the server ends open streams instead of waiting for them', async (t) => {
      const s = await buildTestServer(t, { driver })
      const stream = await openEventStream(await s.listen(), s.tokens.reader)
      await stream.next('ready')
      await s.close()
      await stream.ended
      t.pass('closed with a stream open')
    })
  })
}
