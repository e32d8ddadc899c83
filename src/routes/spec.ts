/**
 * The hot path. Everything here is served from memory: the license check uses the cached
 * verification plus per-request time/revocation/entitlement checks, and the body and ETag
 * were compiled when the channel last changed.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { checkEntitlement, defaultChannel, type LicenseClaims } from '../domain/license.js'
import { ifNoneMatchHits, type CompiledSpec } from '../domain/spec.js'
import { checkVersion } from '../domain/release.js'
import { ChartcastError } from '../errors.js'
import type { ChannelState } from '../plugins/spec-cache.js'
import { InvalidLicenseGuard, SpecRateLimiter } from '../plugins/spec-rate-limiter.js'
import type { RatePolicy } from '../domain/rate-window.js'
import { ChannelName, OperatorSpec, Spec, SpecQuery, VersionText } from '../schemas.js'
import { described, licensedRoute } from './common.js'

const BEARER = /^Bearer[ ]+([A-Za-z0-9._~+/=-]+)\s*$/i
const BASIC_CHALLENGE = 'Basic realm="chartcast", charset="UTF-8"'

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

const specRoutes: FastifyPluginAsyncTypebox<{ specRateLimit: RatePolicy | null, invalidLicenseLimit: RatePolicy | null, anonymousChannel: string | null }> = async (fastify, opts) => {
  const { specCache, licenses, metrics } = fastify
  const limiter = opts.specRateLimit === null ? null : new SpecRateLimiter(opts.specRateLimit)
  const guard = opts.invalidLicenseLimit === null ? null : new InvalidLicenseGuard(opts.invalidLicenseLimit)

  /** A token not verified yet costs a signature check: guarded per address against made-up tokens. */
  async function verifyNew<T> (request: FastifyRequest, verify: () => Promise<T>): Promise<T> {
    guard?.check(request.ip)
    try {
      return await verify()
    } catch (error) {
      if (error instanceof ChartcastError && error.code === 'LICENSE_INVALID') guard?.failed(request.ip)
      throw error
    }
  }

  const durationLabels = { spec: { endpoint: 'spec' }, operator: { endpoint: 'operator' } } as const

  /**
   * Counts a pull and observes its duration up to the answer (not the socket write). Done here
   * rather than in an onResponse hook: on the hot path the hook alone cost measurable time.
   * `channel` is a channel the cache holds (the label set stays bounded); see `failed`.
   */
  function record (reply: FastifyReply, endpoint: 'spec' | 'operator', channel: string, outcome: string): void {
    metrics.pulls.add(endpoint, channel, outcome)
    metrics.pullDuration.observe(durationLabels[endpoint], reply.elapsedTime / 1000)
  }

  function stateOf (channel: string): ChannelState {
    const state = specCache.get(channel)
    if (state === undefined) throw new ChartcastError('CHANNEL_NOT_FOUND', `channel "${channel}" does not exist`)
    return state
  }

  function headOf (channel: string): CompiledSpec {
    const { head } = stateOf(channel)
    if (head === null) throw new ChartcastError('CHANNEL_EMPTY', `channel "${channel}" has no release yet`)
    return head
  }

  function headOrPinned (channel: string, version: string | undefined): CompiledSpec | Promise<CompiledSpec> {
    return version === undefined ? headOf(channel) : specCache.getPinned(stateOf(channel), checkVersion(version))
  }

  function failed (reply: FastifyReply, endpoint: 'spec' | 'operator', channel: string, error: unknown): void {
    // A refusal may name any channel (or none yet): unknown names share one label.
    record(reply, endpoint, specCache.get(channel) === undefined ? 'unknown' : channel, error instanceof ChartcastError ? error.code : 'INTERNAL')
  }

  function sendSpec (request: FastifyRequest, reply: FastifyReply, name: string, spec: CompiledSpec): void {
    reply.header('etag', spec.etag).header('cache-control', 'private, no-cache').header('vary', 'Authorization')
    if (spec.pollIntervalSeconds !== null) reply.header('x-poll-interval', String(spec.pollIntervalSeconds))
    if (ifNoneMatchHits(request.headers['if-none-match'], spec.etag)) {
      record(reply, 'spec', name, 'not_modified')
      // RFC 9110 15.4.5: a 304 has no content; `null` would be serialised as "null".
      reply.code(304).send(undefined as never)
      return
    }
    record(reply, 'spec', name, 'ok')
    // The body is pre-serialized canonical JSON; fastify sends a string as is.
    reply.type('application/json; charset=utf-8').send(spec.body as never)
  }

  /** A token seen for the first time (signature verification) or a pinned version: the async path. */
  async function specAsync (request: FastifyRequest, reply: FastifyReply, name: string, version: string | undefined, token: string, authorized: boolean): Promise<void> {
    try {
      if (!authorized) limiter?.countLicense(await verifyNew(request, async () => await licenses.authorize(token, name)))
      sendSpec(request, reply, name, await headOrPinned(name, version))
    } catch (error) {
      failed(reply, 'spec', name, error)
      throw error
    }
  }

  fastify.get('/channels/:name/spec', {
    schema: {
      summary: 'The channel\'s current spec (or a pinned version), for a licensed deployment',
      description: 'License as `Authorization: Bearer <jwt>`. Strong ETag; send If-None-Match to get 304 when nothing changed. `X-Poll-Interval` (seconds) carries the channel\'s poll hint.',
      tags: ['spec'],
      params: Type.Object({ name: ChannelName }),
      querystring: SpecQuery,
      ...licensedRoute('license', { 200: described(Spec, 'The spec, with a strong ETag (and X-Poll-Interval when the channel sets one)'), 304: Type.Null({ description: 'Not Modified: If-None-Match names the current ETag' }) }, ['VALIDATION_FAILED', 'CHANNEL_NOT_FOUND', 'CHANNEL_EMPTY', 'RELEASE_NOT_FOUND', 'DATABASE_UNAVAILABLE'])
    }
  }, (request, reply) => {
    // The common case (a license already verified, the channel's head) is synchronous: no
    // promise, no microtask. Time, revocation and entitlement are still checked on every call.
    const { name } = request.params
    try {
      const token = bearerLicense(request.headers.authorization)
      const claims = licenses.authorizeCached(token, name)
      // Counted once the license is known to be valid: refusals are cached and cheap, and a
      // token seen for the first time is counted after its verification (specAsync).
      if (claims !== null) limiter?.countLicense(claims)
      const { version } = request.query
      if (claims === null || version !== undefined) return specAsync(request, reply, name, version, token, claims !== null)
      sendSpec(request, reply, name, headOf(name))
    } catch (error) {
      failed(reply, 'spec', name, error)
      throw error
    }
  })

  function sendOperator (reply: FastifyReply, channel: string, spec: CompiledSpec): void {
    record(reply, 'operator', channel, 'ok')
    reply.code(200).header('etag', spec.operatorEtag).header('cache-control', 'private, no-cache')
      .type('application/json; charset=utf-8').send(spec.operatorBody as never)
  }

  /** The operator speaks Basic auth, so a 401 challenges for Basic. */
  function basicChallenge (error: unknown): unknown {
    return error instanceof ChartcastError && error.status === 401 ? new ChartcastError(error.code, error.detail, { 'www-authenticate': BASIC_CHALLENGE }) : error
  }

  function licenseChannel (claims: LicenseClaims): string {
    const named = defaultChannel(claims)
    if (named === null) throw new ChartcastError('CHANNEL_NOT_FOUND', 'the license names no channel (add a "channel" claim)')
    return named
  }

  /**
   * W&B operator compatibility. The operator sends Basic auth (user "license") and expects
   * exactly 200 with `{chart, values, metadata}`, so there is no 304 here.
   */
  function operatorChannel (request: FastifyRequest, reply: FastifyReply, version: string | undefined): void | Promise<void> {
    const header = request.headers.authorization
    let channel: string
    let license: LicenseClaims | null = null
    if ((header === undefined || header.trim() === '') && opts.anonymousChannel !== null) {
      channel = opts.anonymousChannel
    } else {
      try {
        if (header === undefined || header.trim() === '') {
          throw new ChartcastError('LICENSE_MISSING', 'send Basic auth with user "license" and the license as password')
        }
        const token = basicLicense(header)
        license = licenses.authenticateCached(token)
        // Not verified yet: the async path verifies the signature first.
        if (license === null) return operatorAsync(request, reply, token, version)
        channel = licenseChannel(license)
        checkEntitlement(license, channel)
      } catch (error) {
        // The channel is not known before the license is: refusals count under "unknown".
        failed(reply, 'operator', '', error)
        throw basicChallenge(error)
      }
    }
    try {
      // A license counts against its own window; an anonymous pull against its address's.
      if (license === null) limiter?.countAddress(request.ip)
      else limiter?.countLicense(license)
      if (version !== undefined) return operatorPinned(reply, channel, version)
      sendOperator(reply, channel, headOf(channel))
    } catch (error) {
      failed(reply, 'operator', channel, error)
      throw error
    }
  }

  async function operatorAsync (request: FastifyRequest, reply: FastifyReply, token: string, version: string | undefined): Promise<void> {
    let channel: string
    let license: LicenseClaims
    try {
      const claims = await verifyNew(request, async () => await licenses.authenticate(token))
      channel = licenseChannel(claims)
      license = await licenses.authorize(token, channel)
    } catch (error) {
      failed(reply, 'operator', '', error)
      throw basicChallenge(error)
    }
    try {
      limiter?.countLicense(license)
    } catch (error) {
      failed(reply, 'operator', channel, error)
      throw error
    }
    await operatorPinned(reply, channel, version)
  }

  async function operatorPinned (reply: FastifyReply, channel: string, version: string | undefined): Promise<void> {
    try {
      sendOperator(reply, channel, await headOrPinned(channel, version))
    } catch (error) {
      failed(reply, 'operator', channel, error)
      throw error
    }
  }

  fastify.get('/api/v1/operator/channel', {
    schema: { tags: ['operator'], summary: 'W&B operator compatible: the spec of the license\'s channel', ...licensedRoute('operatorBasic', { 200: OperatorSpec }, ['CHANNEL_NOT_FOUND', 'CHANNEL_EMPTY'], { anonymous: opts.anonymousChannel !== null }) }
  }, (request, reply) => operatorChannel(request, reply, undefined))

  fastify.get('/api/v1/operator/channel/release/:version', {
    schema: { tags: ['operator'], params: Type.Object({ version: VersionText }), summary: 'W&B operator compatible: a pinned version of the license\'s channel', ...licensedRoute('operatorBasic', { 200: OperatorSpec }, ['VALIDATION_FAILED', 'CHANNEL_NOT_FOUND', 'RELEASE_NOT_FOUND', 'DATABASE_UNAVAILABLE'], { anonymous: opts.anonymousChannel !== null }) }
  }, (request, reply) => operatorChannel(request, reply, request.params.version))
}

export default specRoutes
