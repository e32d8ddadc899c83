/**
 * `npm test`'s runner (test/run.mjs) against tap files of its own (test/fixtures/runner): it
 * passes what passes, fails what fails or crashes, shows a failure's TAP and stderr, and exits
 * non-zero when any file failed.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'

const fixtures = 'test/fixtures/runner'
const run = (...files: string[]): { status: number | null, stdout: string } => {
  const result = spawnSync(process.execPath, ['test/run.mjs', ...files.map((f) => `${fixtures}/${f}`)], { encoding: 'utf8', env: { ...process.env, TEST_JOBS: '2' } })
  return { status: result.status, stdout: result.stdout }
}

t.test('a passing file: exit 0, one ok line, its assertions counted', async (t) => {
  const { status, stdout } = run('passing.tap.ts')
  t.equal(status, 0)
  t.match(stdout, /^ok {5}test\/fixtures\/runner\/passing\.tap\.ts +\d+\.\d s$/m)
  t.match(stdout, /# 1 files, 0 failed; assertions: 2 total, 2 pass, 0 fail/)
  t.notMatch(stdout, /TAP version/, 'a passing file\'s TAP is not printed')
})

t.test('a failing file beside a passing one: exit 1, the failure\'s TAP and stderr shown', async (t) => {
  const { status, stdout } = run('passing.tap.ts', 'failing.tap.ts')
  t.equal(status, 1)
  t.match(stdout, /^FAILED test\/fixtures\/runner\/failing\.tap\.ts +\d+\.\d s \(exit code 1\)$/m)
  t.match(stdout, /^ok {5}test\/fixtures\/runner\/passing\.tap\.ts/m)
  t.match(stdout, /not ok 2 - the assertion that fails/)
  t.match(stdout, /--- stderr of test\/fixtures\/runner\/failing\.tap\.ts\na line the failing file wrote on stderr/)
  t.match(stdout, /# 2 files, 1 failed; assertions: 4 total, 3 pass, 1 fail/)
})

t.test('a file that exits before tap prints its counts fails, however it exits', async (t) => {
  const { status, stdout } = run('crashing.tap.ts')
  t.equal(status, 1)
  t.match(stdout, /^FAILED test\/fixtures\/runner\/crashing\.tap\.ts +\d+\.\d s \(exit code 3\)$/m)
})
