/**
 * Loaded into every test process (through test/helpers/test-process.mjs): `typebox` and its
 * subpaths are imported from one esbuild bundle of the very same package instead of its ~680
 * separate modules. Under tsx and tap's mock loader every ES module costs a round trip to the
 * module-hooks thread, and typebox alone made that about 1.3 s of CPU per test process (of
 * about 4 s to import the app); the bundle is a handful of files.
 *
 * The bundle is built once per typebox and esbuild version into the temp directory (as the
 * PGlite snapshot is) and shared by every test process: built aside and renamed, so a parallel
 * process sees a whole bundle or none. Only an import that Node itself resolves to the
 * installed typebox's own entry files is redirected, so a different copy of typebox, were one
 * ever installed, would load as it is; code the tests run is the same, only its packaging differs.
 * (JavaScript, not TypeScript: it runs before tsx is registered.)
 */
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync } from 'node:fs'
import { createRequire, register } from 'node:module'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { URL, fileURLToPath, pathToFileURL } from 'node:url'

const root = path.dirname(fileURLToPath(new URL('../../package.json', import.meta.url)))
// Real path: Node resolves through symbolic links (node_modules may be one) before hooks see a URL.
const packageDir = realpathSync(path.join(root, 'node_modules', 'typebox'))
const manifest = JSON.parse(readFileSync(path.join(packageDir, 'package.json'), 'utf8'))

/** Export subpath ('.', './compile', ...) -> the installed entry file and the bundle's name for it. */
const entries = Object.entries(manifest.exports)
  .filter(([subpath, target]) => !subpath.includes('*') && typeof target === 'object' && typeof target.import === 'string')
  .map(([subpath, target]) => ({
    file: path.join(packageDir, target.import),
    name: subpath === '.' ? 'index' : subpath.slice(2).replaceAll('/', '-')
  }))

// esbuild as tsx (a dev dependency) depends on it: the one tsx already uses to compile the tests.
const esbuild = createRequire(import.meta.resolve('tsx'))('esbuild')
const key = createHash('sha256').update(manifest.version).update(esbuild.version).update(JSON.stringify(entries.map((e) => e.name))).digest('hex').slice(0, 16)
const bundleDir = path.join(tmpdir(), `chartcast-test-typebox-${key}`)

if (!existsSync(bundleDir)) {
  const partial = mkdtempSync(`${bundleDir}.tmp-`)
  esbuild.buildSync({
    entryPoints: Object.fromEntries(entries.map((e) => [e.name, e.file])),
    bundle: true,
    // One copy of each shared module behind all entry points, as the separate files have.
    splitting: true,
    format: 'esm',
    platform: 'node',
    outdir: partial,
    outExtension: { '.js': '.mjs' },
    logLevel: 'error'
  })
  try {
    renameSync(partial, bundleDir)
  } catch {
    // Another test process renamed its bundle first.
    rmSync(partial, { recursive: true, force: true })
  }
}

register(new URL('./bundled-typebox-hooks.mjs', import.meta.url), {
  data: Object.fromEntries(entries.map((e) => [pathToFileURL(e.file).href, pathToFileURL(path.join(bundleDir, `${e.name}.mjs`)).href]))
})
