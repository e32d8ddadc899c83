/**
 * Maintenance windows: `--window "Sat,Sun 02:00-06:00 Europe/Berlin"`. Days are the days a
 * window *starts* on; a range whose end is not after its start crosses midnight into the next
 * day. Times are wall-clock times in the IANA zone, so a window follows its zone across DST:
 *
 * - spring forward (02:00 → 03:00): a local time inside the gap does not exist; it is moved
 *   forward by the gap (02:30 → 03:30, as luxon does), so the window is shorter but opens. A
 *   window wholly inside the gap opens at the end of the gap for its nominal length;
 * - fall back (03:00 → 02:00): a local time in the repeated hour is taken once, at its second
 *   occurrence (luxon's choice), so the window opens once, never twice.
 *
 * Each occurrence is one interval of instants computed from its start date, so a window is
 * entered at most once per occurrence, whatever the clocks do.
 */
import { ConfigError } from './errors.js'

export interface MaintenanceWindow {
  /** ISO weekdays the window starts on: 1 = Monday … 7 = Sunday. */
  days: ReadonlySet<number>
  /** Minutes after local midnight. */
  start: number
  end: number
  zone: string
  /** The text it was parsed from, for log lines. */
  text: string
}

const ALL_DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']
const FULL_DAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday']

/** 0-based index of `Mon`/`Monday` (any case), or -1. */
function dayIndex (text: string): number {
  const lower = text.toLowerCase()
  const short = ALL_DAYS.indexOf(lower)
  return short >= 0 ? short : FULL_DAYS.indexOf(lower)
}

function parseDays (text: string, source: string): Set<number> {
  const days = new Set<number>()
  for (const part of text.toLowerCase().split(',')) {
    const range = part.split('-')
    if (range.length === 2) {
      const from = dayIndex(range[0] ?? '')
      const to = dayIndex(range[1] ?? '')
      if (from < 0 || to < 0) throw new ConfigError(`${source}: unknown day range "${part}"`)
      for (let i = from; ; i = (i + 1) % 7) {
        days.add(i + 1)
        if (i === to) break
      }
      continue
    }
    if (part === 'daily' || part === '*') {
      for (let i = 1; i <= 7; i++) days.add(i)
      continue
    }
    const day = dayIndex(part)
    if (day < 0) throw new ConfigError(`${source}: unknown day "${part}" (use Mon..Sun, ranges like Mon-Fri, or daily)`)
    days.add(day + 1)
  }
  return days
}

function parseTime (text: string, source: string): number {
  const m = /^(\d{1,2}):(\d{2})$/.exec(text)
  if (m === null) throw new ConfigError(`${source}: "${text}" is not a time like 02:00`)
  const h = Number(m[1])
  const min = Number(m[2])
  if (h > 24 || min > 59 || (h === 24 && min !== 0)) throw new ConfigError(`${source}: "${text}" is not a time of day`)
  return h * 60 + min
}

/** Parses `DAYS HH:MM-HH:MM ZONE`; the zone defaults to UTC. */
export function parseWindow (text: string): MaintenanceWindow {
  const source = `--window "${text}"`
  const parts = text.trim().split(/\s+/)
  if (parts.length < 2 || parts.length > 3) throw new ConfigError(`${source}: expected "DAYS HH:MM-HH:MM ZONE", e.g. "Sat,Sun 02:00-06:00 Europe/Berlin"`)
  const [daysText, rangeText, zoneText] = parts as [string, string, string | undefined]
  const range = rangeText.split('-')
  if (range.length !== 2) throw new ConfigError(`${source}: "${rangeText}" is not a time range like 02:00-06:00`)
  const start = parseTime(range[0] as string, source)
  const end = parseTime(range[1] as string, source)
  if (start === end) throw new ConfigError(`${source}: the window is empty (start equals end)`)
  const zone = zoneText ?? 'UTC'
  if (!isTimeZone(zone)) throw new ConfigError(`${source}: "${zone}" is not an IANA time zone`)
  return { days: parseDays(daysText, source), start, end, zone, text: text.trim() }
}

/** An IANA zone the runtime knows (Intl, so that parsing flags does not load luxon). */
function isTimeZone (zone: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(zone)) return false
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone })
    return true
  } catch {
    return false
  }
}
