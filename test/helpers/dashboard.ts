/**
 * The dashboard built for a test process (vite build of src/ui into a temp directory), so a
 * test sees the source as it is, not whatever dist/ui an earlier build left. Built once per
 * process; removed when the process's tests end.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import tap from 'tap'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
let built: Promise<string> | null = null

export async function buildDashboard (): Promise<string> {
  built ??= (async () => {
    const { build } = await import('vite')
    const outDir = mkdtempSync(path.join(tmpdir(), 'chartcast-ui-'))
    tap.teardown(() => { rmSync(outDir, { recursive: true, force: true }) })
    await build({ configFile: path.join(ROOT, 'vite.config.ts'), root: path.join(ROOT, 'src/ui'), logLevel: 'warn', build: { outDir, emptyOutDir: true } })
    return outDir
  })()
  return await built
}
