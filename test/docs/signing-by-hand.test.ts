/**
 * docs/signing.md's "Verifying by hand" runs as written: the node:crypto script and the openssl
 * commands, taken from the document, against a real signed answer and chain.
 */
import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildTestServer } from '../helpers/server.js'
import { testSigning } from '../helpers/signing.js'
import { auth } from '../helpers/problem.js'

const doc = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '../../docs/signing.md'), 'utf8')

function block (after: string, lang: string, nth = 0): string {
  const start = doc.indexOf(after)
  if (start < 0) throw new Error(`docs/signing.md has no "${after}"`)
  const blocks = doc.slice(start).split('```' + lang + '\n').slice(1).map((b) => b.slice(0, b.indexOf('```')))
  return blocks[nth]!
}

let openssl = true
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' })
  execFileSync('jq', ['--version'], { stdio: 'ignore' })
} catch {
  openssl = false
}

t.test('the documented checks accept a real answer and refuse a tampered one', async (t) => {
  const signing = testSigning(t)
  const s = await buildTestServer(t, { env: signing.env })
  t.equal((await s.putChannel('stable', { values: { replicas: 2 } })).statusCode, 201)
  t.equal((await s.publish('1.0.0')).statusCode, 201)
  t.equal((await s.promote('stable', '1.0.0')).statusCode, 201)
  const res = await s.app.inject({ url: '/channels/stable/spec', headers: auth(await s.license()) })
  const dir = mkdtempSync(path.join(tmpdir(), 'chartcast-by-hand-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  writeFileSync(path.join(dir, 'body.json'), res.rawPayload)
  writeFileSync(path.join(dir, 'signature.txt'), String(res.headers['chartcast-signature']) + '\n')
  writeFileSync(path.join(dir, 'keys.json'), (await s.app.inject({ url: '/keys' })).body)
  copyFileSync(signing.rootPublicFile, path.join(dir, 'root-public.pem'))
  writeFileSync(path.join(dir, 'verify-answer.mjs'), block('<!-- verify-answer.mjs -->', 'js'))

  t.test('node:crypto script', async (t) => {
    const ok = spawnSync(process.execPath, ['verify-answer.mjs', 'root-public.pem', 'keys.json', 'body.json', 'signature.txt', 'stable'], { cwd: dir, encoding: 'utf8' })
    t.equal(ok.status, 0, ok.stderr)
    t.match(JSON.parse(ok.stdout), { channel: 'stable', version: '1.0.0' })
    const other = spawnSync(process.execPath, ['verify-answer.mjs', 'root-public.pem', 'keys.json', 'body.json', 'signature.txt', 'beta'], { cwd: dir, encoding: 'utf8' })
    t.equal(other.stderr.trim(), 'refused: channel')
    writeFileSync(path.join(dir, 'tampered.json'), res.body.replace('"replicas":2', '"replicas":9'))
    const tampered = spawnSync(process.execPath, ['verify-answer.mjs', 'root-public.pem', 'keys.json', 'tampered.json', 'signature.txt', 'stable'], { cwd: dir, encoding: 'utf8' })
    t.equal(tampered.status, 1)
    t.equal(tampered.stderr.trim(), 'refused: body-hash')
  })

  t.test('openssl commands', { skip: openssl ? false : 'openssl or jq not installed' }, async (t) => {
    const helper = block('### With openssl', 'sh', 0)
    const keyset = spawnSync('bash', ['-euo', 'pipefail', '-c', helper + block('### With openssl', 'sh', 1)], { cwd: dir, encoding: 'utf8' })
    t.equal(keyset.status, 0, keyset.stderr)
    t.match(keyset.stdout, /Signature Verified Successfully/, 'the root signed keyset 1')
    const answer = spawnSync('bash', ['-euo', 'pipefail', '-c', helper + block('### With openssl', 'sh', 2)], { cwd: dir, encoding: 'utf8' })
    t.equal(answer.status, 0, answer.stderr)
    t.match(answer.stdout, /Signature Verified Successfully/, 'the online key signed the answer')
    const statement = JSON.parse(Buffer.from(String(res.headers['chartcast-signature']).split('.')[1]!, 'base64url').toString()) as { sha256: string }
    t.match(answer.stdout, new RegExp(`${statement.sha256}\\s+body\\.json`), 'sha256sum prints the hash the statement names')
    writeFileSync(path.join(dir, 'signing-input.txt'), 'tampered')
    const bad = spawnSync('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', 'online-public.pem', '-rawin', '-in', 'signing-input.txt', '-sigfile', 'answer.sig'], { cwd: dir, encoding: 'utf8' })
    t.not(bad.status, 0, 'openssl refuses other bytes')
  })
})
