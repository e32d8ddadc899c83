/**
 * `npm test`: runs every test file, as tap's runner would, without what tap's runner adds to
 * each test process. A tap test file is its own main script (`node file` runs it the same way
 * `tap file` does, printing TAP and exiting non-zero on a failure), so this starts each file
 * with Node and the options of package.json "tap" (node-arg, jobs, timeout, include/exclude),
 * plus tap's mock loader for `t.mockImport`. What it leaves out is @tapjs/processinfo, which tap
 * loads into every test process for coverage and `tap --changed` (coverage is off here); as one
 * more module-hooks chain it cost about 1 s of CPU per test process, some 2 minutes of CPU over
 * the suite. `npx tap FILE` still runs one file through tap itself.
 *
 * Prints one line per file as it finishes, with its time; a failed file's TAP and stderr in full;
 * then the totals. Exits non-zero when any file fails, times out or is killed.
 * Usage: node test/run.mjs [FILE...]   (TEST_JOBS overrides tap.jobs)
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

async function runFile (file) {
  const started = Date.now()
  const child = spawn(process.execPath, [`--import=${mockLoader}`, ...config['node-arg'], file], {
    cwd: root,
    // TAP_TIMEOUT: the root test's own timeout, as tap's runner sets it; the kill below is for a
    // process that hangs past it.
    // No TAP_CHILD_ID: the file is the process root, so tap prints the counts read back below.
    env: { ...process.env, TAP_TIMEOUT: String(timeoutSeconds), TAP_CHILD_ID: undefined },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const stdout = []
  const stderr = []
  child.stdout.on('data', (chunk) => stdout.push(chunk))
  child.stderr.on('data', (chunk) => stderr.push(chunk))
  let killed = false
  const kill = setTimeout(() => {
    killed = true
    child.kill('SIGKILL')
  }, (timeoutSeconds + 30) * 1000)
  const [code, signal] = await new Promise((resolve) => child.on('close', (code, signal) => resolve([code, signal])))
  clearTimeout(kill)
  const tap = Buffer.concat(stdout).toString()
  const counted = summary(tap)
  const counts = counted ?? { total: 0, pass: 0 }
  const ok = code === 0 && signal === null && counted !== null && (counts.fail ?? 0) === 0
  const why = killed ? `killed after ${timeoutSeconds + 30} s` : signal !== null ? `killed by ${signal}` : code !== 0 ? `exit code ${code}` : counted === null ? 'no TAP summary' : ''
  return { file, ok, why, counts, counted: counted !== null, seconds: (Date.now() - started) / 1000, tap, stderr: Buffer.concat(stderr).toString() }
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

// Files never timed first (they may be long), then the longest.
const files = (process.argv.length > 2 ? process.argv.slice(2) : testFiles())
  .map((file, index) => ({ file, index, seconds: durations[file] ?? Infinity }))
  .sort((a, b) => b.seconds - a.seconds || a.index - b.index)
  .map(({ file }) => file)
const results = []
const started = Date.now()
const totals = { files: 0, failedFiles: 0, total: 0, pass: 0, fail: 0, skip: 0, todo: 0 }
let next = 0
async function worker () {
  while (next < files.length) {
    const result = await runFile(files[next++])
    results.push(result)
    totals.files++
    for (const key of ['total', 'pass', 'fail', 'skip', 'todo']) totals[key] += result.counts[key] ?? 0
    if (!result.ok) {
      totals.failedFiles++
      process.stdout.write(`${result.tap}\n${result.stderr === '' ? '' : `--- stderr of ${result.file}\n${result.stderr}\n`}`)
    }
    process.stdout.write(`${result.ok ? 'ok    ' : 'FAILED'} ${result.file.padEnd(48)} ${result.seconds.toFixed(1)} s${result.why === '' ? '' : ` (${result.why})`}\n`)
  }
}
await Promise.all(Array.from({ length: Math.min(jobs, files.length) }, worker))
writeDurations(results)
process.stdout.write(`# ${totals.files} files, ${totals.failedFiles} failed; assertions: ${totals.total} total, ${totals.pass} pass, ${totals.fail} fail, ${totals.skip} skip, ${totals.todo} todo\n`)
process.stdout.write(`# time=${((Date.now() - started) / 1000).toFixed(1)} s\n`)
process.exitCode = totals.failedFiles === 0 ? 0 : 1
