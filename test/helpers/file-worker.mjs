/**
 * One test process that runs many test files, one after another, for `npm test` (test/run.mjs).
 * Starting a test process costs about 5 s of CPU here (Node and tap, then tsx compiling and the
 * module hooks loading the app, then a PGlite snapshot), which was more than half of the suite's
 * CPU when every file was a process of its own. A worker pays it once for the files it runs.
 *
 * Each file runs as a subtest (of one 'test files' subtest of the root), named by its path; the file's
 * `import t from 'tap'` is that subtest (test/helpers/file-worker-hooks.mjs), so the file's own
 * hooks, plan and teardowns are scoped to it as before. What files share is what a process holds:
 * the module cache (the app's modules, compiled once), the PGlite instance and PostgreSQL database
 * test/helpers/server.ts empties for every test server, and process-wide state such as
 * process.env, which no test file changes.
 *
 * Protocol (IPC with the runner): the worker sends { started: true } and the runner answers
 * { testFiles } (every file it may send); then the worker sends { ready: true }, and the runner
 * answers { file, timeoutSeconds }, or { file: null } to stop; after a file the worker sends
 * { done: true, file, ok, counts, seconds, cpuSeconds, rss } and is ready again. A test file that must not
 * share its process says so on a line of its own, `// test-runner: own-process` (the runner
 * reads it), and is run alone.
 * (JavaScript, not TypeScript: it is started by the runner, with the same node arguments as a file.)
 */
import { readFileSync } from 'node:fs'
import { register } from 'node:module'
import path from 'node:path'
import process from 'node:process'
import { performance } from 'node:perf_hooks'
import { URL, pathToFileURL } from 'node:url'

/**
 * CPU seconds this process used, with those of the children it has reaped (the `chartcast`
 * processes, servers and helm stand-ins a file starts): a file's own wall time says little on
 * two shared cores. Children's time comes from /proc (cutime + cstime); elsewhere it is left out.
 */
function cpuSeconds () {
  const { user, system } = process.cpuUsage()
  let children = 0
  try {
    // Fields after the command name (which may hold spaces, hence from the last ')'): cutime and cstime are the 16th and 17th of the line.
    const fields = readFileSync('/proc/self/stat', 'utf8').split(')').at(-1).trim().split(' ')
    children = (Number(fields[13]) + Number(fields[14])) / 100
  } catch {
    // No /proc (not Linux): the file's own process only.
  }
  return (user + system) / 1e6 + children
}

// One listener for the whole run: the IPC channel keeps the process alive while it has one.
let deliver = null
const onMessage = (message) => deliver?.(message)
process.on('message', onMessage)
function nextMessage (ready) {
  return new Promise((resolve) => {
    deliver = resolve
    // tap unrefs the IPC channel (its own runner uses it only for timeouts); here it is what the
    // worker waits on between files, so it must keep the process alive until the runner answers.
    process.channel.ref()
    process.send(ready)
  })
}

// The runner first names every file it may send. Not as arguments: tap names t.testdir()
// fixtures after the process's arguments.
const { testFiles } = await nextMessage({ started: true })
const testFileUrl = (file) => pathToFileURL(path.resolve(file)).href
register(new URL('./file-worker-hooks.mjs', import.meta.url), { data: { testFiles: testFiles.map(testFileUrl) } })
const { default: t } = await import('tap')
const slot = Symbol.for('chartcast.test-file.t')

// The files run inside one subtest of the root: a root test that has a teardown (the shared
// PGlite's, say) ends by itself once it has been idle for a moment, as between two files.
await t.test('test files', async (files) => {
  for (;;) {
    const { file, timeoutSeconds } = await nextMessage({ ready: true })
    if (file === null) break
    // Marks where this file's lines begin in the worker's stderr, which the runner shows for a failed file.
    process.stderr.write(`\n# test file: ${file}\n`)
    const started = performance.now()
    const cpuAtStart = cpuSeconds()
    let fileTest
    const results = await files.test(file, { timeout: timeoutSeconds * 1000 }, async (subtest) => {
      fileTest = subtest
      globalThis[slot] = subtest
      await import(testFileUrl(file))
    })
    delete globalThis[slot]
    const counts = fileTest?.counts.toJSON() ?? { total: 1, pass: 0, fail: 1 }
    const ok = results?.ok === true && (counts.fail ?? 0) === 0
    process.send({ done: true, file, ok, counts, seconds: (performance.now() - started) / 1000, cpuSeconds: cpuSeconds() - cpuAtStart, rss: process.memoryUsage.rss() })
  }
})
process.off('message', onMessage)
process.channel.unref()
process.disconnect()
