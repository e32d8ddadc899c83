/**
 * The dashboard's only way to the server: the public API, the same endpoints (and OpenAPI
 * document, /docs) curl users have. The browser holds no token: the session is an HttpOnly
 * cookie set by POST /auth/session, sent with every same-origin request.
 */
import type { Static } from 'typebox'
import type {
  AuditEntry as AuditEntrySchema, Channel as ChannelSchema, ChannelEvent as ChannelEventSchema, ChannelFleet as ChannelFleetSchema,
  DeploymentDetail as DeploymentDetailSchema, DeploymentList as DeploymentListSchema, FleetDeployment as FleetDeploymentSchema,
  Release as ReleaseSchema
} from '../schemas.js'

export type Channel = Static<typeof ChannelSchema>
export type Release = Static<typeof ReleaseSchema>
export type ChannelEvent = Static<typeof ChannelEventSchema>
export type ChannelFleet = Static<typeof ChannelFleetSchema>
export type FleetDeployment = Static<typeof FleetDeploymentSchema>
export type DeploymentList = Static<typeof DeploymentListSchema>
export type DeploymentDetail = Static<typeof DeploymentDetailSchema>
export type AuditEntry = Static<typeof AuditEntrySchema>

export type Role = 'reader' | 'publisher' | 'admin'

/** GET /auth/session. */
export interface Session { subject: string, role: Role, expiresAt: string, via: string }

/** A staged rollout step: `after` is a duration from the promotion ("0s", "1h"). */
export interface RolloutStep { percent: number, after: string }
export interface AutoPause { maxFailures: number, maxFailureRate: number, minReports: number }

/** GET /channels/:name/rollouts, one item (issue #10). */
export interface Rollout {
  version: string
  state: 'rolling' | 'paused' | 'complete'
  percent: number
  steps: RolloutStep[]
  startedAt: string
  nextStepAt: string | null
  pausedAt: string | null
  pausedReason: string | null
  autoPause: AutoPause | null
  reports: { applied: number, failed: number }
}

export interface Freeze { reason: string, until: string | null, at: string, by: string }

/** GET /channels/:name: the channel, the releases in it, and (with staged rollouts) its rollouts and freeze. */
export interface ChannelDetail extends Channel {
  releases: Array<{ version: string, promotedAt: string, promotedBy: string }>
  rollouts?: Rollout[]
  freeze?: Freeze | null
}

/** An error answer (RFC 9457), or a request that never reached the server. */
export class ApiProblem extends Error {
  constructor (readonly status: number, readonly title: string, readonly detail: string, readonly code: string) {
    super(`${title}: ${detail}`)
  }
}

async function problemOf (response: Response): Promise<ApiProblem> {
  try {
    const body = await response.json() as { title?: unknown, detail?: unknown, code?: unknown }
    if (typeof body.title === 'string') {
      return new ApiProblem(response.status, body.title, typeof body.detail === 'string' ? body.detail : '', typeof body.code === 'string' ? body.code : 'UNKNOWN')
    }
  } catch {
    // Not a problem document (a proxy's error page): described by its status below.
  }
  return new ApiProblem(response.status, `The server answered ${response.status}`, response.statusText, 'UNKNOWN')
}

/** Told of every 401, so the app can show the sign-in page when a session ends. */
let onUnauthorized: () => void = () => {}
export function whenUnauthorized (listener: () => void): void { onUnauthorized = listener }

export async function api<T> (method: string, path: string, body?: unknown): Promise<T> {
  let response: Response
  try {
    response = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: { accept: 'application/json', ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) })
    })
  } catch {
    throw new ApiProblem(0, 'Server unreachable', 'the request did not reach the chartcast server; check the network and try again', 'UNREACHABLE')
  }
  if (!response.ok) {
    const problem = await problemOf(response)
    if (response.status === 401 && !path.startsWith('/auth/')) onUnauthorized()
    throw problem
  }
  if (response.status === 204) return undefined as T
  return await response.json() as T
}

export const get = async <T>(path: string): Promise<T> => await api<T>('GET', path)

/** Path segment / query value escaping in one place. */
export const seg = (text: string): string => encodeURIComponent(text)
export function query (params: Record<string, string | number | boolean | undefined | null>): string {
  const search = new URLSearchParams()
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== null && value !== '') search.set(key, String(value))
  const text = search.toString()
  return text === '' ? '' : `?${text}`
}
