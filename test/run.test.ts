/**
 * `npm test`'s runner (test/run.mjs) against tap files of its own (test/fixtures/runner): it
 * passes what passes, fails what fails or crashes, shows a failure's TAP and stderr, and exits
 * non-zero when any file failed. Files share test processes (test/helpers/file-worker.mjs), so it
 * also checks what sharing must not change: a file's `t` and teardowns are its own, a crash
 * fails only the file that crashed, and a file can ask for a process of its own.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'

const fixtures = 'test/fixtures/runner'
/** Runs the fixtures in the order given; one job, so they go through the same worker in turn. */
const run = (...files: string[]): { status: number | null, stdout: string } => {
  const result = spawnSync(process.execPath, ['test/run.mjs', ...files.map((f) => `${fixtures}/${f}`)], { encoding: 'utf8', env: { ...process.env, TEST_JOBS: '1' } })
  return { status: result.status, stdout: result.stdout }
}

t.test('a passing file: exit 0, one ok line, its assertions counted', async (t) => {
  const { status, stdout } = run('passing.tap.ts')
  t.equal(status, 0)
  t.match(stdout, /^ok {5}test\/fixtures\/runner\/passing\.tap\.ts +\d+\.\d s +\d+\.\d s CPU$/m, 'a file run in a worker: its time and its CPU')
  t.match(stdout, /# 1 files, 0 failed; assertions: 2 total, 2 pass, 0 fail/)
  t.notMatch(stdout, /TAP version|# Subtest/, 'a passing file\'s TAP is not printed')
})

t.test('a failing file beside a passing one: exit 1, the failure\'s TAP and stderr shown', async (t) => {
  const { status, stdout } = run('passing.tap.ts', 'failing.tap.ts')
  t.equal(status, 1)
  t.match(stdout, /^FAILED test\/fixtures\/runner\/failing\.tap\.ts +\d+\.\d s +\d+\.\d s CPU$/m)
  t.match(stdout, /^ok {5}test\/fixtures\/runner\/passing\.tap\.ts/m)
  t.match(stdout, /not ok 2 - the assertion that fails/)
  t.notMatch(stdout, /# Subtest: passes/, 'only the failed file\'s TAP is shown')
  t.match(stdout, /--- stderr of test\/fixtures\/runner\/failing\.tap\.ts\na line the failing file wrote on stderr/)
  t.match(stdout, /# 2 files, 1 failed; assertions: 4 total, 3 pass, 1 fail/)
})

t.test('a file that ends its process fails alone: the next file runs in a new process and passes', async (t) => {
  const { status, stdout } = run('crashing.tap.ts', 'passing.tap.ts')
  t.equal(status, 1)
  t.match(stdout, /^FAILED test\/fixtures\/runner\/crashing\.tap\.ts +\d+\.\d s \(exit code \d+\)$/m)
  t.match(stdout, /^ok {5}test\/fixtures\/runner\/passing\.tap\.ts/m)
  t.match(stdout, /# 2 files, 1 failed; assertions: 2 total, 2 pass, 0 fail/)
})

t.test('a file\'s t is its own subtest: its teardown runs before the next file starts', async (t) => {
  // after-teardown.tap.ts fails, so its stderr is shown: the part written since it started.
  // Were the first file's `t` the process's root, its teardown would run at the very end, inside that part.
  const { status, stdout } = run('teardown.tap.ts', 'after-teardown.tap.ts')
  t.equal(status, 1)
  t.match(stdout, /^ok {5}test\/fixtures\/runner\/teardown\.tap\.ts/m)
  const shown = stdout.slice(stdout.indexOf('--- stderr of test/fixtures/runner/after-teardown.tap.ts'))
  t.match(shown, /after-teardown\.tap\.ts: started/)
  t.notMatch(shown, /teardown ran/)
})

t.test('a file that says "test-runner: own-process" runs as a process of its own', async (t) => {
  // The fixture checks that it is the process's main script, which it is not in a shared worker.
  const { status, stdout } = run('passing.tap.ts', 'own-process.tap.ts', 'failing.tap.ts')
  t.match(stdout, /^ok {5}test\/fixtures\/runner\/own-process\.tap\.ts/m)
  t.match(stdout, /^FAILED test\/fixtures\/runner\/failing\.tap\.ts/m)
  t.equal(status, 1)
})
