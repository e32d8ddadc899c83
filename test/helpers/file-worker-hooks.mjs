/**
 * The module hooks test/helpers/file-worker.mjs registers: in a worker that runs several test
 * files one after another, `import t from 'tap'` in a test file gives that file's own subtest
 * (the one the worker runs the file in), not the process's root test. So a file's tests, hooks
 * and teardowns stay its own, exactly as when the file is a process of its own. Only the test
 * files themselves are redirected: a helper's `tap` (the shared PGlite's teardown, say) is the
 * process's root.
 */

const scheme = 'chartcast-test-file-tap:'

/** The URLs of the files the runner may give this worker. */
let testFiles = new Set()

export function initialize (data) {
  testFiles = new Set(data.testFiles)
}

export async function resolve (specifier, context, next) {
  if (specifier === 'tap' && context.parentURL !== undefined && testFiles.has(context.parentURL)) {
    return { url: `${scheme}${context.parentURL}`, format: 'module', shortCircuit: true }
  }
  return await next(specifier, context)
}

export async function load (url, context, next) {
  if (url.startsWith(scheme)) {
    // One module per test file (the URL names it), evaluated when that file is imported.
    const source = `const t = globalThis[Symbol.for('chartcast.test-file.t')]
if (t === undefined) throw new Error('no test file is being run by this worker')
export default t
`
    return { format: 'module', source, shortCircuit: true }
  }
  return await next(url, context)
}
