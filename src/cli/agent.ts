import { Command, CommanderError, Option } from 'commander'
import type { Applier } from '../agent/appliers/types.js'
import type { FetchLike } from '../agent/client.js'
import { ConfigError, EXIT, errorMessage } from '../agent/errors.js'
import type { Logger } from '../agent/logger.js'
import { DEFAULT_HELM_TIMEOUT, DEFAULT_STATE_DIR, ENV_VARS, resolveAgentOptions, type AgentFlags, type AgentOptions } from '../agent/options.js'
import type { Random, Sleep } from '../agent/timing.js'

/** Seams for tests and embedding; everything defaults to the real process. */
export interface AgentRuntime {
  logger?: Logger
  fetch?: FetchLike
  applier?: Applier
  sleep?: Sleep
  random?: Random
  /** The clock (maintenance windows, the age of a pending release, the circuit breaker's 24 h). */
  now?: () => number
  /** Environment to read options from (default: process.env, read in src/agent/options.ts). */
  env?: Record<string, string | undefined>
  /** When given, the agent stops when it aborts and installs no SIGTERM/SIGINT handlers. */
  signal?: AbortSignal
  /** Where help and usage errors go (default: stdout/stderr). */
  writeOut?: (text: string) => void
  writeErr?: (text: string) => void
}

const HELP_AFTER = `
Exit codes (with --once; the loop exits 0 when stopped, 2 when the first cycle finds the configuration unusable):
  0  up to date, applied, a downgrade refused, no upgrade path (409 NO_UPGRADE_PATH), or outside every --window (nothing changed)
  1  apply failed (nothing recorded as applied), held back after --max-failures, or an unexpected error
  2  usage or configuration error (bad flag/file, forbidden key, unknown channel or release)
  3  license refused by the server (401/403); nothing was changed
  4  server unreachable and no cached spec in --state-dir
  5  another agent holds this release's lock, or helm reports an operation in progress on it
  6  --trust-root is set and the answer failed a signature check; nothing was changed

Environment (a flag wins over its variable):
${Object.entries(ENV_VARS).map(([key, name]) => `  ${name.padEnd(26)} --${kebab(key)}`).join('\n')}
  ${'HELM_BIN'.padEnd(26)} helm binary (default: helm on PATH)
  ${'CHARTCAST_HELM_TIMEOUT'.padEnd(26)} helm --timeout (default ${DEFAULT_HELM_TIMEOUT})

Layering (higher wins): channel spec < --user-values < --cr. Maps merge, arrays and scalars
replace, null deletes. A chart in the CR replaces the channel's chart. See docs/agent.md.
`

function kebab (key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
}

/** Adds `chartcast agent` to the main program. */
export function registerAgentCommand (program: Command, runtime: AgentRuntime = {}): void {
  const cmd = defineAgentCommand(program, runtime, (code) => { process.exitCode = code })
  // Usage errors are exit 2 ("usage or configuration error"), not commander's default 1.
  cmd.exitOverride((err) => {
    process.exit(err.exitCode === 0 ? 0 : EXIT.CONFIG)
  })
}

/**
 * Runs `chartcast agent ARGV...` in-process and resolves to the exit code, without exiting
 * the process. Used by tests and by anything embedding the agent.
 */
export async function runAgentCli (argv: string[], runtime: AgentRuntime = {}): Promise<number> {
  const program = new Command('chartcast')
  let code: number = EXIT.OK
  const cmd = defineAgentCommand(program, runtime, (c) => { code = c })
  program.exitOverride()
  cmd.exitOverride()
  try {
    await program.parseAsync(['agent', ...argv], { from: 'user' })
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.OK : EXIT.CONFIG
    throw err
  }
  return code
}

function defineAgentCommand (program: Command, runtime: AgentRuntime, setExit: (code: number) => void): Command {
  const env = (key: keyof AgentFlags): string => ` (env ${ENV_VARS[key]})`
  const cmd = program.command('agent')
    .description('In-cluster reconciler: polls a release channel, layers local values over it and applies it with helm (or writes it to a directory).')
    .option('--server <url>', 'chartcast server base URL' + env('server'))
    .option('--channel <name>', 'release channel to follow, e.g. stable' + env('channel'))
    .option('--license-file <file>', 'file holding the license JWT; default: spec.values.global.license of --cr' + env('licenseFile'))
    .option('--release <name>', 'helm release name (required)' + env('release'))
    .option('--namespace <ns>', 'Kubernetes namespace, created if missing (required)' + env('namespace'))
    .option('--user-values <file>', 'YAML values layered over the channel values' + env('userValues'))
    .option('--cr <file>', 'custom resource (kind WeightsAndBiases) or plain values YAML, the highest layer; its spec.chart replaces the channel chart' + env('cr'))
    .addOption(new Option('--applier <kind>', 'how to apply: helm upgrade --install, or write files to --out' + env('applier')).choices(['helm', 'dir']))
    .option('--out <dir>', 'output directory for --applier dir' + env('out'))
    .option('--state-dir <dir>', `where the last good spec and applied digest are kept (default ${DEFAULT_STATE_DIR})` + env('stateDir'))
    .option('--interval <duration>', 'poll interval such as 15m or 1h; default: the server\'s hint, else 1h (jittered ±10%)' + env('interval'))
    .option('--once', 'run one cycle and exit with a status code (see below)' + env('once'))
    .option('--from-file <spec>', 'air-gapped: read the channel spec (JSON or YAML), or a signed bundle (chartcast bundle export), from this file instead of a server' + env('fromFile'))
    .option('--allow-downgrade', 'allow moving to a lower release version than the one applied' + env('allowDowngrade'))
    .option('--never-downgrade', 'refuse every move to a lower version, a rollback the server sanctions (metadata.rollback "true") too' + env('neverDowngrade'))
    .option('--pin-version <version>', 'follow this release version of the channel instead of its latest' + env('pinVersion'))
    .option('--no-report', 'do not post a report (applied, failed, skipped) to the server after each apply attempt' + env('noReport'))
    .option('--trust-root <file>', 'vendor root public key (PEM or JWK) or keyset: every answer must then carry a valid Chartcast-Signature (docs/signing.md)' + env('trustRoot'))
    .addOption(new Option('--log-level <level>', 'log level' + env('logLevel')).choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
    .option('--max-failures <n>', 'failed applies of one desired state before it is held back (default 3)' + env('maxFailures'))
    .option('--retry-failed', 'try a held-back desired state again once' + env('retryFailed'))
    .option('--window <spec>', 'maintenance window, repeatable: "Sat,Sun 02:00-06:00 Europe/Berlin"; outside every window nothing is applied' + env('window') + ', windows separated by ;',
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value])
    .option('--apply-now', 'apply once now even outside the maintenance windows (or: touch STATE_DIR/apply-now)' + env('applyNow'))
    .option('--max-body <size>', 'largest server response read, e.g. 10MiB (default); a larger one is an unusable answer' + env('maxBody'))
    .addHelpText('after', HELP_AFTER)
    .action(async ({ report, ...flags }: AgentFlags & { report?: boolean }) => {
      // commander turns --no-report into report: false (and true when absent, hiding the env var).
      if (report === false) flags.noReport = true
      setExit(await runAgentFromFlags(flags, runtime))
    })
  if (runtime.writeOut !== undefined || runtime.writeErr !== undefined) {
    const out = { writeOut: runtime.writeOut ?? ((s: string) => process.stdout.write(s)), writeErr: runtime.writeErr ?? ((s: string) => process.stderr.write(s)) }
    program.configureOutput(out)
    cmd.configureOutput(out)
  }
  return cmd
}

async function runAgentFromFlags (flags: AgentFlags, runtime: AgentRuntime): Promise<number> {
  let options: AgentOptions
  try {
    options = resolveAgentOptions(flags, runtime.env)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    const write = runtime.writeErr ?? ((s: string) => process.stderr.write(s))
    write(`chartcast agent: ${err.message}\n`)
    return EXIT.CONFIG
  }
  return runAgent(options, runtime)
}

/**
 * Wires real dependencies around the Reconciler and runs it once or until stopped. They are
 * imported here, not at the top, so that every other `chartcast` command (and `--help`) starts
 * without loading the agent, its logger and its appliers.
 */
export async function runAgent (options: AgentOptions, runtime: AgentRuntime = {}): Promise<number> {
  const [{ createApplier }, { SpecClient }, { createAgentLogger }, { exitCodeFor, Reconciler }, { Reporter }, { FileStateStore, FileRevisionStore }, { createReleaseLock }] = await Promise.all([
    import('../agent/appliers/index.js'), import('../agent/client.js'), import('../agent/logger.js'),
    import('../agent/reconciler.js'), import('../agent/reporter.js'), import('../agent/state.js'), import('../agent/lock.js')
  ])
  let verifier: import('../agent/spec-verifier.js').AnswerVerifier | undefined
  if (options.trustRoot !== undefined) {
    const [{ readFile }, { parseTrustRoot }, { SpecVerifier }] = await Promise.all([import('node:fs/promises'), import('../domain/keyset.js'), import('../agent/spec-verifier.js')])
    try {
      const trust = parseTrustRoot(await readFile(options.trustRoot, 'utf8'))
      verifier = new SpecVerifier({ trust, maxBodyBytes: options.maxBodyBytes, ...(options.server !== undefined && { server: options.server }), ...(runtime.fetch !== undefined && { fetch: runtime.fetch }) })
    } catch (err) {
      const write = runtime.writeErr ?? ((s: string) => process.stderr.write(s))
      write(`chartcast agent: --trust-root ${options.trustRoot}: ${errorMessage(err)}\n`)
      return EXIT.CONFIG
    }
  }
  const logger = runtime.logger ?? createAgentLogger({ level: options.logLevel })
  const log = logger.child({ release: options.release, namespace: options.namespace, channel: options.channel })
  const state = new FileStateStore(options.stateDir, (message) => log.warn({ event: 'state-warning' }, message))
  const client = options.fromFile === undefined
    ? new SpecClient({ server: options.server as string, channel: options.channel as string, pin: options.pinVersion, fetch: runtime.fetch, maxBodyBytes: options.maxBodyBytes })
    : undefined
  const lock = createReleaseLock(options, (err) => {
    log.error({ event: 'lock-lost', reason: errorMessage(err) }, `the release lock was taken from this agent: ${errorMessage(err)}`)
  })
  const reconciler = new Reconciler({
    release: options.release,
    namespace: options.namespace,
    allowDowngrade: options.allowDowngrade,
    ...(options.neverDowngrade === true && { neverDowngrade: true }),
    intervalMs: options.intervalMs,
    fromFile: options.fromFile,
    ...(options.trustRoot === undefined ? {} : { trustRoot: options.trustRoot }),
    server: options.server,
    channel: options.channel,
    pin: options.pinVersion,
    inputs: { userValues: options.userValues, cr: options.cr, licenseFile: options.licenseFile, needLicense: options.fromFile === undefined },
    maxFailures: options.maxFailures,
    retryFailed: options.retryFailed,
    windows: options.windows,
    applyNow: options.applyNow,
    helmTimeoutMs: options.helmTimeoutMs,
    waitForLock: !options.once
  }, {
    applier: runtime.applier ?? createApplier(options),
    state,
    logger: log,
    client,
    reporter: client !== undefined && options.report ? new Reporter({ client, logger: log }) : undefined,
    sleep: runtime.sleep,
    random: runtime.random,
    now: runtime.now,
    lock,
    ...(verifier !== undefined && { verifier, revisions: new FileRevisionStore(options.stateDir, (message) => log.warn({ event: 'state-warning' }, message)) })
  })

  const { signal, dispose } = runtime.signal !== undefined ? { signal: runtime.signal, dispose: () => {} } : processSignal(log)
  try {
    if (options.once) {
      const report = await reconciler.reconcile(signal)
      const code = exitCodeFor(report)
      log.info({ event: 'done', outcome: report.outcome, exitCode: code }, `done: ${report.outcome}`)
      return code
    }
    return await reconciler.run(signal)
  } catch (err) {
    log.error({ event: 'error', reason: errorMessage(err) }, `agent failed: ${errorMessage(err)}`)
    return EXIT.APPLY_FAILED
  } finally {
    dispose()
  }
}

/**
 * SIGTERM/SIGINT abort the loop between steps (a sleep or fetch ends at once; a running
 * helm apply is allowed to finish, since killing helm mid-upgrade can leave the release
 * stuck). A second signal exits immediately for an operator who really means it.
 */
function processSignal (log: Logger): { signal: AbortSignal, dispose: () => void } {
  const controller = new AbortController()
  const onSignal = (name: NodeJS.Signals): void => {
    if (controller.signal.aborted) {
      log.warn({ event: 'forced-exit', signal: name }, 'second signal: exiting now')
      process.exit(128 + (name === 'SIGINT' ? 2 : 15))
    }
    log.info({ event: 'stopping', signal: name }, `${name} received; stopping after the current step`)
    controller.abort()
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGTERM', onSignal)
      process.off('SIGINT', onSignal)
    }
  }
}
