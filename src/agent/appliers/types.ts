import type { DesiredState } from '../desired.js'

export interface ApplyTarget {
  release: string
  namespace: string
}

/**
 * Makes the desired state real. Must throw when it did not fully succeed: the reconciler
 * records the digest as applied only after `apply` resolves, so a throw means "retry later".
 * Throw ApplierUnavailableError when the applier cannot run at all (configuration).
 */
export interface Applier {
  readonly name: string
  apply (desired: DesiredState, target: ApplyTarget): Promise<void>
}
