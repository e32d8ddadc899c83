import { createAgentLogger, type Logger } from '../../src/agent/logger.js'

export interface LogLine {
  level: number
  msg: string
  event?: string
  [key: string]: unknown
}

/** The agent's real logger (same redaction), writing parsed lines into an array. */
export function captureLogs (level = 'debug'): { logger: Logger, lines: LogLine[], raw: string[], events: () => string[], find: (event: string) => LogLine[] } {
  const lines: LogLine[] = []
  const raw: string[] = []
  const logger = createAgentLogger({
    level,
    destination: {
      write (chunk: string) {
        raw.push(chunk)
        lines.push(JSON.parse(chunk) as LogLine)
      }
    }
  })
  return {
    logger,
    lines,
    raw,
    events: () => lines.map((l) => l.event).filter((e): e is string => e !== undefined),
    find: (event) => lines.filter((l) => l.event === event)
  }
}
