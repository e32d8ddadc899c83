/**
 * Durations as written in channel files, configuration and on the command line: `90s`, `15m`,
 * `1h`, `7d`, `1y`, `1h30m`. A year is 365 days: these are lifetimes and intervals, not dates.
 */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 31_536_000_000 }
const DURATION = /^(?:\d+(?:ms|s|m|h|d|w|y))+$/
const PART = /(\d+)(ms|s|m|h|d|w|y)/g
/** Units formatDuration writes, largest first (weeks left out: `30d` reads better than `4w2d`). */
const FORMAT_UNITS = ['y', 'd', 'h', 'm', 's', 'ms'] as const

export function isDuration (text: string): boolean {
  return DURATION.test(text)
}

/** Milliseconds, or null when the text is not a duration. */
export function parseDuration (text: string): number | null {
  if (!DURATION.test(text)) return null
  let total = 0
  for (const [, amount, unit] of text.matchAll(PART)) total += Number(amount) * UNIT_MS[unit as string]!
  return total
}

/** The shortest text parseDuration reads back as the same milliseconds, e.g. 2592000000 -> `30d`. */
export function formatDuration (ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new RangeError(`${ms} is not a whole, non-negative number of milliseconds`)
  if (ms === 0) return '0s'
  let rest = ms
  let text = ''
  for (const unit of FORMAT_UNITS) {
    const size = UNIT_MS[unit]!
    if (rest >= size) {
      text += `${Math.floor(rest / size)}${unit}`
      rest %= size
    }
  }
  return text
}
