/** The promote form's rollout fields, read into the body of POST /channels/:name/releases (issue #10 shapes). */
import type { AutoPause, RolloutStep } from './api.js'

export const DEFAULT_STEPS = '10% 0s, 50% 1h, 100% 24h'
export const DEFAULT_AUTO_PAUSE: AutoPause = { maxFailures: 5, maxFailureRate: 0.05, minReports: 20 }

/** "10% 0s, 50% 1h, 100% 24h" -> steps; an error message names what is wrong. The server checks the rules again. */
export function parseSteps (text: string): { ok: true, steps: RolloutStep[] } | { ok: false, message: string } {
  const steps: RolloutStep[] = []
  for (const part of text.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const match = /^([0-9]+(?:\.[0-9]+)?)\s*%?\s+(?:after\s+)?([0-9]+(?:ms|s|m|h|d))$/i.exec(part)
    if (match === null) return { ok: false, message: `"${part}" is not "PERCENT% DURATION", e.g. "10% 0s" or "100% 24h"` }
    steps.push({ percent: Number(match[1]), after: match[2]!.toLowerCase() })
  }
  if (steps.length === 0) return { ok: false, message: 'give at least one step, e.g. "10% 0s, 100% 24h"' }
  if (steps[0]!.after !== '0s') return { ok: false, message: 'the first step starts at once: its duration is 0s' }
  for (let i = 1; i < steps.length; i++) {
    if (steps[i]!.percent <= steps[i - 1]!.percent) return { ok: false, message: 'percents must rise from step to step' }
  }
  if (steps.at(-1)!.percent !== 100) return { ok: false, message: 'the last step is 100%' }
  return { ok: true, steps }
}
