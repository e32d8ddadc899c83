/** Development spec-signing keys: generated once next to the other development keys, reused, renewed. */
import t from 'tap'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { ensureDevSigningKeys } from '../src/dev-keys.js'
import { followKeysetChain, parseKeysetChain, parseTrustRoot, readEd25519PrivateKey, signKeyset } from '../src/domain/keyset.js'
import { readChainFile } from '../src/keyset-tools.js'
import { spawnServer } from './helpers/process.js'
import { buildTestServer, createThrowawayDatabase } from './helpers/server.js'

const fresh = (t: { teardown (fn: () => void): void }): string => {
  const dir = mkdtempSync(path.join(tmpdir(), 'chartcast-dev-signing-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('generated under DATA_DIR/dev-keys/spec-signing once, then reused', async (t) => {
  const dataDir = fresh(t)
  const first = await ensureDevSigningKeys(dataDir)
  t.equal(first.generated, true)
  t.equal(path.dirname(first.chain), path.join(dataDir, 'dev-keys', 'spec-signing'))
  t.equal(statSync(first.onlineKey).mode & 0o777, 0o600)
  const second = await ensureDevSigningKeys(dataDir)
  t.equal(second.generated, false)
  t.equal(readFileSync(second.chain, 'utf8'), readFileSync(first.chain, 'utf8'))
})

t.test('an expired development keyset is renewed with the root kept there', async (t) => {
  const dataDir = fresh(t)
  const keys = await ensureDevSigningKeys(dataDir)
  const root = readEd25519PrivateKey(readFileSync(path.join(path.dirname(keys.chain), 'root-private.pem'), 'utf8'))
  const [v1] = readChainFile(keys.chain)
  writeFileSync(keys.chain, JSON.stringify({ keysets: [signKeyset({ ...v1!.signed, expires: '2020-01-01T00:00:00Z' }, [root])] }))
  await ensureDevSigningKeys(dataDir)
  const chain = readChainFile(keys.chain)
  t.equal(chain.length, 2)
  t.ok(followKeysetChain(chain, parseTrustRoot(readFileSync(keys.rootPublicKey, 'utf8')), Date.now()).ok)
})

t.test('a development server signs with them and serves the chain at /keys', async (t) => {
  const dataDir = fresh(t)
  mkdirSync(path.join(dataDir, 'none'))
  // PostgreSQL when there is one: an embedded database's first start costs most of a minute of CPU.
  const database = process.env.TEST_DATABASE_URL === undefined ? null : await createThrowawayDatabase()
  if (database !== null) t.teardown(async () => { await database.drop() })
  const server = await spawnServer({ DATA_DIR: dataDir, CHANNELS_DIR: path.join(dataDir, 'none'), ...(database !== null && { DATABASE_URL: database.url }) }, 180_000)
  t.teardown(async () => { await server.kill() })
  const res = await fetch(`${server.url}/keys`)
  t.equal(res.status, 200, server.output())
  const chain = parseKeysetChain(await res.json())
  const trust = parseTrustRoot(readFileSync(path.join(dataDir, 'dev-keys', 'spec-signing', 'root-public.pem'), 'utf8'))
  t.ok(followKeysetChain(chain, trust, Date.now()).ok)
})

t.test('without signing configured the app says so once at start-up', async (t) => {
  const lines: string[] = []
  await buildTestServer(t, { logLevel: 'info', logStream: { write: (line) => { lines.push(line) } } })
  t.equal(lines.filter((l) => l.includes('spec signing is off')).length, 1)
})
