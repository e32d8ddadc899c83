/**
 * Loaded into every test process (through test/helpers/test-process.mjs): a few packages made
 * of hundreds of ES modules are imported from one esbuild bundle of the very same installed
 * package instead. Under tsx and tap's module hooks every ES module costs a round trip to the
 * module-hooks thread: typebox alone (about 680 modules) made that about 1.3 s of CPU per test
 * process, of about 4 s to import the app; drizzle-orm and jose load another 160 or so.
 *
 * Each bundle is built once per package and esbuild version, into node_modules/.cache (where
 * the package's own imports of other packages still resolve), and shared by every test process:
 * built aside and renamed, so a parallel process sees a whole bundle or none. Only an import that
 * Node itself resolves to one of the installed package's listed entry files is redirected; an
 * import of any other file of a bundled package stops the test process with the subpath to add,
 * because a second copy of a package's modules would break checks such as drizzle's `is()`.
 * The code the tests run is the same; only its packaging differs.
 * (JavaScript, not TypeScript: it runs before tsx is registered.)
 */
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync } from 'node:fs'
import { createRequire, register } from 'node:module'
import path from 'node:path'
import { URL, fileURLToPath, pathToFileURL } from 'node:url'

/** The packages bundled, each with the export subpaths the code imports (null: every one without a `*`). */
const PACKAGES = [
  { name: 'typebox', subpaths: null },
  { name: 'drizzle-orm', subpaths: ['.', './pg-core', './pglite', './pglite/migrator', './node-postgres', './node-postgres/migrator'] },
  // jose/errors and jose/jwe/compact/decrypt: openid-client's imports.
  { name: 'jose', subpaths: ['.', './errors', './jwe/compact/decrypt'] }
]

const root = path.dirname(fileURLToPath(new URL('../../package.json', import.meta.url)))
// esbuild as tsx (a dev dependency) depends on it: the one tsx already uses to compile the tests.
const esbuild = createRequire(import.meta.resolve('tsx'))('esbuild')
// Real path: Node resolves through symbolic links (node_modules may be one) before hooks see a URL.
const cacheDir = path.join(realpathSync(path.join(root, 'node_modules')), '.cache', 'chartcast-test-bundles')

/** The ES module file an export target names, for the `import` condition (or none). */
function esmTarget (target) {
  if (typeof target === 'string') return target
  if (target === null || typeof target !== 'object') return null
  return esmTarget(target.import ?? target.default ?? null)
}

/** The file a subpath names through the package's exports, an exact key or a `*` pattern (or none). */
function exportTarget (exported, subpath) {
  for (const [key, target] of exported) {
    const file = esmTarget(target)
    if (file === null) continue
    if (key === subpath) return file
    const star = key.indexOf('*')
    if (star !== -1 && subpath.startsWith(key.slice(0, star)) && subpath.endsWith(key.slice(star + 1)) && subpath.length >= key.length - 1) {
      return file.replace('*', subpath.slice(star, subpath.length - (key.length - star - 1)))
    }
  }
  return null
}

/** Installed entry file URL -> bundle file URL, over all packages. */
const redirects = {}
/** Package directory URLs whose files must only be loaded through a bundle. */
const guarded = []

for (const { name, subpaths } of PACKAGES) {
  const packageDir = realpathSync(path.join(root, 'node_modules', name))
  const manifest = JSON.parse(readFileSync(path.join(packageDir, 'package.json'), 'utf8'))
  const exported = Object.entries(manifest.exports)
  const entries = (subpaths ?? exported.map(([subpath]) => subpath).filter((subpath) => !subpath.includes('*')))
    .map((subpath) => ({ subpath, target: exportTarget(exported, subpath) }))
    .filter(({ target }) => target !== null && target.endsWith('js'))
    .map(({ subpath, target }) => ({
      file: path.join(packageDir, target),
      name: subpath === '.' ? 'index' : subpath.slice(2).replaceAll('/', '__')
    }))
  const key = createHash('sha256').update(manifest.version).update(esbuild.version).update(JSON.stringify(entries.map((e) => e.name))).digest('hex').slice(0, 16)
  const bundleDir = path.join(cacheDir, `${name.replaceAll('/', '__')}-${key}`)
  if (!existsSync(bundleDir)) {
    mkdirSync(cacheDir, { recursive: true })
    const partial = mkdtempSync(`${bundleDir}.tmp-`)
    esbuild.buildSync({
      entryPoints: Object.fromEntries(entries.map((e) => [e.name, e.file])),
      bundle: true,
      // One copy of each shared module behind all entry points, as the separate files have.
      splitting: true,
      format: 'esm',
      platform: 'node',
      // Other packages stay imports, resolved from node_modules as before.
      packages: 'external',
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
  for (const e of entries) redirects[pathToFileURL(e.file).href] = pathToFileURL(path.join(bundleDir, `${e.name}.mjs`)).href
  guarded.push({ name, url: pathToFileURL(packageDir).href + '/' })
}

register(new URL('./bundled-packages-hooks.mjs', import.meta.url), { data: { redirects, guarded } })
