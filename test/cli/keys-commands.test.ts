/** `chartcast keys init` and `keys rotate`, run as the real built command. */
import t from 'tap'
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { followKeysetChain, parseTrustRoot } from '../../src/domain/keyset.js'
import { readChainFile } from '../../src/keyset-tools.js'
import { loadSpecSigning } from '../../src/services/spec-signer.js'
import { runCli } from '../helpers/cli.js'

const mode = (file: string): number => statSync(file).mode & 0o777

t.test('keys init writes a root, an online key and keyset 1 the root signed; private keys are 0600', async (t) => {
  const dir = path.join(mkdtempSync(path.join(tmpdir(), 'chartcast-keys-cli-')), 'keys')
  const result = await runCli(['keys', 'init', '--out', dir])
  t.equal(result.code, 0, result.stderr)
  t.match(result.stdout, /SPEC_SIGNING_KEYS=.*online-1-private\.pem/)
  t.match(result.stdout, /SPEC_KEYSET=.*keyset-chain\.json/)
  t.equal(mode(path.join(dir, 'root-private.pem')), 0o600)
  t.equal(mode(path.join(dir, 'online-1-private.pem')), 0o600)
  t.equal(mode(dir), 0o700)
  const chain = readChainFile(path.join(dir, 'keyset-chain.json'))
  t.equal(chain.length, 1)
  const followed = followKeysetChain(chain, parseTrustRoot(readFileSync(path.join(dir, 'root-public.pem'), 'utf8')), Date.now())
  t.ok(followed.ok, 'root-public.pem is the trust root of the chain')
  t.ok(loadSpecSigning([path.join(dir, 'online-1-private.pem')], path.join(dir, 'keyset-chain.json')), 'the server accepts the pair as SPEC_SIGNING_KEYS and SPEC_KEYSET')
  const expires = Date.parse(chain[0]!.signed.expires) - Date.now()
  t.ok(expires > 364 * 86_400_000 && expires <= 365 * 86_400_000, 'a year by default')

  const again = await runCli(['keys', 'init', '--out', dir])
  t.equal(again.code, 1, 'never overwrites keys')
  t.match(again.stderr, /exists/)
})

t.test('keys rotate: add, replace online keys, then rotate the root; an agent trusting the first root follows it all', async (t) => {
  const dir = path.join(mkdtempSync(path.join(tmpdir(), 'chartcast-keys-cli-')), 'keys')
  t.equal((await runCli(['keys', 'init', '--out', dir])).code, 0)
  const firstRoot = parseTrustRoot(readFileSync(path.join(dir, 'root-public.pem'), 'utf8'))
  const chainFile = path.join(dir, 'keyset-chain.json')

  const added = await runCli(['keys', 'rotate', '--dir', dir, '--add-online', '1'])
  t.equal(added.code, 0, added.stderr)
  let chain = readChainFile(chainFile)
  t.equal(chain.length, 2)
  t.equal(chain[1]!.signed.keys.length, 2, 'online keys 1 and 2')
  t.equal(mode(path.join(dir, 'online-2-private.pem')), 0o600)

  const replaced = await runCli(['keys', 'rotate', '--dir', dir, '--replace-online'])
  t.equal(replaced.code, 0, replaced.stderr)
  chain = readChainFile(chainFile)
  t.equal(chain[2]!.signed.keys.length, 1, 'only the new online key is left')
  t.throws(() => loadSpecSigning([path.join(dir, 'online-1-private.pem')], chainFile), /not an online key of keyset 3/, 'a replaced key is refused by the server')
  t.ok(loadSpecSigning([path.join(dir, 'online-3-private.pem')], chainFile))

  const rooted = await runCli(['keys', 'rotate', '--dir', dir, '--rotate-root'])
  t.equal(rooted.code, 0, rooted.stderr)
  chain = readChainFile(chainFile)
  const v4 = chain[3]!
  t.equal(v4.signatures.length, 2, 'signed by the old and the new root')
  t.not(v4.signed.roots[0]!.kid, firstRoot.roots[0]!.kid)
  t.ok(existsSync(path.join(dir, 'root-private.retired-v3.pem')), 'the old root is kept aside')
  t.equal(mode(path.join(dir, 'root-private.retired-v3.pem')), 0o600)

  // Keyset 5, signed by the new root alone, is still followed from the first root.
  t.equal((await runCli(['keys', 'rotate', '--dir', dir])).code, 0)
  chain = readChainFile(chainFile)
  t.equal(chain[4]!.signatures.length, 1)
  const followed = followKeysetChain(chain, firstRoot, Date.now())
  t.ok(followed.ok)
  if (followed.ok) t.equal(followed.keyset.signed.version, 5)

  const retiredRoot = await runCli(['keys', 'rotate', '--dir', dir, '--root-key', path.join(dir, 'root-private.retired-v3.pem')])
  t.equal(retiredRoot.code, 1, 'a retired root cannot sign the next keyset')
  t.match(retiredRoot.stderr, /no root key given is a root of keyset 5/)
})
