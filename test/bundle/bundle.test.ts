import { existsSync } from 'node:fs'
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import t, { type Test } from 'tap'
import { exportBundle, DatabaseSpecSource, BundleExportError } from '../../src/bundle/export.js'
import { parseBundle } from '../../src/bundle/format.js'
import { sha256Digest } from '../../src/agent/chart-fetch.js'
import { runBundleExport, runBundleVerify, BUNDLE_REFUSED_EXIT, type CommandOutput } from '../../src/cli/bundle-commands.js'
import { onlineKeyFromPem } from '../../src/services/spec-signer.js'
import { buildTestServer, testDrivers, type Driver, type TestServer } from '../helpers/server.js'
import { makeTestKeys, tamperBundle, type TestKeys } from '../helpers/bundles.js'
import { makeChartArchive } from '../helpers/chart-archive.js'
import { testSigning } from '../helpers/signing.js'

const DAY = 86_400_000

function capture (): CommandOutput & { out: string, err: string } {
  const c = { out: '', err: '', stdout: (s: string) => { c.out += s }, stderr: (s: string) => { c.err += s } }
  return c
}

interface Fixture {
  s: TestServer
  keys: TestKeys
  dir: string
  archive: Buffer
  servedBody: string
}

/** A server with stable -> 1.0.0 (its chart pinned by digest), keys, and the body the server serves. */
async function fixture (t: Test, driver: Driver): Promise<Fixture> {
  const s = await buildTestServer(t, { driver })
  const keys = await makeTestKeys()
  const dir = await mkdtemp(join(tmpdir(), 'chartcast-bundle-test-'))
  const archive = await makeChartArchive('acme-app', '0.18.0', 'v1')
  t.equal((await s.publish('1.0.0', { chart: { url: 'https://charts.example.com', name: 'acme-app', version: '0.18.0', digest: sha256Digest(archive) }, values: { a: 1 } })).statusCode, 201)
  t.equal((await s.publish('0.9.0')).statusCode, 201)
  await s.putChannel('stable', { values: { region: 'eu' }, pollInterval: '1h' })
  await s.promote('stable', '0.9.0')
  await s.promote('stable', '1.0.0')
  await writeFile(join(dir, 'acme-app-0.18.0.tgz'), archive)
  const license = await s.license({ channels: ['stable'] })
  const served = await s.app.inject({ url: '/channels/stable/spec', headers: { authorization: `Bearer ${license}` } })
  t.equal(served.statusCode, 200)
  return { s, keys, dir, archive, servedBody: served.body }
}

async function exportFromDatabase (f: Fixture, out: string, extra: Partial<Parameters<typeof exportBundle>[0]> = {}) {
  return await exportBundle({
    source: new DatabaseSpecSource(f.s.database),
    channel: 'stable',
    chartFile: join(f.dir, 'acme-app-0.18.0.tgz'),
    ttlMs: 90 * DAY,
    signingKey: onlineKeyFromPem(f.keys.onlinePem),
    chain: f.keys.chain,
    out,
    ...extra
  })
}

for (const driver of testDrivers()) {
  t.test(driver, async (t) => {
    t.test('export from the database: spec.json is byte for byte the server\'s answer, with signature, chain and chart', async (t) => {
      const f = await fixture(t, driver)
      const out = join(f.dir, 'bundle.tar.gz')
      const result = await exportFromDatabase(f, out)
      t.same(result.warnings, [])
      const files = await parseBundle(await readFile(out))
      t.equal(files.spec.toString('utf8'), f.servedBody)
      t.same(files.manifest, { format: 'chartcast-bundle/1', channel: 'stable', version: '1.0.0', revision: result.manifest.revision, exportedAt: result.manifest.exportedAt, chart: 'chart.tgz' })
      t.ok(files.chart?.equals(f.archive), 'the chart archive is carried as given')
      t.same(JSON.parse(files.keys.toString('utf8')), { keysets: f.keys.chain })
      t.match(files.signature, /^[\w-]+\.[\w-]+\.[\w-]+$/)
      t.ok(result.statement.expires * 1000 > Date.now() + 89 * DAY, 'signed for the TTL asked')
      t.same((await readdir(f.dir)).filter((n) => n.includes('partial')), [], 'no partial file left')
    })

    t.test('export from the server\'s API (publisher token): the same spec bytes; --version picks a release in the channel', async (t) => {
      const f = await fixture(t, driver)
      const url = await f.s.listen()
      const tokenFile = join(f.dir, 'token')
      await writeFile(tokenFile, f.s.tokens.publisher + '\n')
      const out = join(f.dir, 'from-server.tar.gz')
      const output = capture()
      const code = await runBundleExport({ channel: 'stable', chartFile: join(f.dir, 'acme-app-0.18.0.tgz'), ttl: 90 * DAY, out, signingKey: f.keys.onlineKey, keyset: f.keys.keysetFile, server: url, tokenFile }, output)
      t.equal(code, 0, output.err)
      t.match(output.out, /wrote .*from-server.tar.gz: channel stable, release 1.0.0, revision \d+, with its chart archive/)
      t.equal((await parseBundle(await readFile(out))).spec.toString('utf8'), f.servedBody)

      const older = join(f.dir, 'older.tar.gz')
      t.equal(await runBundleExport({ channel: 'stable', version: '0.9.0', ttl: DAY, out: older, signingKey: f.keys.onlineKey, keyset: f.keys.keysetFile, server: url, tokenFile }, capture()), 0)
      t.equal(JSON.parse((await parseBundle(await readFile(older))).spec.toString('utf8')).version, '0.9.0')

      const missing = capture()
      t.equal(await runBundleExport({ channel: 'stable', version: '2.0.0', ttl: DAY, out: join(f.dir, 'x.tar.gz'), signingKey: f.keys.onlineKey, keyset: f.keys.keysetFile, server: url, tokenFile }, missing), 1)
      t.match(missing.err, /404 RELEASE_NOT_FOUND|not in channel/)
    })

    t.test('export through the command from DATABASE_URL (PostgreSQL) or refused without a keyset', async (t) => {
      const f = await fixture(t, driver)
      const noKeyset = capture()
      t.equal(await runBundleExport({ channel: 'stable', ttl: DAY, out: join(f.dir, 'b.tar.gz'), signingKey: f.keys.onlineKey }, noKeyset), 1)
      t.match(noKeyset.err, /--keyset is required when reading the database/)
      if (f.s.databaseUrl === null) return
      const output = capture()
      const out = join(f.dir, 'b.tar.gz')
      t.equal(await runBundleExport({ channel: 'stable', ttl: DAY, out, signingKey: f.keys.onlineKey, keyset: f.keys.keysetFile }, output, () => ({ databaseUrl: f.s.databaseUrl, dataDir: f.dir })), 0, output.err)
      t.equal((await parseBundle(await readFile(out))).spec.toString('utf8'), f.servedBody)
    })

    t.test('export from a signing server without --keyset takes the chain from GET /keys; the site verifies it with the root', async (t) => {
      const signing = testSigning(t)
      const s = await buildTestServer(t, { driver, env: signing.env })
      await s.publish('1.0.0')
      await s.putChannel('stable')
      await s.promote('stable', '1.0.0')
      const url = await s.listen()
      const dir = await mkdtemp(join(tmpdir(), 'chartcast-bundle-test-'))
      const tokenFile = join(dir, 'token')
      await writeFile(tokenFile, s.tokens.publisher)
      const out = join(dir, 'b.tar.gz')
      const output = capture()
      t.equal(await runBundleExport({ channel: 'stable', ttl: 90 * DAY, out, signingKey: signing.env.SPEC_SIGNING_KEYS!, server: url, tokenFile }, output), 0, output.err)
      const files = await parseBundle(await readFile(out))
      t.same(JSON.parse(files.keys.toString('utf8')).keysets, signing.chain, 'the chain the server serves')
      const license = await s.license({ channels: ['stable'] })
      const served = await s.app.inject({ url: '/channels/stable/spec', headers: { authorization: `Bearer ${license}` } })
      t.equal(files.spec.toString('utf8'), served.body)
      const verified = capture()
      t.equal(await runBundleVerify(out, { trustRoot: signing.rootPublicFile }, verified), 0, verified.err)
    })

    t.test('a chart file whose digest is not the release\'s is refused, and nothing is written', async (t) => {
      const f = await fixture(t, driver)
      const other = join(f.dir, 'other.tgz')
      await writeFile(other, await makeChartArchive('acme-app', '0.18.0', 'someone else\'s'))
      const out = join(f.dir, 'bundle.tar.gz')
      await t.rejects(exportFromDatabase(f, out, { chartFile: other }), { name: 'BundleExportError', message: /other.tgz is sha256:[0-9a-f]{64}, but release 1.0.0 pins sha256:/ })
      t.notOk(existsSync(out))
      await t.rejects(exportFromDatabase(f, out, { version: '0.9.0' }), { name: 'BundleExportError', message: /release 0.9.0 pins no chart.digest/ })
      t.notOk(existsSync(out))
      t.type(new BundleExportError('x'), Error)
    })

    t.test('a signing key that is not in the keyset is refused (no agent would accept it)', async (t) => {
      const f = await fixture(t, driver)
      const stranger = await makeTestKeys()
      await t.rejects(exportFromDatabase(f, join(f.dir, 'b.tar.gz'), { signingKey: onlineKeyFromPem(stranger.onlinePem) }), { name: 'BundleExportError', message: /not an online key of keyset 1/ })
    })
  })
}

t.test('bundle verify', async (t) => {
  const f = await fixture(t, 'pglite')
  const good = join(f.dir, 'good.tar.gz')
  await exportFromDatabase(f, good, { ttlMs: 90 * DAY })
  const copy = async (name: string): Promise<string> => {
    const path = join(f.dir, name)
    await writeFile(path, await readFile(good))
    return path
  }
  const verify = async (file: string, flags: Partial<Parameters<typeof runBundleVerify>[1]> = {}) => {
    const output = capture()
    const code = await runBundleVerify(file, { trustRoot: f.keys.rootPub, ...flags }, output)
    return { code, ...output }
  }

  t.test('a good bundle verifies: exit 0 and what it holds', async (t) => {
    const r = await verify(good)
    t.equal(r.code, 0, r.err)
    t.match(r.out, /^bundle verified: channel stable, release 1.0.0, revision \d+\n/)
    t.match(r.out, `chart acme-app 0.18.0 ${sha256Digest(f.archive)}, archive included and matching`)
    t.match(r.out, /signed by keyset 1/)
    t.equal((await verify(good, { channel: 'stable' })).code, 0)
  })

  t.test('a tampered spec is refused: body-hash', async (t) => {
    const path = await copy('tampered-spec.tar.gz')
    await tamperBundle(path, (files) => { files.spec = Buffer.from(files.spec.toString('utf8').replace('"a":1', '"a":2')) })
    const r = await verify(path)
    t.equal(r.code, BUNDLE_REFUSED_EXIT)
    t.match(r.err, /^bundle refused \(body-hash\)/)
  })

  t.test('a tampered chart archive is refused: chart-digest', async (t) => {
    const path = await copy('tampered-chart.tar.gz')
    const evil = await makeChartArchive('acme-app', '0.18.0', 'evil')
    await tamperBundle(path, (files) => { files.chart = evil })
    const r = await verify(path)
    t.equal(r.code, BUNDLE_REFUSED_EXIT)
    t.match(r.err, `bundle refused (chart-digest): chart.tgz is ${sha256Digest(evil)}, the signed spec pins ${sha256Digest(f.archive)}`)
  })

  t.test('a tampered signature is refused: signature-invalid', async (t) => {
    const path = await copy('tampered-signature.tar.gz')
    await tamperBundle(path, (files) => {
      const [h, p, s] = files.signature.split('.') as [string, string, string]
      files.signature = `${h}.${p}.${s.startsWith('A') ? 'B' : 'A'}${s.slice(1)}`
    })
    const r = await verify(path)
    t.equal(r.code, BUNDLE_REFUSED_EXIT)
    t.match(r.err, /^bundle refused \(signature-invalid\)/)
  })

  t.test('another vendor\'s root is refused: keyset-not-signed-by-root', async (t) => {
    const other = await makeTestKeys()
    const r = await verify(good, { trustRoot: other.rootPub })
    t.equal(r.code, BUNDLE_REFUSED_EXIT)
    t.match(r.err, /^bundle refused \(keyset-not-signed-by-root\)/)
  })

  t.test('checked as of a day after its signature expires: signature-expired', async (t) => {
    const r = await verify(good, { at: Date.now() + 91 * DAY })
    t.equal(r.code, BUNDLE_REFUSED_EXIT)
    t.match(r.err, /^bundle refused \(signature-expired\)/)
    t.equal((await verify(good, { at: Date.now() + 89 * DAY })).code, 0, 'still good the day before')
  })

  t.test('for another channel: channel', async (t) => {
    const r = await verify(good, { channel: 'beta' })
    t.equal(r.code, BUNDLE_REFUSED_EXIT)
    t.match(r.err, /^bundle refused \(channel\): signed for channel "stable", asked for "beta"/)
  })

  t.test('not a bundle, or one with a stray entry: bundle-malformed', async (t) => {
    const garbage = join(f.dir, 'garbage.tar.gz')
    await writeFile(garbage, gzipSync(Buffer.from('not a tar file at all, just text that is long enough '.repeat(20))))
    const r = await verify(garbage)
    t.equal(r.code, BUNDLE_REFUSED_EXIT)
    t.match(r.err, /^bundle refused \(bundle-malformed\)/)
    const plain = join(f.dir, 'plain.json')
    await writeFile(plain, f.servedBody)
    t.match((await verify(plain)).err, /bundle-malformed\): not a bundle/)
  })

  t.test('an unreadable trust root is exit 1 (could not check), not a refusal', async (t) => {
    const r = await verify(good, { trustRoot: join(f.dir, 'no-such-root.pub') })
    t.equal(r.code, 1)
    t.match(r.err, /ENOENT/)
  })
})
