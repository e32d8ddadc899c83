#!/usr/bin/env node
/** The `chartcast` command: one binary for the server, its maintenance, tokens, licenses and the agent. */
import { Command, CommanderError } from 'commander'
import { loadEnvFile } from '../config.js'
import { registerAgentCommand } from './agent.js'
import { registerServerCommands } from './server-commands.js'
import { registerCredentialCommands } from './credential-commands.js'
import { registerAuditCommands } from './audit-commands.js'
import { registerBundleCommands } from './bundle-commands.js'
import { registerKeysCommands } from './keys-commands.js'

export function buildProgram (): Command {
  const program = new Command()
    .name('chartcast')
    .description('Release-channel deploy server for Helm-packaged software, and its in-cluster agent.')
    .version('0.1.0')
    // The program's own options (--version) only before a command: `bundle export --version X`
    // is the command's --version, not a request to print ours and exit 0 having done nothing.
    .enablePositionalOptions()
    .showHelpAfterError()
  // The server's configuration may come from a .env file in the working directory (the real
  // environment wins). Not for the agent: it runs elsewhere, configured by its own CHARTCAST_*
  // variables and flags, and must not pick up a server's .env from the directory it runs in.
  program.hook('preAction', (_program, command) => {
    if (command.name() !== 'agent') loadEnvFile()
  })
  registerServerCommands(program)
  registerCredentialCommands(program)
  registerAgentCommand(program)
  registerAuditCommands(program)
  registerKeysCommands(program)
  registerBundleCommands(program)
  return program
}

try {
  await buildProgram().parseAsync(process.argv)
} catch (error) {
  if (error instanceof CommanderError) process.exit(error.exitCode)
  process.stderr.write(`chartcast: ${(error as Error).message}\n`)
  process.exit(process.exitCode !== undefined && process.exitCode !== 0 ? process.exitCode : 1)
}
