/**
 * Whether an instant is inside a maintenance window, and when the next one opens; see
 * window-spec.ts for the syntax and how DST is handled.
 */
import { DateTime } from 'luxon'
import type { MaintenanceWindow } from './window-spec.js'

export { parseWindow, type MaintenanceWindow } from './window-spec.js'

/** The window's occurrences that start on local dates around `at`, as [open, close) in ms. */
function occurrences (window: MaintenanceWindow, at: number, daysBefore: number, daysAfter: number): Array<[number, number]> {
  const local = DateTime.fromMillis(at, { zone: window.zone }).startOf('day')
  const out: Array<[number, number]> = []
  for (let offset = -daysBefore; offset <= daysAfter; offset++) {
    const day = local.plus({ days: offset })
    if (!window.days.has(day.weekday)) continue
    const open = wallClock(day, window.start, window.zone)
    const endDay = window.end > window.start ? day : day.plus({ days: 1 })
    let close = wallClock(endDay, window.end, window.zone)
    // Wholly inside a spring-forward gap: both ends moved to the same instant. Keep the nominal length.
    if (close <= open) close = open + (((window.end - window.start) % 1440 + 1440) % 1440) * 60_000
    out.push([open, close])
  }
  return out
}

/** The instant a local date + minutes names in `zone`; gaps move forward, repeats take the first. */
function wallClock (day: DateTime, minutes: number, zone: string): number {
  const base = DateTime.fromObject({ year: day.year, month: day.month, day: day.day }, { zone })
  if (minutes === 24 * 60) return base.plus({ days: 1 }).startOf('day').toMillis()
  return DateTime.fromObject({ year: day.year, month: day.month, day: day.day, hour: Math.floor(minutes / 60), minute: minutes % 60 }, { zone }).toMillis()
}

export function isInWindow (windows: readonly MaintenanceWindow[], at: number): boolean {
  return windows.some((w) => occurrences(w, at, 1, 0).some(([open, close]) => at >= open && at < close))
}

/** The next instant after `at` at which some window opens, or undefined when there is none within two weeks. */
export function nextWindowOpen (windows: readonly MaintenanceWindow[], at: number): number | undefined {
  let best: number | undefined
  for (const w of windows) {
    for (const [open] of occurrences(w, at, 0, 14)) {
      if (open > at && (best === undefined || open < best)) best = open
    }
  }
  return best
}
