import { pino, type DestinationStream, type Logger } from 'pino'
import pretty from 'pino-pretty'

export type { Logger } from 'pino'

export interface AgentLoggerOptions {
  level?: string
  /** Human-readable output; by default when stdout is a terminal. */
  pretty?: boolean
  /** Where lines go; tests pass a capturing stream. Defaults to stdout. */
  destination?: DestinationStream
}

/*
 * Defence in depth: the agent never passes the license or values to the logger, but if a
 * future log call does, these paths are censored rather than shipped to a log aggregator.
 */
const REDACT = ['license', '*.license', 'values', '*.values', 'authorization', '*.authorization', 'headers', '*.headers']

export function createAgentLogger (opts: AgentLoggerOptions = {}): Logger {
  const options = { level: opts.level ?? 'info', base: { component: 'agent' }, redact: { paths: REDACT, censor: '[redacted]' } }
  if (opts.destination !== undefined) return pino(options, opts.destination)
  if (opts.pretty ?? process.stdout.isTTY === true) {
    // In-process stream rather than a transport worker: lines are written before a --once exit.
    return pino(options, pretty({ colorize: true, sync: true, ignore: 'pid,hostname,component' }))
  }
  // Synchronous so nothing is lost when --once calls process.exit right after logging.
  return pino(options, pino.destination({ dest: 1, sync: true }))
}
