/**
 * kill -9 during a stream of publishes and promotions, on the real server process, then a
 * restart on the same data: every write that got a 2xx is there and complete, nothing is
 * half-written, and an unacknowledged write can simply be retried. Run on PostgreSQL by
 * crash-postgres.test.ts and on the embedded PGlite data directory by crash-pglite.test.ts
 * (two files, so tap runs them side by side).
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Test } from 'tap'
import { SignJWT } from 'jose'
import { generateLicenseKeyPair } from '../../src/license-tools.js'
import { spawnServer, type ServerProcess } from '../helpers/process.js'

const WORKERS = 6
/** Kill once this many publishes were acknowledged (more are in flight at that moment). */
const KILL_AFTER_ACKS = 40

interface Sent { version: string, body: { version: string, chart: Record<string, string>, values: Record<string, unknown>, notes: string } }

function releaseBody (version: string, worker: number, n: number): Sent['body'] {
  return {
    version,
    chart: { url: 'oci://registry.example.com/charts/acme', version: `0.${worker}.${n}` },
    // Big enough that a write is more than one page: a torn write would show.
    values: { worker, n, blob: randomBytes(3_000).toString('base64'), list: Array.from({ length: 50 }, (_, i) => ({ i, v: `${version}-${i}` })) },
    notes: `worker ${worker}, release ${n}`
  }
}

async function adminToken (secret: string, role: string): Promise<string> {
  return await new SignJWT({ role }).setProtectedHeader({ alg: 'HS256' }).setSubject(`crash-${role}`).setIssuedAt().setExpirationTime('1h').setJti(randomUUID()).sign(new TextEncoder().encode(secret))
}

export async function crashScenario (t: Test, databaseEnv: Record<string, string>): Promise<void> {
  const scratch = mkdtempSync(path.join(tmpdir(), 'chartcast-crash-'))
  t.teardown(() => rmSync(scratch, { recursive: true, force: true }))
  const keys = await generateLicenseKeyPair('ES256')
  writeFileSync(path.join(scratch, 'license.pem'), keys.publicPem)
  mkdirSync(path.join(scratch, 'channels'))
  const secret = randomBytes(32).toString('hex')
  const env = {
    ...databaseEnv,
    DATA_DIR: path.join(scratch, 'data'),
    CHANNELS_DIR: path.join(scratch, 'channels'),
    LICENSE_PUBLIC_KEYS: path.join(scratch, 'license.pem'),
    AUTH_SECRET: secret,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_API: '0'
  }
  const publisher = await adminToken(secret, 'publisher')
  const admin = await adminToken(secret, 'admin')
  const call = async (server: ServerProcess, method: string, url: string, token: string, body?: unknown): Promise<Response> =>
    await fetch(server.url + url, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) }, ...(body !== undefined && { body: JSON.stringify(body) }) })

  let server = await spawnServer(env)
  let stopped = false
  t.teardown(async () => { await server.kill() })
  t.equal((await call(server, 'PUT', '/channels/stable', admin, { values: { tier: 'stable' } })).status, 201)

  const attempted = new Map<string, Sent['body']>()
  const acked = new Map<string, string>() // version -> digest from the 201
  const promotedAcked = new Set<string>()
  let killed: Promise<void> | null = null

  const worker = async (w: number): Promise<void> => {
    for (let n = 0; !stopped; n++) {
      const version = `1.${w}.${n}`
      const body = releaseBody(version, w, n)
      attempted.set(version, body)
      try {
        const res = await call(server, 'POST', '/releases', publisher, body)
        if (res.status !== 201) throw new Error(`publish ${version}: ${res.status} ${await res.text()}`)
        acked.set(version, ((await res.json()) as { digest: string }).digest)
        if (n % 3 === 0) {
          const pro = await call(server, 'POST', '/channels/stable/releases', publisher, { version })
          if (pro.status !== 201) throw new Error(`promote ${version}: ${pro.status} ${await pro.text()}`)
          promotedAcked.add(version)
        }
      } catch (error) {
        if (stopped) return // the kill cut this request off: not acknowledged
        throw error
      }
      if (acked.size >= KILL_AFTER_ACKS && killed === null) {
        stopped = true
        // Whether the workers' requests are in flight at the kill is a race; this one always is
        // from the client's side: sent, and its answer never read (whether it was committed or
        // not), so there is always an unacknowledged publish to retry.
        const cutOff = `9.${w}.${n}`
        attempted.set(cutOff, releaseBody(cutOff, w, n))
        void call(server, 'POST', '/releases', publisher, attempted.get(cutOff)).catch(() => {})
        killed = server.kill('SIGKILL')
      }
    }
  }
  await Promise.all(Array.from({ length: WORKERS }, async (_, w) => { await worker(w) }))
  await killed
  t.ok(server.child.signalCode === 'SIGKILL', 'the server was killed with SIGKILL')
  t.ok(acked.size >= KILL_AFTER_ACKS, `${acked.size} publishes acknowledged before the kill, ${attempted.size - acked.size} cut off`)

  server = await spawnServer(env)

  const list = await call(server, 'GET', '/releases', admin)
  t.equal(list.status, 200)
  const stored = ((await list.json()) as { releases: Array<{ version: string, digest: string }> }).releases

  t.test('every acknowledged publish is there, complete', async (t) => {
    for (const [version, digest] of acked) {
      const res = await call(server, 'GET', `/releases/${version}`, admin)
      t.equal(res.status, 200, `${version} is there`)
      const release = await res.json() as Sent['body'] & { digest: string }
      const sent = attempted.get(version)!
      t.equal(release.digest, digest, `${version}: digest as acknowledged`)
      t.same({ chart: release.chart, values: release.values, notes: release.notes }, { chart: sent.chart, values: sent.values, notes: sent.notes }, `${version}: full content`)
    }
  })

  t.test('nothing is half-written: every stored release is one that was sent, whole', async (t) => {
    for (const { version, digest } of stored) {
      const sent = attempted.get(version)
      t.ok(sent !== undefined, `${version} was sent`)
      if (acked.has(version)) continue
      // Committed but the response was lost in the kill: it must still be whole.
      const res = await call(server, 'GET', `/releases/${version}`, admin)
      const release = await res.json() as Sent['body']
      t.same({ chart: release.chart, values: release.values, notes: release.notes }, { chart: sent?.chart, values: sent?.values, notes: sent?.notes }, `${version} (unacknowledged, committed): full content`)
      t.ok(digest.length > 0)
    }
    const audit = await call(server, 'GET', '/audit?limit=500', admin)
    const entries = ((await audit.json()) as { entries: Array<{ action: string, target: string }> }).entries
    const publishes = entries.filter((e) => e.action === 'release.publish').map((e) => e.target).sort()
    t.same(publishes, stored.map((r) => `release:${r.version}`).sort(), 'exactly one audit row per stored release, and none for anything else')
    t.equal(entries.filter((e) => e.action === 'channel.promote').length >= promotedAcked.size, true, 'an audit row per acknowledged promotion')
  })

  t.test('every acknowledged promotion is there', async (t) => {
    const res = await call(server, 'GET', '/channels/stable', admin)
    const channel = await res.json() as { head: string | null, releases: Array<{ version: string }> }
    const inChannel = new Set(channel.releases.map((r) => r.version))
    for (const version of promotedAcked) t.ok(inChannel.has(version), `${version} is in stable`)
    for (const version of inChannel) t.ok(acked.has(version) || attempted.has(version), `${version} in stable was sent`)
  })

  t.test('an unacknowledged publish can be retried: 201 if it was lost, 200 if it was committed, never a conflict', async (t) => {
    const unacked = [...attempted.keys()].filter((v) => !acked.has(v))
    t.ok(unacked.length > 0, `${unacked.length} unacknowledged publishes to retry`)
    for (const version of unacked) {
      const committed = (await call(server, 'GET', `/releases/${version}`, admin)).status === 200
      const res = await call(server, 'POST', '/releases', publisher, attempted.get(version))
      t.equal(res.status, committed ? 200 : 201, `retry of ${version} (${committed ? 'committed before the kill' : 'lost in the kill'}): ${res.status}`)
      const release = await (await call(server, 'GET', `/releases/${version}`, admin)).json() as Sent['body']
      const sent = attempted.get(version)
      t.same({ chart: release.chart, values: release.values, notes: release.notes }, { chart: sent?.chart, values: sent?.values, notes: sent?.notes }, `${version} after the retry: full content`)
    }
  })
  t.teardown(() => { stopped = true })
}
