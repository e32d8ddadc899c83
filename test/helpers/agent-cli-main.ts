/**
 * Process entry for CLI spawn tests: `node --import tsx test/helpers/agent-cli-main.ts ARGS`
 * behaves like `chartcast agent ARGS` (real env, real signals, real exit code) without
 * loading the server half of the CLI.
 */
import { runAgentCli } from '../../src/cli/agent.js'

process.exitCode = await runAgentCli(process.argv.slice(2))
