import { mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { create } from 'tar'
import { BUNDLE_FORMAT, parseBundle, writeBundle, type BundleFiles } from '../../src/bundle/format.js'

const manifest = { format: BUNDLE_FORMAT, channel: 'stable', version: '1.0.0', revision: 3, exportedAt: '2026-12-01T00:00:00.000Z', chart: null } as const
const files: BundleFiles = { manifest: { ...manifest }, spec: Buffer.from('{"channel":"stable"}'), signature: 'a.b.c', keys: Buffer.from('{"keysets":[]}') }

/** A .tar.gz of whatever `setup` puts in a directory (the attacker's side). */
async function tarOf (setup: (dir: string) => Promise<void>, names: string[]): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'chartcast-format-'))
  await setup(dir)
  const chunks: Buffer[] = []
  for await (const chunk of create({ gzip: true, cwd: dir }, names)) chunks.push(Buffer.from(chunk as Uint8Array))
  return Buffer.concat(chunks)
}

async function baseFiles (dir: string): Promise<void> {
  await writeFile(join(dir, 'chartcast-bundle.json'), JSON.stringify(manifest))
  await writeFile(join(dir, 'spec.json'), '{}')
  await writeFile(join(dir, 'spec.jws'), 'a.b.c')
  await writeFile(join(dir, 'keys.json'), '{}')
}
const BASE = ['chartcast-bundle.json', 'spec.json', 'spec.jws', 'keys.json']

t.test('what writeBundle writes, parseBundle reads back exactly', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'chartcast-format-'))
  await writeBundle(join(dir, 'b.tar.gz'), { ...files, chart: Buffer.from('chart bytes') })
  const read = await parseBundle(await readFile(join(dir, 'b.tar.gz')))
  t.same(read.manifest, { ...manifest, chart: 'chart.tgz' })
  t.equal(read.spec.toString(), '{"channel":"stable"}')
  t.equal(read.signature, 'a.b.c')
  t.equal(read.chart?.toString(), 'chart bytes')
})

t.test('a bundle with an extra file, a symlink, a directory or a missing file is refused, naming it', async (t) => {
  const extra = await tarOf(async (d) => { await baseFiles(d); await writeFile(join(d, 'install.sh'), 'rm -rf /') }, [...BASE, 'install.sh'])
  await t.rejects(parseBundle(extra), { name: 'BundleFormatError', message: /install.sh, which no bundle has/ })
  const link = await tarOf(async (d) => { await baseFiles(d); await symlink('/etc/passwd', join(d, 'chart.tgz')) }, [...BASE, 'chart.tgz'])
  await t.rejects(parseBundle(link), { name: 'BundleFormatError', message: /chart.tgz, which is not a regular file/ })
  const nested = await tarOf(async (d) => { await baseFiles(d); await mkdir(join(d, 'sub')) }, [...BASE, 'sub'])
  await t.rejects(parseBundle(nested), { name: 'BundleFormatError', message: /sub\/?, which is not a regular file/ })
  const missing = await tarOf(baseFiles, BASE.filter((n) => n !== 'spec.jws'))
  await t.rejects(parseBundle(missing), { name: 'BundleFormatError', message: /has no spec.jws/ })
})

t.test('an oversized entry is refused before it is read into memory', async (t) => {
  const big = await tarOf(async (d) => { await baseFiles(d); await writeFile(join(d, 'spec.jws'), Buffer.alloc(65 * 1024, 0x61)) }, BASE)
  await t.rejects(parseBundle(big), { name: 'BundleFormatError', message: /spec.jws is 66560 bytes, more than 65536/ })
})

t.test('a manifest of another format, or one that disagrees about the chart, is refused', async (t) => {
  const newer = await tarOf(async (d) => { await baseFiles(d); await writeFile(join(d, 'chartcast-bundle.json'), JSON.stringify({ ...manifest, format: 'chartcast-bundle/2' })) }, BASE)
  await t.rejects(parseBundle(newer), { message: /does not say "format": "chartcast-bundle\/1"/ })
  const claims = await tarOf(async (d) => { await baseFiles(d); await writeFile(join(d, 'chartcast-bundle.json'), JSON.stringify({ ...manifest, chart: 'chart.tgz' })) }, BASE)
  await t.rejects(parseBundle(claims), { message: /disagree about the chart archive/ })
})

t.test('bytes that are not gzip are not a bundle', async (t) => {
  await t.rejects(parseBundle(Buffer.from('{"channel":"stable"}')), { name: 'BundleFormatError', message: /not a bundle/ })
})
