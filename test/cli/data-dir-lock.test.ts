/**
 * One process at a time on an embedded DATA_DIR, with real processes: the built `chartcast
 * serve`, a second server and a CLI `sync` against it, kill -9 and a restart.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { generateLicenseKeyPair } from '../../src/license-tools.js'
import { HOLDER_NAME, LOCK_NAME } from '../../src/db/data-dir-lock.js'
import { emptyChannelsDir, runCli } from '../helpers/cli.js'
import { freePort, spawnServer, type ServerProcess } from '../helpers/process.js'
import { issuePublisherToken } from '../../src/token-tools.js'

const READY_TIMEOUT_MS = 120_000

t.test('one embedded DATA_DIR, one process: refusals name the holder, kill -9 leaves a lock the next start takes over', async (t) => {
  const scratch = mkdtempSync(path.join(tmpdir(), 'chartcast-lock-'))
  t.teardown(() => rmSync(scratch, { recursive: true, force: true }))
  const keys = await generateLicenseKeyPair('ES256')
  writeFileSync(path.join(scratch, 'license.pem'), keys.publicPem)
  const channelsDir = path.join(scratch, 'channels')
  mkdirSync(channelsDir)
  writeFileSync(path.join(channelsDir, 'stable.yaml'), 'name: stable\n')
  const secret = randomBytes(32).toString('hex')
  const dataDir = path.join(scratch, 'data')
  const env = { DATA_DIR: dataDir, CHANNELS_DIR: channelsDir, LICENSE_PUBLIC_KEYS: path.join(scratch, 'license.pem'), AUTH_SECRET: secret }
  const publisher = (await issuePublisherToken(secret, { sub: 'rita', role: 'publisher', expiresIn: 3600 })).token
  const servers: ServerProcess[] = []
  t.teardown(async () => { for (const server of servers) await server.kill() })

  const first = await spawnServer(env, READY_TIMEOUT_MS, 'dist')
  servers.push(first)
  const pid = first.child.pid!
  const published = await fetch(`${first.url}/releases`, {
    method: 'POST',
    headers: { authorization: `Bearer ${publisher}`, 'content-type': 'application/json' },
    body: JSON.stringify({ version: '1.0.0', chart: { url: 'https://charts.example.com/acme', name: 'acme', version: '0.1.0' } })
  })
  t.equal(published.status, 201, 'the first server acknowledges a write')

  const second = await runCli(['serve'], { ...env, PORT: String(await freePort()), HOST: '127.0.0.1' }, READY_TIMEOUT_MS)
  t.not(second.code, 0, 'a second server on the same DATA_DIR exits non-zero')
  t.match(second.stderr, new RegExp(`DATA_DIR ${dataDir} is in use by process ${pid} on host `), 'and names the PID holding it')

  writeFileSync(path.join(channelsDir, 'stable.yaml'), 'name: stable\ndescription: changed behind the server\n')
  const sync = await runCli(['sync', channelsDir], env, READY_TIMEOUT_MS)
  t.not(sync.code, 0, 'sync against a live server refuses')
  t.match(sync.stderr, new RegExp(`in use by process ${pid} `))
  t.notMatch(sync.stdout, /updated:/, 'and claims no update')

  await first.kill('SIGKILL')
  t.ok(existsSync(path.join(dataDir, LOCK_NAME)), 'kill -9 leaves the lock behind')

  const restarted = await spawnServer(env, READY_TIMEOUT_MS, 'dist')
  servers.push(restarted)
  t.match(restarted.output(), new RegExp(`locked by process ${pid}, which is no longer running`), 'the restart took the dead holder\'s lock over (at once or once stale, as load decides) and says so')
  const release = await fetch(`${restarted.url}/releases/1.0.0`, { headers: { authorization: `Bearer ${publisher}` } })
  t.equal(release.status, 200, 'the write the killed server acknowledged is there')

  await restarted.kill('SIGTERM')
  t.equal(restarted.child.exitCode, 0, 'a graceful stop exits 0')
  t.notOk(existsSync(path.join(dataDir, LOCK_NAME)), 'a graceful stop releases the lock')
  t.notOk(existsSync(path.join(dataDir, HOLDER_NAME)), 'and removes the holder record')

  // The restart synced the edited file at start-up; edit it again for the CLI to apply.
  writeFileSync(path.join(channelsDir, 'stable.yaml'), 'name: stable\ndescription: changed with the server stopped\n')
  const afterStop = await runCli(['sync', channelsDir], env, READY_TIMEOUT_MS)
  t.equal(afterStop.code, 0, afterStop.stderr)
  t.match(afterStop.stdout, /updated: stable/, 'with the server stopped, sync runs')
})

t.test('with DATABASE_URL no DATA_DIR lock is taken', { skip: process.env.TEST_DATABASE_URL === undefined ? 'TEST_DATABASE_URL not set' : false }, async (t) => {
  const { createThrowawayDatabase } = await import('../helpers/server.js')
  const throwaway = await createThrowawayDatabase()
  t.teardown(async () => { await throwaway.drop() })
  const dataDir = mkdtempSync(path.join(tmpdir(), 'chartcast-lock-pg-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const env = { DATA_DIR: dataDir, DATABASE_URL: throwaway.url, CHANNELS_DIR: emptyChannelsDir(path.join(dataDir, 'none')), AUTH_SECRET: randomBytes(32).toString('hex') }
  const server = await spawnServer(env, READY_TIMEOUT_MS, 'dist')
  t.teardown(async () => { await server.kill() })
  t.notOk(existsSync(path.join(dataDir, LOCK_NAME)), 'the server holds no lock on DATA_DIR')
  const migrate = await runCli(['migrate'], env, READY_TIMEOUT_MS)
  t.equal(migrate.code, 0, migrate.stderr)
  t.match(migrate.stdout, /migrations applied \(postgres\)/, 'a CLI command runs beside it; PostgreSQL handles concurrency')
  await server.kill('SIGTERM')
})
