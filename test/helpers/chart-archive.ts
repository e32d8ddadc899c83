/** Real Helm chart archives (.tgz with NAME/Chart.yaml) for tests that check chart digests. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { create } from 'tar'

/** `marker` changes the archive's content (and so its digest) without changing name or version. */
export async function makeChartArchive (name: string, version: string, marker = ''): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'chartcast-chart-'))
  try {
    await mkdir(join(dir, name, 'templates'), { recursive: true })
    await writeFile(join(dir, name, 'Chart.yaml'), `apiVersion: v2\nname: ${name}\nversion: ${version}\n`)
    await writeFile(join(dir, name, 'values.yaml'), `marker: "${marker}"\n`)
    await writeFile(join(dir, name, 'templates', 'configmap.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  marker: {{ .Values.marker | quote }}\n')
    const chunks: Buffer[] = []
    for await (const chunk of create({ gzip: true, cwd: dir, portable: true, mtime: new Date(0) }, [name])) chunks.push(Buffer.from(chunk as Uint8Array))
    return Buffer.concat(chunks)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
