/** Durations as written in channel files and on the command line: `90s`, `15m`, `1h`, `7d`, `1h30m`. */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }
const DURATION = /^(?:\d+(?:ms|s|m|h|d|w))+$/
const PART = /(\d+)(ms|s|m|h|d|w)/g

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
