import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { runCli } from '../helpers/cli.js'
import { makeBundle, makeTestKeys, tamperBundle } from '../helpers/bundles.js'

// The real `chartcast bundle` commands as built into dist/ (the logic is tested in-process in
// test/bundle/bundle.test.ts): registered, documented, and their exit codes as a shell sees them.

t.test('bundle export and bundle verify have --help', async (t) => {
  for (const args of [['bundle', '--help'], ['bundle', 'export', '--help'], ['bundle', 'verify', '--help']]) {
    const result = await runCli(args)
    t.equal(result.code, 0, args.join(' '))
    t.match(result.stdout, /Usage: chartcast bundle/, args.join(' '))
  }
})

t.test('bundle verify: 0 for a good bundle, 2 for a tampered one, 1 when it cannot check', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'chartcast-cli-bundle-'))
  const keys = await makeTestKeys()
  const bundle = await makeBundle(keys, join(dir, 'b.tar.gz'), { channel: 'stable', version: '1.0.0', chart: { url: 'https://charts.example.com', name: 'acme-app', version: '0.18.0' } })
  const good = await runCli(['bundle', 'verify', bundle, '--trust-root', keys.rootPub])
  t.equal(good.code, 0, good.stderr)
  t.match(good.stdout, /bundle verified: channel stable, release 1.0.0, revision 1/)
  t.match(good.stdout, /chart acme-app 0.18.0 \(no digest\)/)

  const later = await runCli(['bundle', 'verify', bundle, '--trust-root', keys.rootPub, '--at', new Date(Date.now() + 3 * 86_400_000).toISOString()])
  t.equal(later.code, 2)
  t.match(later.stderr, /bundle refused \(signature-expired\)/)

  await tamperBundle(bundle, (f) => { f.spec = Buffer.from(f.spec.toString().replace('"acme-app"', '"evil-app"')) })
  const tampered = await runCli(['bundle', 'verify', bundle, '--trust-root', keys.rootPub])
  t.equal(tampered.code, 2)
  t.match(tampered.stderr, /bundle refused \(body-hash\)/)

  await writeFile(join(dir, 'root.txt'), 'not a key')
  const cannot = await runCli(['bundle', 'verify', bundle, '--trust-root', join(dir, 'root.txt')])
  t.equal(cannot.code, 1)
  t.match(cannot.stderr, /trust root is neither a PEM public key nor JSON/)
})

t.test('bundle export names what is missing instead of failing obscurely', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'chartcast-cli-bundle-'))
  const keys = await makeTestKeys()
  const noToken = await runCli(['bundle', 'export', '--channel', 'stable', '--out', join(dir, 'b.tar.gz'), '--signing-key', keys.onlineKey, '--server', 'http://127.0.0.1:1'])
  t.equal(noToken.code, 1)
  t.match(noToken.stderr, /--server needs --token-file/)
  const badTtl = await runCli(['bundle', 'export', '--channel', 'stable', '--out', join(dir, 'b.tar.gz'), '--signing-key', keys.onlineKey, '--ttl', 'soon'])
  t.not(badTtl.code, 0)
  t.match(badTtl.stderr, /"soon" is not a duration/)
  // --version after the command is the command's (the release), never the program's version.
  const versioned = await runCli(['bundle', 'export', '--channel', 'stable', '--version', '1.1.0', '--out', join(dir, 'b.tar.gz'), '--signing-key', keys.onlineKey, '--server', 'http://127.0.0.1:1'])
  t.equal(versioned.code, 1)
  t.match(versioned.stderr, /--server needs --token-file/, 'the export ran (and stopped at the missing token)')
  t.notMatch(versioned.stdout, /^0\.1\.0/, 'not the program version')
  const programVersion = await runCli(['--version'])
  t.equal(programVersion.code, 0)
  t.match(programVersion.stdout, /^0\.1\.0/)
})
