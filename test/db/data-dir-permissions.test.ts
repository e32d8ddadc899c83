/**
 * DATA_DIR is the server's alone: after a real start and a write, nothing under it has a
 * group or other permission bit, and a DATA_DIR left loose by an earlier version is tightened.
 * The server runs as a child process with the test's umask (022 on our machines), as it would
 * from a shell.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { chmodSync, lstatSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { generateLicenseKeyPair } from '../../src/license-tools.js'
import { restrictToOwner } from '../../src/db/data-dir-permissions.js'
import { spawnServer } from '../helpers/process.js'
import { emptyChannelsDir } from '../helpers/cli.js'
import { issuePublisherToken } from '../../src/token-tools.js'

const READY_TIMEOUT_MS = 120_000

/** Every path under `root`, and root itself, with its permission bits. */
function modes (root: string): Array<{ path: string, mode: number }> {
  const found = [{ path: root, mode: lstatSync(root).mode & 0o7777 }]
  for (const name of readdirSync(root, { recursive: true }) as string[]) {
    const full = path.join(root, name)
    try {
      found.push({ path: full, mode: lstatSync(full).mode & 0o7777 })
    } catch {
      // Removed while we listed (PGlite's temporary files).
    }
  }
  return found
}

const groupOrOther = (root: string): string[] => modes(root).filter((entry) => (entry.mode & 0o077) !== 0).map((entry) => `${entry.path} ${entry.mode.toString(8)}`)

t.test('after a start and a write, nothing under DATA_DIR is open to group or others; a loose DATA_DIR is tightened', async (t) => {
  const scratch = mkdtempSync(path.join(tmpdir(), 'chartcast-modes-'))
  t.teardown(() => rmSync(scratch, { recursive: true, force: true }))
  const keys = await generateLicenseKeyPair('ES256')
  writeFileSync(path.join(scratch, 'license.pem'), keys.publicPem)
  const secret = randomBytes(32).toString('hex')
  const dataDir = path.join(scratch, 'data')
  const env = { DATA_DIR: dataDir, CHANNELS_DIR: emptyChannelsDir(path.join(scratch, 'none')), LICENSE_PUBLIC_KEYS: path.join(scratch, 'license.pem'), AUTH_SECRET: secret }
  const publisher = (await issuePublisherToken(secret, { sub: 'rita', role: 'publisher', expiresIn: 3600 })).token

  const server = await spawnServer(env, READY_TIMEOUT_MS, 'dist')
  t.teardown(async () => { await server.kill() })
  const published = await fetch(`${server.url}/releases`, {
    method: 'POST',
    headers: { authorization: `Bearer ${publisher}`, 'content-type': 'application/json' },
    body: JSON.stringify({ version: '1.0.0', chart: { url: 'https://charts.example.com/acme', name: 'acme', version: '0.1.0' }, values: { blob: randomBytes(20_000).toString('hex') } })
  })
  t.equal(published.status, 201)
  t.equal(lstatSync(dataDir).mode & 0o777, 0o700, 'DATA_DIR is 0700')
  t.ok(modes(dataDir).length > 100, 'the database files are there to check')
  t.same(groupOrOther(dataDir), [], 'while the server runs, after a write')
  await server.kill('SIGTERM')
  t.same(groupOrOther(dataDir), [], 'after a graceful stop')

  // As an earlier version (or a careless copy) left it: everything group- and world-accessible.
  for (const entry of modes(dataDir)) chmodSync(entry.path, entry.mode | (lstatSync(entry.path).isDirectory() ? 0o077 : 0o066))
  t.not(groupOrOther(dataDir).length, 0, 'loosened')
  // Development mode this time, so the generated keys are checked too.
  const devEnv = { DATA_DIR: dataDir, CHANNELS_DIR: emptyChannelsDir(path.join(scratch, 'none')) }
  const again = await spawnServer(devEnv, READY_TIMEOUT_MS, 'dist')
  t.teardown(async () => { await again.kill() })
  t.same(groupOrOther(dataDir), [], 'a start tightens an existing DATA_DIR, development keys included')
  t.equal(lstatSync(path.join(dataDir, 'dev-keys', 'license-public.pem')).mode & 0o777, 0o600)
  await again.kill('SIGTERM')
})

t.test('restrictToOwner tightens only DATA_DIR and the entries it names', async (t) => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'chartcast-modes-unit-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  chmodSync(dataDir, 0o755)
  writeFileSync(path.join(dataDir, 'ours'), 'x', { mode: 0o666 })
  writeFileSync(path.join(dataDir, 'not-ours'), 'x', { mode: 0o644 })
  chmodSync(path.join(dataDir, 'ours'), 0o666)
  chmodSync(path.join(dataDir, 'not-ours'), 0o644)
  t.same(restrictToOwner(dataDir, ['ours', 'absent']), [], 'nothing it could not tighten (an absent entry is fine)')
  t.equal(lstatSync(dataDir).mode & 0o777, 0o700)
  t.equal(lstatSync(path.join(dataDir, 'ours')).mode & 0o777, 0o600)
  t.equal(lstatSync(path.join(dataDir, 'not-ours')).mode & 0o777, 0o644, 'an entry it was not given keeps its mode')
})
