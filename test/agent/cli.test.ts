import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { access, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { runAgentCli, type AgentRuntime } from '../../src/cli/agent.js'
import { FakeSpecServer, makeSpec } from '../helpers/agent-fake-server.js'
import { workdir } from '../helpers/agent-harness.js'
import { captureLogs } from '../helpers/agent-log.js'
import { StandinHelm } from '../helpers/agent-standin-helm.js'

// `chartcast agent --once` exit codes, through runAgentCli (in-process, same code path as
// the real command) and, at the end, through real child processes.

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

async function setup (t: Test) {
  const server = await FakeSpecServer.start()
  t.teardown(() => server.stop().catch(() => {}))
  server.publish(makeSpec('1.4.0'))
  const wd = await workdir()
  const helm = await StandinHelm.create()
  const logs = captureLogs()
  const err: string[] = []
  const out: string[] = []
  const runtime: AgentRuntime = { logger: logs.logger, env: { HELM_BIN: helm.bin }, writeErr: (s) => err.push(s), writeOut: (s) => out.push(s) }
  const args = (...extra: string[]) => ['--server', server.url, '--channel', 'stable', '--license-file', wd.licenseFile, '--release', 'acme', '--namespace', 'acme-ns', '--state-dir', wd.stateDir, '--once', ...extra]
  return { server, wd, helm, logs, err, out, runtime, args }
}

t.test('exit 0: applied with the stand-in helm, then up to date', async (t) => {
  const { helm, runtime, args, logs } = await setup(t)
  t.equal(await runAgentCli(args(), runtime), 0)
  t.equal(await runAgentCli(args(), runtime), 0)
  t.equal((await helm.callsOf('upgrade')).length, 1, 'second run had nothing to apply')
  t.same(logs.find('done').map((l) => l.outcome), ['applied', 'unchanged'])
})

t.test('exit 0 with --applier dir writes the set', async (t) => {
  const { runtime, args, wd } = await setup(t)
  const out = join(wd.dir, 'out')
  t.equal(await runAgentCli(args('--applier', 'dir', '--out', out), runtime), 0)
  t.match(JSON.parse(await readFile(join(out, 'current', 'spec.json'), 'utf8')), { version: '1.4.0', release: 'acme' })
})

t.test('exit 1: helm fails, nothing recorded; the next run retries', async (t) => {
  const { helm, runtime, args, wd, logs } = await setup(t)
  await helm.behave(1, 'Error: UPGRADE FAILED: context deadline exceeded')
  t.equal(await runAgentCli(args(), runtime), 1)
  await t.rejects(access(join(wd.stateDir, 'applied.json')), 'not recorded as applied')
  t.match(logs.find('apply-failed')[0]?.reason, /exited with 1: Error: UPGRADE FAILED/)
  await helm.behave(0)
  t.equal(await runAgentCli(args(), runtime), 0)
  t.equal((await helm.callsOf('upgrade')).length, 2)
})

t.test('exit 2: usage and configuration errors', async (t) => {
  const { runtime, args, wd, err, helm, server } = await setup(t)
  t.equal(await runAgentCli(['--once', '--server', server.url], runtime), 2, 'missing required settings')
  t.match(err.join(''), /--release \(CHARTCAST_RELEASE\) is required/)
  t.equal(await runAgentCli(args('--bogus'), runtime), 2, 'unknown flag')
  t.equal(await runAgentCli(args('--applier', 'kubectl'), runtime), 2, 'bad choice')
  const proto = await wd.write('proto.yaml', 'a:\n  __proto__: { polluted: 1 }\n')
  t.equal(await runAgentCli(args('--user-values', proto), runtime), 2, 'prototype key')
  t.equal(await runAgentCli(args('--user-values', join(wd.dir, 'missing.yaml')), runtime), 2, 'missing file')
  t.equal(await runAgentCli(args(), { ...runtime, env: { HELM_BIN: join(wd.dir, 'no-helm') } }), 2, 'helm binary missing')
  t.equal((await helm.callsOf('upgrade')).length, 0)
})

t.test('exit 3: license refused; exit 4: unreachable without cache; 0 with cache', async (t) => {
  const { runtime, args, server, helm, logs, wd } = await setup(t)
  server.refusals.set('good-license', { status: 401, code: 'LICENSE_EXPIRED' })
  t.equal(await runAgentCli(args(), runtime), 3)
  t.equal(logs.find('license-refused')[0]?.code, 'LICENSE_EXPIRED')
  server.refusals.clear()
  t.equal(await runAgentCli(args(), runtime), 0)
  await server.stop()
  t.equal(await runAgentCli(args(), runtime), 0, 'cached spec, already applied')
  t.equal(logs.find('using-cache').length, 1)
  t.equal(await runAgentCli(args('--state-dir', join(wd.dir, 'empty-state')), runtime), 4)
  t.equal((await helm.callsOf('upgrade')).length, 1)
})

t.test('reports: --once posts them before it exits; --no-report and CHARTCAST_NO_REPORT post none', async (t) => {
  const { runtime, args, server, helm, wd } = await setup(t)
  await helm.behave(1, 'Error: UPGRADE FAILED: timed out waiting for the condition')
  t.equal(await runAgentCli(args(), runtime), 1)
  t.match(server.reports, [{ version: '1.4.0', outcome: 'failed', detail: /^helm exited with 1: Error: UPGRADE FAILED: timed out/ }])
  await helm.behave(0)
  t.equal(await runAgentCli(args(), runtime), 0)
  t.same(server.reports.map((b) => b.outcome), ['failed', 'applied'])
  t.equal(server.requests[1]?.applied, undefined, 'nothing applied yet on the second run')
  t.equal(await runAgentCli(args(), runtime), 0)
  t.equal(server.requests[2]?.applied, '1.4.0', 'a new process reads the applied version from the release (helm history)')

  server.publish(makeSpec('1.5.0'))
  const noReport = await runAgentCli(args('--no-report', '--state-dir', join(wd.dir, 'state-2')), runtime)
  t.equal(noReport, 0)
  t.equal(await runAgentCli(args('--state-dir', join(wd.dir, 'state-3')), { ...runtime, env: { ...runtime.env, CHARTCAST_NO_REPORT: 'true' } }), 0)
  t.equal((await helm.callsOf('upgrade')).length, 3, 'the first applied 1.5.0; the second, on a fresh state dir, found it running')
  t.equal(server.reportRequests.length, 2, 'neither reported')
})

t.test('--help lists flags, environment and exit codes', async (t) => {
  const { runtime, out } = await setup(t)
  t.equal(await runAgentCli(['--help'], runtime), 0)
  const help = out.join('')
  for (const text of ['--server', '--from-file', '--allow-downgrade', '--no-report', 'CHARTCAST_NO_REPORT', 'CHARTCAST_INTERVAL', 'HELM_BIN', 'CHARTCAST_HELM_TIMEOUT', 'Exit codes', '4  server unreachable', '5  another agent holds', '--window', '--max-failures', '--retry-failed', '--apply-now', '--max-body']) {
    t.match(help, text)
  }
})

function spawnAgent (entry: string, args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (c: string) => { stdout += c })
  child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c })
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  const events = () => stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { event?: string })
  const waitFor = async (event: string) => {
    while (!events().some((e) => e.event === event)) {
      if (child.exitCode !== null) throw new Error(`agent exited before "${event}": ${stdout}${stderr}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  return { child, exited, events, waitFor, output: () => stdout + stderr }
}

t.test('spawned: real exit code, JSON logs, no license in the output', async (t) => {
  const { args, wd } = await setup(t)
  const run = spawnAgent('test/helpers/agent-cli-main.ts', args('--applier', 'dir', '--out', join(wd.dir, 'out')))
  t.equal(await run.exited, 0)
  t.same(run.events().map((e) => e.event), ['fetched', 'applying', 'applied', 'done'])
  t.notMatch(run.output(), /good-license/)
})

t.test('spawned: SIGTERM stops the loop cleanly with exit 0', async (t) => {
  const { wd, server } = await setup(t)
  const out = join(wd.dir, 'out')
  const run = spawnAgent('test/helpers/agent-cli-main.ts', [], {
    CHARTCAST_SERVER: server.url,
    CHARTCAST_CHANNEL: 'stable',
    CHARTCAST_LICENSE_FILE: wd.licenseFile,
    CHARTCAST_RELEASE: 'acme',
    CHARTCAST_NAMESPACE: 'acme-ns',
    CHARTCAST_STATE_DIR: wd.stateDir,
    CHARTCAST_APPLIER: 'dir',
    CHARTCAST_OUT: out,
    CHARTCAST_INTERVAL: '1h'
  })
  await run.waitFor('applied')
  run.child.kill('SIGTERM')
  t.equal(await run.exited, 0)
  const events = run.events().map((e) => e.event)
  t.ok(events.includes('stopping'), 'logged the signal')
  t.equal(events.at(-1), 'stopped')
})

const MAIN_ENTRY = join(ROOT, 'src', 'cli', 'index.ts')
t.test('spawned through the main CLI entry (src/cli/index.ts)', { skip: existsSync(MAIN_ENTRY) ? false : 'src/cli/index.ts not present yet' }, async (t) => {
  const entry = MAIN_ENTRY
  const { wd, server } = await setup(t)
  await server.stop()
  const run = spawnAgent(entry, ['agent', '--server', server.url, '--channel', 'stable', '--license-file', wd.licenseFile, '--release', 'acme', '--namespace', 'acme-ns', '--state-dir', wd.stateDir, '--once'])
  t.equal(await run.exited, 4, 'unreachable, no cache')
  const usage = spawnAgent(entry, ['agent', '--once', '--no-such-flag'])
  t.equal(await usage.exited, 2, 'usage error is 2, not commander\'s 1')
})

t.test('exit 5: two --once agents at once on one state dir; exactly one runs helm', async (t) => {
  const { helm, runtime, args, logs } = await setup(t)
  await helm.behave(0, '', { upgradeMs: 500 })
  const codes = await Promise.all([runAgentCli(args(), runtime), runAgentCli(args(), runtime)])
  t.same(codes.sort(), [0, 5])
  t.same(await helm.overlaps(), [], 'never two helm processes at once')
  t.equal((await helm.callsOf('upgrade')).length, 1)
  t.match(logs.find('locked')[0]?.msg, /another agent holds the lock for acme-ns\/acme/)
  t.equal(await runAgentCli(args(), runtime), 0, 'the lock is released afterwards')
})
