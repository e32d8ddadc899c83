/**
 * Request loggers made when first used. fastify gives every request a child logger carrying
 * its `reqId`; a pino child costs about half a microsecond and a heavy object per request, and
 * a spec pull that succeeds never logs. This stands in for the child and makes the real one
 * (same parent, bindings and options, so the same log lines) the first time anything is logged.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Bindings, ChildLoggerOptions } from 'fastify/types/logger.js'

type Log = (...args: unknown[]) => void

class LazyRequestLogger {
  private made: FastifyBaseLogger | null = null

  constructor (private readonly parent: FastifyBaseLogger, private readonly bindings: Bindings, private readonly options: ChildLoggerOptions) {}

  private real (): FastifyBaseLogger {
    this.made ??= this.parent.child(this.bindings, this.options)
    return this.made
  }

  get level (): string {
    return this.made?.level ?? this.options.level ?? this.parent.level
  }

  set level (level: string) {
    this.real().level = level
  }

  fatal (...args: unknown[]): void { (this.real().fatal as Log)(...args) }
  error (...args: unknown[]): void { (this.real().error as Log)(...args) }
  warn (...args: unknown[]): void { (this.real().warn as Log)(...args) }
  info (...args: unknown[]): void { (this.real().info as Log)(...args) }
  debug (...args: unknown[]): void { (this.real().debug as Log)(...args) }
  trace (...args: unknown[]): void { (this.real().trace as Log)(...args) }
  silent (...args: unknown[]): void { (this.real().silent as Log)(...args) }

  child (bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.real().child(bindings, options)
  }
}

/** fastify's `childLoggerFactory`: the request's logger, made on first use. */
export function lazyRequestLogger (logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  return new LazyRequestLogger(logger, bindings, options) as unknown as FastifyBaseLogger
}
