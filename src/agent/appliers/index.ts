import type { AgentOptions } from '../options.js'
import { DirApplier } from './dir.js'
import { HelmApplier } from './helm.js'
import type { Applier } from './types.js'

export type { Applier, ApplyTarget } from './types.js'
export { DirApplier } from './dir.js'
export { HelmApplier } from './helm.js'

export function createApplier (options: AgentOptions): Applier {
  if (options.applier === 'dir') return new DirApplier(options.out as string)
  return new HelmApplier({ helmBin: options.helmBin, timeoutMs: options.helmTimeoutMs })
}
