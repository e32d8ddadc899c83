import type { DesiredState } from '../desired.js'
import type { ChartcastFacts, ObservedRelease } from '../truth.js'

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
  /**
   * Applies `desired` and records `facts` with it where `observe` reads them back (the helm
   * release, the dir applier's output set). Appliers that cannot record facts ignore them.
   */
  apply (desired: DesiredState, target: ApplyTarget, facts?: ChartcastFacts): Promise<void>
  /**
   * Reads what runs now from the place it runs (cluster, output directory). The reconciler
   * decides from this, not from its state directory. Appliers without it fall back to the
   * state directory's record of the last apply (a cache that a lost volume takes with it).
   */
  observe? (target: ApplyTarget): Promise<ObservedRelease>
  /** Returns a release stuck in a pending state to `revision` (helm rollback). */
  rollback? (target: ApplyTarget, revision: number): Promise<void>
}
