/**
 * The hot path. Everything here is served from memory: the license check uses the cached
 * verification plus per-request time/revocation/entitlement checks, and the body and ETag
 * were compiled when the channel last changed.
 *
 * Both spec endpoints take one path: authorize (credentials -> a Deployment) -> select
 * (domain selectSpec: which version it gets) -> send. Only the first and last step differ per
 * endpoint. The common case (a verified license, a compiled spec) runs synchronously: no
 * promise, no microtask; a new token or a version not compiled yet makes that step async.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { operatorChannel, type LicenseClaims } from '../domain/license.js'
import { effectiveApplied, isSanctionedRollback, selectSpec, type Deployment } from '../domain/select-spec.js'
import { ifNoneMatchHits } from '../domain/spec.js'
import { SIGNATURE_HEADER } from '../domain/spec-statement.js'
import { checkVersion } from '../domain/release.js'
import { ChartcastError } from '../errors.js'
import { InvalidLicenseGuard, SpecRateLimiter } from '../services/spec-rate-limiter.js'
import type { ChannelState, ServedSpec } from '../services/spec-cache.js'
import type { RatePolicy } from '../domain/rate-window.js'
import { ChannelName, OperatorSpec, Spec, SpecQuery, VersionText } from '../schemas.js'
import { described, licensedRoute } from './common.js'
import reportRoutes from './reports.js'

const BEARER = /^Bearer[ ]+([A-Za-z0-9._~+/=-]+)\s*$/i
const BEARER_PREFIX = 'Bearer '
const BASIC_CHALLENGE = 'Basic realm="chartcast", charset="UTF-8"'
/** A spec answer depends on the license and on the release the deployment says it runs. */
const SPEC_VARY = 'Authorization, Chartcast-Applied'
/** The operator endpoints read no Chartcast-Applied: the license alone (or its absence) decides. */
const OPERATOR_VARY = 'Authorization'
/** The channel revision the answer was served from (GET /channels/:name shows the current one). */
const REVISION_HEADER = 'chartcast-revision'

/** The license from `Authorization: Bearer <jwt>`. */
export function bearerLicense (header: string | undefined): string {
  if (header === undefined || header.trim() === '') throw new ChartcastError('LICENSE_MISSING', 'send the license as "Authorization: Bearer <license>"')
  const match = BEARER.exec(header)
  if (match === null) throw new ChartcastError('LICENSE_INVALID', 'the Authorization header must be "Bearer <license>"')
  return match[1]!
}

/** The license from W&B-style Basic auth: user "license", password the JWT. */
export function basicLicense (header: string): string {
  const match = /^Basic[ ]+([A-Za-z0-9+/=]+)\s*$/i.exec(header)
  if (match === null) throw new ChartcastError('LICENSE_INVALID', 'the Authorization header must be Basic with user "license" and the license as password', { 'www-authenticate': BASIC_CHALLENGE })
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0 || decoded.slice(0, colon) !== 'license') {
    throw new ChartcastError('LICENSE_INVALID', 'Basic auth user must be "license"', { 'www-authenticate': BASIC_CHALLENGE })
  }
  const token = decoded.slice(colon + 1)
  if (token === '') throw new ChartcastError('LICENSE_MISSING', 'Basic auth password (the license) is empty', { 'www-authenticate': BASIC_CHALLENGE })
  return token
}

/** Distinct `Chartcast-Applied` texts remembered as valid: client-sent, so bounded. */
const MAX_KNOWN_APPLIED = 10_000
/**
 * Versions already found strict semver. A fleet sends a few distinct versions, and checking one
 * (semver's parse) cost more than the rest of a pull's selection; only valid texts are kept,
 * so a refusal is decided as before.
 */
const knownApplied = new Set<string>()

/** Basic headers remembered, at most (about 0.7 kB each). */
const MAX_BASIC_HEADERS = 20_000
/** The tail of a Basic header that keys it: base64 of the token's last bytes, its signature. */
const BASIC_KEY_LENGTH = 64

/**
 * W&B operators send the same Basic header on every pull, and decoding it (a strict pattern
 * over ~700 characters, then base64) cost more than the rest of the license check. Headers
 * whose token was verified are remembered, keyed by their tail as the verifier keys tokens by
 * their signature; a hit must be the whole header, and the token is still checked (time,
 * revocation, entitlement) on every pull. Oldest forgotten first; a forgotten header is
 * decoded again.
 */
class BasicTokens {
  private readonly byTail = new Map<string, { header: string, token: string }>()

  get (header: string): string | undefined {
    const entry = this.byTail.get(header.slice(-BASIC_KEY_LENGTH))
    return entry !== undefined && entry.header === header ? entry.token : undefined
  }

  /** `token` is what basicLicense decoded from `header`, a verified license. */
  remember (header: string, token: string): void {
    const tail = header.slice(-BASIC_KEY_LENGTH)
    if (this.byTail.has(tail)) return
    if (this.byTail.size >= MAX_BASIC_HEADERS) {
      const oldest = this.byTail.keys().next().value
      if (oldest !== undefined) this.byTail.delete(oldest)
    }
    this.byTail.set(tail, { header, token })
  }
}

/** `Chartcast-Applied: <version>`: the release the deployment runs now; null when absent. */
export function appliedVersion (header: string | undefined): string | null {
  if (header === undefined) return null
  if (knownApplied.has(header)) return header
  try {
    const version = checkVersion(header)
    if (knownApplied.size >= MAX_KNOWN_APPLIED) knownApplied.clear()
    knownApplied.add(version)
    return version
  } catch {
    // The value is not echoed: it is the client's text, of any length.
    throw new ChartcastError('VALIDATION_FAILED', 'the Chartcast-Applied header must be the strict semantic version of the release applied now (e.g. 1.4.0), or absent')
  }
}

function pinnedVersion (version: string | undefined): string | null {
  return version === undefined ? null : checkVersion(version)
}

/** What the path reads of a request (the route's typed request satisfies it). */
type PullRequest = Pick<FastifyRequest, 'headers' | 'ip'>
type SpecRequest = PullRequest & { params: { name: string }, query: { version?: string } }
/** Both operator routes: the release route's params carry `version`, the other's are empty. */
type OperatorRequest = PullRequest & { params: unknown }

/** The two steps that differ per endpoint; authorize, select and send run in `pull`. */
interface PullEndpoint<R extends PullRequest> {
  readonly name: 'spec' | 'operator'
  /** The channel a refusal is counted under before the deployment is known ('' = "unknown"). */
  refusalChannel (request: R): string
  /** Credentials -> the deployment asking; async only when the token is new (signature check). */
  authorize (request: R): Deployment | Promise<Deployment>
  /** What a client of this endpoint gets for a refusal (the operator's 401s challenge for Basic). */
  refusal (error: unknown): unknown
  send (request: R, reply: FastifyReply, spec: ServedSpec, state: ChannelState): void
}

const specRoutes: FastifyPluginAsyncTypebox<{ specRateLimit: RatePolicy | null, invalidLicenseLimit: RatePolicy | null, anonymousChannel: string | null, now?: () => number }> = async (fastify, opts) => {
  const { specCache, licenses, metrics, checkins, servedVersions } = fastify
  /** Places staged rollouts in time (tests move it). */
  const now = opts.now ?? Date.now
  const limiter = opts.specRateLimit === null ? null : new SpecRateLimiter(opts.specRateLimit)
  const guard = opts.invalidLicenseLimit === null ? null : new InvalidLicenseGuard(opts.invalidLicenseLimit)
  const { anonymousChannel } = opts
  const basicTokens = new BasicTokens()

  /** A token not verified yet costs a signature check: guarded per address against made-up tokens. */
  async function verifyNew (request: PullRequest, verify: () => Promise<LicenseClaims>): Promise<LicenseClaims> {
    guard?.check(request.ip)
    try {
      return await verify()
    } catch (error) {
      if (error instanceof ChartcastError && error.code === 'LICENSE_INVALID') guard?.failed(request.ip)
      throw error
    }
  }

  /** Each endpoint's histogram, bound once: observing is a bucket search and three additions. */
  const durations = { spec: metrics.pullDuration.forEndpoint('spec'), operator: metrics.pullDuration.forEndpoint('operator') } as const

  /**
   * Counts a pull and observes its duration up to the answer (not the socket write). Done here
   * rather than in an onResponse hook: on the hot path the hook alone cost measurable time.
   * `channel` is a channel the cache holds (the label set stays bounded); see `refused`.
   */
  function record (reply: FastifyReply, endpoint: 'spec' | 'operator', channel: string, outcome: string): void {
    metrics.pulls.add(endpoint, channel, outcome)
    durations[endpoint].observe(reply.elapsedTime / 1000)
  }

  /** Counts a refusal and returns the error to throw. */
  function refused (endpoint: PullEndpoint<never>, reply: FastifyReply, channel: string, error: unknown): unknown {
    // A refusal may name any channel (or none yet): unknown names share one label.
    record(reply, endpoint.name, specCache.get(channel) === undefined ? 'unknown' : channel, error instanceof ChartcastError ? error.code : 'INTERNAL')
    return endpoint.refusal(error)
  }

  /** authorize -> select -> send. */
  function pull<R extends PullRequest> (endpoint: PullEndpoint<R>, request: R, reply: FastifyReply): void | Promise<void> {
    let deployment: Deployment | Promise<Deployment>
    try {
      deployment = endpoint.authorize(request)
    } catch (error) {
      throw refused(endpoint, reply, endpoint.refusalChannel(request), error)
    }
    if (deployment instanceof Promise) {
      return deployment.then(
        (verified) => serve(endpoint, request, reply, verified),
        (error: unknown) => { throw refused(endpoint, reply, endpoint.refusalChannel(request), error) }
      )
    }
    return serve(endpoint, request, reply, deployment)
  }

  function serve<R extends PullRequest> (endpoint: PullEndpoint<R>, request: R, reply: FastifyReply, deployment: Deployment): void | Promise<void> {
    const { channel } = deployment
    try {
      // A license counts against its own window; an anonymous pull against its address's.
      if (deployment.license !== null) limiter?.countLicense(deployment.license)
      else limiter?.countAddress(request.ip)
      const state = specCache.get(channel)
      if (state === undefined) throw new ChartcastError('CHANNEL_NOT_FOUND', `channel "${channel}" does not exist`)
      const version = selectSpec(state, deployment, now())
      // rollbacks is empty unless a release was withdrawn with rollback=true.
      const spec = specCache.specFor(state, version, state.rollbacks.size > 0 && isSanctionedRollback(state, deployment, version))
      if (spec instanceof Promise) {
        return spec.then(
          (compiled) => { deliver(endpoint, request, reply, deployment, compiled, state) },
          (error: unknown) => { throw refused(endpoint, reply, channel, error) }
        )
      }
      deliver(endpoint, request, reply, deployment, spec, state)
    } catch (error) {
      if (error instanceof ChartcastError && error.code === 'NO_UPGRADE_PATH') stuck(deployment, request)
      throw refused(endpoint, reply, channel, error)
    }
  }

  /**
   * A deployment with no upgrade path keeps running what it runs: its pull is still a
   * check-in (else it would look stale in the fleet while it polls), served what it runs.
   */
  function stuck (deployment: Deployment, request: PullRequest): void {
    const applied = effectiveApplied(deployment)
    if (applied !== null) checkins.record(deployment, applied, request)
  }

  /** An authorized pull that is answered (200 or 304) is the deployment's check-in. */
  function deliver<R extends PullRequest> (endpoint: PullEndpoint<R>, request: R, reply: FastifyReply, deployment: Deployment, spec: ServedSpec, state: ChannelState): void {
    checkins.record(deployment, spec.version, request)
    servedVersions.served(deployment.id, deployment.applied, spec.version)
    endpoint.send(request, reply, spec, state)
  }

  const specEndpoint: PullEndpoint<SpecRequest> = {
    name: 'spec',
    refusalChannel: (request) => request.params.name,
    authorize (request) {
      const channel = request.params.name
      const header = request.headers.authorization
      // What pollers send: exactly "Bearer <token>". A token verified before is canonical
      // base64url, which the strict parse below would return unchanged, so it is looked up as
      // is; anything else (unknown, refused, other spacing) takes the strict parse.
      if (header !== undefined && header.startsWith(BEARER_PREFIX)) {
        const verified = licenses.authorizeVerified(header.slice(BEARER_PREFIX.length), channel)
        if (verified !== null) return specDeployment(request, verified)
      }
      const token = bearerLicense(header)
      // Time, revocation and entitlement are checked on every call, cached signature or not.
      const claims = licenses.authorizeCached(token, channel)
      if (claims === null) return verifyNew(request, async () => await licenses.authorize(token, channel)).then((verified) => specDeployment(request, verified))
      return specDeployment(request, claims)
    },
    refusal: (error) => error,
    send (request, reply, spec, state) {
      const channel = spec.channel
      reply.header('etag', spec.etag).header('cache-control', 'private, no-cache').header(REVISION_HEADER, state.revisionHeader)
      // Signed when compiled (or renewed by the timer): the hot path only copies a header. The
      // statement names the body by its hash, so it serves the 304 of the same ETag as well.
      const signatures = spec.signatures
      if (signatures !== null) reply.header(SIGNATURE_HEADER, signatures.spec)
      if (spec.pollIntervalSeconds !== null) reply.header('x-poll-interval', String(spec.pollIntervalSeconds))
      if (ifNoneMatchHits(request.headers['if-none-match'], spec.etag)) {
        record(reply, 'spec', channel, 'not_modified')
        // RFC 9110 15.4.5: a 304 has no content; `null` would be serialised as "null".
        reply.code(304).send(undefined as never)
        return
      }
      record(reply, 'spec', channel, 'ok')
      // The body is pre-serialized canonical JSON; fastify sends a string as is.
      reply.type('application/json; charset=utf-8').send(spec.body as never)
    }
  }

  function specDeployment (request: SpecRequest, license: LicenseClaims): Deployment {
    const header = request.headers['chartcast-applied']
    const applied = appliedVersion(Array.isArray(header) ? header.join(', ') : header)
    return {
      id: license.sub,
      license,
      channel: request.params.name,
      applied,
      lastServed: applied === null ? servedVersions.get(license.sub) : null,
      pinned: pinnedVersion(request.query.version)
    }
  }

  const operatorEndpoint: PullEndpoint<OperatorRequest> = {
    name: 'operator',
    // The channel is not known before the license is: refusals count under "unknown".
    refusalChannel: () => '',
    authorize (request) {
      const header = request.headers.authorization
      const pinned = pinnedVersion((request.params as { version?: string }).version)
      if (header === undefined || header.trim() === '') {
        if (anonymousChannel === null) throw new ChartcastError('LICENSE_MISSING', 'send Basic auth with user "license" and the license as password')
        return { id: null, license: null, channel: anonymousChannel, applied: null, lastServed: null, pinned }
      }
      const known = basicTokens.get(header)
      if (known !== undefined) {
        const verified = licenses.authenticateVerified(known)
        if (verified !== null) return operatorDeployment(verified, pinned)
      }
      const token = basicLicense(header)
      const claims = licenses.authenticateCached(token)
      if (claims === null) return verifyNew(request, async () => await licenses.authenticate(token)).then((verified) => operatorDeployment(verified, pinned))
      basicTokens.remember(header, token)
      return operatorDeployment(claims, pinned)
    },
    refusal: basicChallenge,
    /** The W&B operator expects exactly 200 with `{chart, values, metadata}`: no 304 here. */
    send (_request, reply, spec, state) {
      record(reply, 'operator', spec.channel, 'ok')
      const signatures = spec.signatures
      if (signatures !== null) reply.header(SIGNATURE_HEADER, signatures.operator)
      reply.code(200).header('etag', spec.operatorEtag).header('cache-control', 'private, no-cache').header(REVISION_HEADER, state.revisionHeader)
        .type('application/json; charset=utf-8').send(spec.operatorBody as never)
    }
  }

  /** The W&B operator sends no Chartcast-Applied: what it was last served stands in. */
  function operatorDeployment (license: LicenseClaims, pinned: string | null): Deployment {
    return { id: license.sub, license, channel: operatorChannel(license), applied: null, lastServed: servedVersions.get(license.sub), pinned }
  }

  /** The operator speaks Basic auth, so a 401 challenges for Basic. */
  function basicChallenge (error: unknown): unknown {
    return error instanceof ChartcastError && error.status === 401 ? new ChartcastError(error.code, error.detail, { 'www-authenticate': BASIC_CHALLENGE }) : error
  }

  /**
   * The spec pull's license step for the channel's other licensed route, apply reports: the
   * same verification, entitlement and rate window (one license, one window).
   */
  function authorizeChannelLicense (request: PullRequest & { params: { name: string } }): LicenseClaims | Promise<LicenseClaims> {
    const channel = request.params.name
    const token = bearerLicense(request.headers.authorization)
    const claims = licenses.authorizeCached(token, channel)
    if (claims === null) {
      return verifyNew(request, async () => await licenses.authorize(token, channel)).then((verified) => {
        limiter?.countLicense(verified)
        return verified
      })
    }
    limiter?.countLicense(claims)
    return claims
  }
  await fastify.register(reportRoutes, { authorize: authorizeChannelLicense })

  fastify.get('/channels/:name/spec', {
    schema: {
      summary: 'The channel\'s current spec (or a pinned version), for a licensed deployment',
      description: 'License as `Authorization: Bearer <jwt>`. Optional `Chartcast-Applied: <version>`: the release the deployment runs now. Strong ETag; send If-None-Match to get 304 when nothing changed. `X-Poll-Interval` (seconds) carries the channel\'s poll hint, `Chartcast-Revision` the channel revision the answer was served from (on 200 and 304). When the server signs, `Chartcast-Signature` (on 200 and 304) is a compact JWS (EdDSA) of the statement {sha256 of the body, channel, version, revision, expires}, verified with the keyset chain of GET /keys (docs/signing.md). Answers vary on `Authorization, Chartcast-Applied`. Without `?version=` the answer is the next hop of the channel\'s upgrade path from the applied version (the version last served stands in when the header is absent); 409 NO_UPGRADE_PATH when no release it may move to admits it.',
      tags: ['spec'],
      params: Type.Object({ name: ChannelName }),
      querystring: SpecQuery,
      ...licensedRoute('license', { 200: described(Spec, 'The spec, with a strong ETag (and X-Poll-Interval when the channel sets one)'), 304: Type.Null({ description: 'Not Modified: If-None-Match names the current ETag' }) }, ['VALIDATION_FAILED', 'CHANNEL_NOT_FOUND', 'CHANNEL_EMPTY', 'RELEASE_NOT_FOUND', 'NO_UPGRADE_PATH', 'DATABASE_UNAVAILABLE'])
    }
  }, (request, reply) => {
    // Set first, so refusals carry it too.
    reply.header('vary', SPEC_VARY)
    return pull(specEndpoint, request, reply)
  })

  fastify.get('/api/v1/operator/channel', {
    schema: { tags: ['operator'], summary: 'W&B operator compatible: the spec of the license\'s channel', description: 'The body is exactly the W&B operator\'s `{chart, values, metadata}`. Answers vary on `Authorization` (with ANONYMOUS_CHANNEL, a request without it gets that channel). When the server signs, `Chartcast-Signature` signs the SHA-256 of this body (docs/signing.md); the operator ignores it.', ...licensedRoute('operatorBasic', { 200: OperatorSpec }, ['CHANNEL_NOT_FOUND', 'CHANNEL_EMPTY', 'NO_UPGRADE_PATH', 'DATABASE_UNAVAILABLE'], { anonymous: opts.anonymousChannel !== null }) }
  }, (request, reply) => {
    // As on the spec endpoint: set first, so refusals carry it too.
    reply.header('vary', OPERATOR_VARY)
    return pull(operatorEndpoint, request, reply)
  })

  fastify.get('/api/v1/operator/channel/release/:version', {
    schema: { tags: ['operator'], params: Type.Object({ version: VersionText }), summary: 'W&B operator compatible: a pinned version of the license\'s channel', ...licensedRoute('operatorBasic', { 200: OperatorSpec }, ['VALIDATION_FAILED', 'CHANNEL_NOT_FOUND', 'RELEASE_NOT_FOUND', 'DATABASE_UNAVAILABLE'], { anonymous: opts.anonymousChannel !== null }) }
  }, (request, reply) => {
    // As on the spec endpoint: set first, so refusals carry it too.
    reply.header('vary', OPERATOR_VARY)
    return pull(operatorEndpoint, request, reply)
  })
}

export default specRoutes
