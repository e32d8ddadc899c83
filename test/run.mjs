/**
 * `npm test`: runs every test file, with the options of package.json "tap" (node-arg, jobs,
 * timeout, include/exclude) plus tap's mock loader for `t.mockImport`, but not through tap's
 * runner. Two things differ from it, both for the suite's CPU time on a 2-core machine:
 *
 * - Files share test processes. tap starts a process per file, and a test process costs about
 *   5 s of CPU before its first test (Node, tap and tsx, the app's modules through the module
 *   hooks, a PGlite snapshot): more than half of the suite's CPU. Here each of the `jobs` slots
 *   keeps one worker process (test/helpers/file-worker.mjs) and gives it file after file; each
 *   file runs as a subtest named by its path, and its `import t from 'tap'` is that subtest, so
 *   its hooks and teardowns stay its own. A worker that dies or hangs fails the file it was
 *   running and is replaced. A file that must have a process of its own says so on a line of its
 *   own, `// test-runner: own-process`, and is then run as its own main script, as tap would.
 * - tap's process-info recorder (@tapjs/processinfo) is left out: it serves coverage and
 *   `tap --changed` only (coverage is off), and as one more module-hooks chain it cost about 1 s
 *   of CPU per process.
 *
 * `npx tap FILE` still runs one file through tap itself, and `node FILE` (with the node-args)
 * runs it as its own main script.
 *
 * Prints one line per file as it finishes, with its time; a failed file's TAP and stderr (its
 * own part of its worker's output, shown when the worker ends); then the totals. Exits non-zero
 * when any file fails, times out or is killed, or a worker fails after its last file.
 * Usage: node test/run.mjs [FILE...]   (TEST_JOBS overrides tap.jobs; files named run in that order)
 * (JavaScript, not TypeScript: it starts the processes that load tsx.)
 */
import { Buffer } from 'node:buffer'
import { spawn } from 'node:child_process'
import { readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import process from 'node:process'
import { clearTimeout, setTimeout } from 'node:timers'
import { fileURLToPath } from 'node:url'

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const config = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).tap
const jobs = Number(process.env.TEST_JOBS ?? config.jobs ?? 4)
const timeoutSeconds = Number(config.timeout ?? 30)
/** A worker is replaced after a file that leaves it above this resident size (TEST_WORKER_MAX_RSS_MB). */
const maxWorkerRss = Number(process.env.TEST_WORKER_MAX_RSS_MB ?? 1024) * 1024 * 1024
const mockLoader = import.meta.resolve('@tapjs/mock/import')

/** package.json tap.include is test/**\/*.test.ts and tap.exclude test/helpers/**; kept in step here. */
function testFiles () {
  if (JSON.stringify(config.include) !== '["test/**/*.test.ts"]' || JSON.stringify(config.exclude) !== '["test/helpers/**"]') {
    throw new Error('package.json tap.include/exclude changed: update testFiles() in test/run.mjs to match')
  }
  return readdirSync(path.join(root, 'test'), { recursive: true })
    .map((file) => path.join('test', file))
    .filter((file) => file.endsWith('.test.ts') && !file.startsWith(`test${path.sep}helpers${path.sep}`))
    .sort((a, b) => a.localeCompare(b, 'en'))
}

/** The counts tap prints last for a file run as its own main script: `# { total: 20, pass: 19, fail: 1 }`. */
function summary (tap) {
  const line = tap.split('\n').reverse().find((l) => l.startsWith('# { total:'))
  if (line === undefined) return null
  return Object.fromEntries([...line.matchAll(/(\w+): (\d+)/g)].map(([, key, count]) => [key, Number(count)]))
}

/** How a process the runner starts is started: package.json's node arguments and tap's mock loader. */
function startProcess (script, args, env, ipc) {
  return spawn(process.execPath, [`--import=${mockLoader}`, ...config['node-arg'], script, ...args], {
    cwd: root,
    // No TAP_CHILD_ID: the script is the process root, so tap prints the counts read back below.
    env: { ...process.env, TAP_CHILD_ID: undefined, ...env },
    stdio: ['ignore', 'pipe', 'pipe', ...(ipc ? ['ipc'] : [])]
  })
}

/** Collects a stream's text. */
function collect (stream) {
  const chunks = []
  stream.on('data', (chunk) => chunks.push(chunk))
  return () => Buffer.concat(chunks).toString()
}

/** A file run as a process of its own (a file that says `// test-runner: own-process`). */
async function runFileAlone (file) {
  const started = Date.now()
  // TAP_TIMEOUT: the root test's own timeout, as tap's runner sets it; the kill below is for a
  // process that hangs past it.
  const child = startProcess(file, [], { TAP_TIMEOUT: String(timeoutSeconds) }, false)
  const stdout = collect(child.stdout)
  const stderr = collect(child.stderr)
  let killed = false
  const kill = setTimeout(() => {
    killed = true
    child.kill('SIGKILL')
  }, (timeoutSeconds + 30) * 1000)
  const [code, signal] = await new Promise((resolve) => child.on('close', (code, signal) => resolve([code, signal])))
  clearTimeout(kill)
  const tap = stdout()
  const counted = summary(tap)
  const counts = counted ?? { total: 0, pass: 0 }
  const ok = code === 0 && signal === null && counted !== null && (counts.fail ?? 0) === 0
  const why = killed ? `killed after ${timeoutSeconds + 30} s` : signal !== null ? `killed by ${signal}` : code !== 0 ? `exit code ${code}` : counted === null ? 'no TAP summary' : ''
  return { file, ok, why, counts, counted: counted !== null, seconds: (Date.now() - started) / 1000, tap, stderr: stderr() }
}

/** The lines of a worker's TAP that belong to one file's subtest (from `# Subtest: FILE` to its result line). */
function fileTap (tap, file) {
  const lines = tap.split('\n')
  const first = lines.findIndex((line) => line.trim() === `# Subtest: ${file}`)
  if (first === -1) return tap
  const last = lines.findIndex((line, index) => index > first && /^\s*(not )?ok \d+ - /.test(line) && line.includes(` - ${file}`))
  return lines.slice(first, last === -1 ? undefined : last + 1).join('\n')
}

/** The part of a worker's stderr written while it ran one file (test/helpers/file-worker.mjs marks each start). */
function fileStderr (stderr, file) {
  const marker = `\n# test file: ${file}\n`
  const first = stderr.indexOf(marker)
  if (first === -1) return stderr
  const next = stderr.indexOf('\n# test file: ', first + marker.length)
  return stderr.slice(first + marker.length, next === -1 ? undefined : next)
}

/**
 * A test process that runs file after file (test/helpers/file-worker.mjs), so the files share one
 * start-up. run(file) resolves with the file's result; a worker that dies, or hangs past the
 * timeout, fails the file it was running and is replaced by a new one for the next file.
 */
class Worker {
  constructor () {
    this.child = startProcess(path.join('test', 'helpers', 'file-worker.mjs'), [], { TAP_TIMEOUT: '0' }, true)
    this.stdout = collect(this.child.stdout)
    this.stderr = collect(this.child.stderr)
    this.alive = true
    this.pending = null
    this.ready = new Promise((resolve) => { this.onReady = resolve })
    this.exited = new Promise((resolve) => this.child.on('close', (code, signal) => {
      this.alive = false
      resolve([code, signal])
    }))
    this.child.on('message', (message) => {
      if (message.started === true) this.child.send({ testFiles: files })
      else if (message.ready === true) this.onReady()
      else if (message.done === true) this.pending?.resolve(message)
    })
  }

  async run (file) {
    const started = Date.now()
    await Promise.race([this.ready, this.exited])
    const done = new Promise((resolve) => { this.pending = { resolve } })
    this.ready = new Promise((resolve) => { this.onReady = resolve })
    let killed = false
    if (this.alive) this.child.send({ file, timeoutSeconds })
    const kill = setTimeout(() => {
      killed = true
      this.child.kill('SIGKILL')
    }, (timeoutSeconds + 30) * 1000)
    const outcome = await Promise.race([done, this.exited.then(([code, signal]) => ({ exited: true, code, signal }))])
    clearTimeout(kill)
    this.pending = null
    const seconds = (Date.now() - started) / 1000
    if (outcome.exited === true) {
      const why = killed ? `killed after ${timeoutSeconds + 30} s` : outcome.signal !== null ? `killed by ${outcome.signal}` : `exit code ${outcome.code}`
      return { file, ok: false, why, counts: { total: 0, pass: 0 }, counted: false, seconds, tap: fileTap(this.stdout(), file), stderr: fileStderr(this.stderr(), file) }
    }
    // The TAP of a failed file is read once the worker has ended: its stdout may still be on the way.
    this.rss = outcome.rss
    return { file, ok: outcome.ok, why: '', counts: outcome.counts, counted: true, seconds, cpuSeconds: outcome.cpuSeconds, tap: null, stderr: null }
  }

  /** Tells the worker to finish: its root test ends and the process exits, non-zero if anything failed. */
  async stop () {
    await Promise.race([this.ready, this.exited])
    if (this.alive) this.child.send({ file: null })
    return await this.exited
  }
}

/** True for a file that says it needs a test process of its own. */
function needsOwnProcess (file) {
  return /^\/\/ test-runner: own-process$/m.test(readFileSync(path.join(root, file), 'utf8'))
}

/**
 * How long each file took when it last ran on this machine, kept in the temp directory (as the
 * PGlite snapshot is) so that a later run, a fresh clone's included, starts the longest files
 * first and does not end with one long file running alone on an idle core. It changes only the
 * order; the first run on a machine goes in name order.
 */
const durationsFile = path.join(tmpdir(), 'chartcast-test-durations.json')
function readDurations () {
  try {
    return JSON.parse(readFileSync(durationsFile, 'utf8'))
  } catch {
    return {}
  }
}
const durations = readDurations()
function writeDurations (results) {
  const timed = results.filter((r) => r.counted)
  const merged = { ...readDurations(), ...Object.fromEntries(timed.map((r) => [r.file, r.seconds])) }
  const partial = `${durationsFile}.${process.pid}.tmp`
  writeFileSync(partial, JSON.stringify(merged, null, 1))
  renameSync(partial, durationsFile)
}

// Files named on the command line run in the order given; the whole suite runs files never
// timed first (they may be long), then the longest.
const files = process.argv.length > 2
  ? process.argv.slice(2)
  : testFiles()
    .map((file, index) => ({ file, index, seconds: durations[file] ?? Infinity }))
    .sort((a, b) => b.seconds - a.seconds || a.index - b.index)
    .map(({ file }) => file)
const results = []
const started = Date.now()
const totals = { files: 0, failedFiles: 0, total: 0, pass: 0, fail: 0, skip: 0, todo: 0 }
let next = 0
function count (result) {
  totals.files++
  for (const key of ['total', 'pass', 'fail', 'skip', 'todo']) totals[key] += result.counts[key] ?? 0
  if (!result.ok) totals.failedFiles++
}
function showFailure ({ file, tap, stderr }) {
  process.stdout.write(`${tap}\n${stderr === '' ? '' : `--- stderr of ${file}\n${stderr}\n`}`)
}
/**
 * Stops a worker and shows what its failed files printed (complete only now that it has ended).
 * A non-zero exit after files that all passed is a failure of its own: a root teardown (closing
 * the shared database, say).
 */
async function retire (worker, failed) {
  const [code, signal] = await worker.stop()
  for (const result of failed) showFailure({ file: result.file, tap: fileTap(worker.stdout(), result.file), stderr: fileStderr(worker.stderr(), result.file) })
  if (code !== 0 && failed.length === 0) {
    totals.failedFiles++
    showFailure({ file: 'a test process after its last file', tap: worker.stdout().split('\n').slice(-40).join('\n'), stderr: worker.stderr().slice(-8000) })
    process.stdout.write(`FAILED a test process that ran files exited with ${signal ?? `code ${code}`} after its last file\n`)
  }
}
const retiring = []
async function slot () {
  let worker = null
  let failedInWorker = []
  while (next < files.length) {
    const file = files[next++]
    let result
    if (needsOwnProcess(file)) {
      result = await runFileAlone(file)
      if (!result.ok) showFailure(result)
    } else {
      worker ??= new Worker()
      result = await worker.run(file)
      if (!result.ok && result.tap === null) failedInWorker.push(result)
      else if (!result.ok) showFailure(result)
      if (!worker.alive) {
        // It died during this file (whose output is shown above); what it printed for earlier failures is complete.
        for (const earlier of failedInWorker) showFailure({ file: earlier.file, tap: fileTap(worker.stdout(), earlier.file), stderr: fileStderr(worker.stderr(), earlier.file) })
        worker = null
        failedInWorker = []
      } else if (worker.rss > maxWorkerRss) {
        // Replaced by a fresh one, while it ends in the background: a worker's heap grows with the
        // files it has run, and with it the cost of its garbage collection.
        retiring.push(retire(worker, failedInWorker))
        worker = null
        failedInWorker = []
      }
    }
    results.push(result)
    count(result)
    const cpu = result.cpuSeconds === undefined ? '' : `  ${result.cpuSeconds.toFixed(1).padStart(5)} s CPU`
    process.stdout.write(`${result.ok ? 'ok    ' : 'FAILED'} ${result.file.padEnd(48)} ${result.seconds.toFixed(1).padStart(5)} s${cpu}${result.why === '' ? '' : ` (${result.why})`}\n`)
  }
  if (worker !== null) await retire(worker, failedInWorker)
}
await Promise.all(Array.from({ length: Math.min(jobs, files.length) }, slot))
await Promise.all(retiring)
writeDurations(results)
process.stdout.write(`# ${totals.files} files, ${totals.failedFiles} failed; assertions: ${totals.total} total, ${totals.pass} pass, ${totals.fail} fail, ${totals.skip} skip, ${totals.todo} todo\n`)
// CPU of the files run in workers (with the processes they started); files run alone are not in it.
const fileCpu = results.reduce((sum, result) => sum + (result.cpuSeconds ?? 0), 0)
process.stdout.write(`# time=${((Date.now() - started) / 1000).toFixed(1)} s, files' CPU ${fileCpu.toFixed(1)} s\n`)
process.exitCode = totals.failedFiles === 0 ? 0 : 1
