/**
 * Errors the agent distinguishes, because each maps to a different exit code under
 * `--once` and a different log line in the loop.
 */

/** Exit codes of `chartcast agent --once` (also documented in `--help` and docs/agent.md). */
export const EXIT = {
  OK: 0,
  APPLY_FAILED: 1,
  CONFIG: 2,
  LICENSE_REFUSED: 3,
  UNREACHABLE: 4,
  /** Another agent holds this release's lock, or Helm reports an operation in progress on it. */
  LOCKED: 5,
  /** --trust-root: the answer failed a signature check; nothing was changed. */
  UNVERIFIED: 6
} as const

export type ExitCode = typeof EXIT[keyof typeof EXIT]

/**
 * A problem with what the operator gave us (flags, env, files). Retrying cannot fix it
 * until someone edits the input, so `--once` exits 2.
 */
export class ConfigError extends Error {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ConfigError'
  }
}

/** The applier cannot run at all (e.g. no helm binary): a configuration problem, not a failed apply. */
export class ApplierUnavailableError extends ConfigError {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ApplierUnavailableError'
  }
}

export function errorMessage (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
