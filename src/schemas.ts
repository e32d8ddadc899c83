/**
 * Request and response schemas, declared once (TypeBox). Route types, the OpenAPI
 * document and the channel-file validator all come from here.
 */
import { Type, type Static } from 'typebox'
import { CHART_DIGEST_PATTERN, CHART_NAME_MAX, CHART_NAME_PATTERN, CHART_URL_MAX, CHART_VERSION_MAX } from './domain/chart-ref.js'

const NAME_PATTERN = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'

export const ChannelName = Type.String({ pattern: NAME_PATTERN, description: 'lower-case letters, digits and dashes (a DNS label)' })
export const VersionText = Type.String({ minLength: 1, maxLength: 128, description: 'strict semantic version, e.g. 1.4.0 or 2.0.0-rc.1' })

export const Values = Type.Record(Type.String(), Type.Unknown(), { description: 'Helm values' })

export const ChartRef = Type.Object({
  url: Type.String({ minLength: 1, maxLength: CHART_URL_MAX, description: 'http(s):// chart repository or oci:// reference' }),
  name: Type.Optional(Type.String({ minLength: 1, maxLength: CHART_NAME_MAX, pattern: CHART_NAME_PATTERN })),
  version: Type.String({ minLength: 1, maxLength: CHART_VERSION_MAX, description: 'one exact chart version (SemVer, e.g. 1.2.0 or v1.2.0); a range such as ^1.2 is refused' }),
  digest: Type.Optional(Type.String({ pattern: CHART_DIGEST_PATTERN, description: 'sha256:<64 hex> of the chart archive (.tgz), or the OCI manifest digest; when given, the agent installs only a chart with this digest' }))
}, { additionalProperties: false, description: 'checked by src/domain/chart-ref.ts, the one rule the server and the agent share' })
export type ChartRef = Static<typeof ChartRef>

export const ReleaseInput = Type.Object({
  version: VersionText,
  chart: ChartRef,
  values: Type.Optional(Values),
  notes: Type.Optional(Type.String({ maxLength: 65_536 })),
  upgradeFrom: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: 'the versions this release can be reached from, a semver range (e.g. ">=1.4.0"); prereleases count by precedence. Immutable like the rest of the release' }))
}, { additionalProperties: false })
export type ReleaseInput = Static<typeof ReleaseInput>

export const Release = Type.Object({
  version: Type.String(),
  chart: ChartRef,
  values: Values,
  notes: Type.Union([Type.String(), Type.Null()]),
  digest: Type.String(),
  upgradeFrom: Type.Union([Type.String(), Type.Null()], { description: 'the versions this release can be reached from (a semver range); null: from any' }),
  createdAt: Type.String({ format: 'date-time' }),
  createdBy: Type.String()
})
export type Release = Static<typeof Release>

export const ChannelSettingsInput = Type.Object({
  description: Type.Optional(Type.String({ maxLength: 4096 })),
  values: Type.Optional(Values),
  accepts: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 512 }), Type.Null()])),
  pollInterval: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 32 }), Type.Null()]))
}, { additionalProperties: false })
export type ChannelSettingsInput = Static<typeof ChannelSettingsInput>

export const ChannelFile = Type.Object({
  name: ChannelName,
  description: Type.Optional(Type.String({ maxLength: 4096 })),
  values: Type.Optional(Values),
  accepts: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
  pollInterval: Type.Optional(Type.String({ minLength: 1, maxLength: 32 }))
}, { additionalProperties: false })
export type ChannelFile = Static<typeof ChannelFile>

export const Channel = Type.Object({
  name: Type.String(),
  description: Type.String(),
  values: Values,
  accepts: Type.Union([Type.String(), Type.Null()]),
  pollInterval: Type.Union([Type.String(), Type.Null()]),
  head: Type.Union([Type.String(), Type.Null()]),
  updatedAt: Type.String({ format: 'date-time' }),
  managedBy: Type.Union([
    Type.Object({ file: Type.String({ description: 'channel file in CHANNELS_DIR that defines this channel; PUT answers 409 CHANNEL_MANAGED_BY_FILE' }) }),
    Type.Null()
  ], { description: 'null when the channel is defined through the API' }),
  revision: Type.Integer({ minimum: 1, description: 'bumped by every change to what the channel serves (promotion, withdrawal, settings); spec answers carry it as Chartcast-Revision' })
})
export type Channel = Static<typeof Channel>

export const RolloutStep = Type.Object({
  percent: Type.Number({ exclusiveMinimum: 0, maximum: 100, description: 'percent of the channel\'s deployments in the rollout from this step on; strictly rising, the last 100' }),
  after: Type.String({ minLength: 1, maxLength: 32, description: 'duration after the promotion (0s for the first step), not counting time paused or frozen' })
}, { additionalProperties: false })

export const AutoPauseSettings = Type.Object({
  maxFailures: Type.Integer({ minimum: 1 }),
  maxFailureRate: Type.Number({ exclusiveMinimum: 0, maximum: 1 }),
  minReports: Type.Integer({ minimum: 1 })
}, { additionalProperties: false })

export const RolloutInput = Type.Object({
  steps: Type.Array(RolloutStep, { minItems: 1, maxItems: 20 }),
  autoPause: Type.Optional(Type.Union([Type.Partial(AutoPauseSettings, { additionalProperties: false }), Type.Null()], { description: 'defaults {maxFailures: 5, maxFailureRate: 0.05, minReports: 20}, field by field; null: no automatic pause' }))
}, { additionalProperties: false, description: 'a staged rollout; without it the release reaches every deployment at once' })

export const Rollout = Type.Object({
  version: Type.String(),
  state: Type.Union([Type.Literal('rolling'), Type.Literal('paused'), Type.Literal('complete')]),
  percent: Type.Number({ description: 'percent of the last step in effect' }),
  steps: Type.Array(RolloutStep),
  startedAt: Type.String({ format: 'date-time' }),
  nextStepAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'null when paused, complete, or frozen without an end' }),
  pausedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  pausedReason: Type.Union([Type.String(), Type.Null()]),
  autoPause: Type.Union([AutoPauseSettings, Type.Null()]),
  reports: Type.Object({
    applied: Type.Integer({ description: 'deployments whose latest report for this version (since the rollout started or its last pause ended) applied it' }),
    failed: Type.Integer({ description: 'deployments whose latest report for this version (counted as for applied) failed' })
  })
})
export type Rollout = Static<typeof Rollout>

export const Freeze = Type.Object({
  reason: Type.String(),
  until: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'the freeze ends by itself then; null: until unfrozen' }),
  at: Type.String({ format: 'date-time' }),
  by: Type.String()
})
export type Freeze = Static<typeof Freeze>

export const FreezeInput = Type.Object({
  reason: Type.String({ minLength: 1, maxLength: 1024 }),
  until: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'RFC 3339 date-time in the future, e.g. 2026-12-27T08:00:00Z' }))
}, { additionalProperties: false })

export const ReasonInput = Type.Object({ reason: Type.String({ minLength: 1, maxLength: 1024 }) }, { additionalProperties: false })
export const ReasonQuery = Type.Object({ reason: Type.Optional(Type.String({ maxLength: 1024 })) }, { additionalProperties: false })

export const ChannelDetail = Type.Intersect([Channel, Type.Object({
  releases: Type.Array(Type.Object({
    version: Type.String(),
    promotedAt: Type.String({ format: 'date-time' }),
    promotedBy: Type.String(),
    required: Type.Boolean({ description: 'deployments below a required release stop there before going further' })
  })),
  rollouts: Type.Array(Rollout, { description: 'the rollouts of releases in the channel, as GET /channels/:name/rollouts' }),
  freeze: Type.Union([Freeze, Type.Null()])
})])

export const ChannelEvent = Type.Object({
  id: Type.Number(),
  channel: Type.String(),
  version: Type.String(),
  action: Type.Union([Type.Literal('promote'), Type.Literal('withdraw')]),
  actor: Type.String(),
  reason: Type.Union([Type.String(), Type.Null()]),
  at: Type.String({ format: 'date-time' })
})

export const PromoteInput = Type.Object({
  version: VersionText,
  rollout: Type.Optional(RolloutInput),
  required: Type.Optional(Type.Boolean({ description: 'mark the membership required: deployments below it stop there first (default: unchanged, false for a new membership)' }))
}, { additionalProperties: false })
export const MembershipInput = Type.Object({ required: Type.Boolean() }, { additionalProperties: false })
export const Membership = Type.Object({
  channel: Type.String(),
  version: Type.String(),
  required: Type.Boolean(),
  changed: Type.Boolean({ description: 'false when the membership already was so' })
})

/** GET /channels/:name/path */
export const PathQuery = Type.Object({ from: VersionText }, { additionalProperties: false })
export const UpgradePath = Type.Object({
  from: Type.String(),
  hops: Type.Array(Type.String(), { description: 'each version a deployment on `from` is given in turn; empty when `from` is already the answer' }),
  to: Type.String({ description: 'where the path ends: the last hop, or `from`' })
})
export const WithdrawQuery = Type.Object({
  reason: Type.Optional(Type.String({ maxLength: 1024 })),
  rollback: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')], { description: 'true: a sanctioned rollback; deployments that run the release get the fallback marked metadata.rollback "true", and agents move down to it' }))
}, { additionalProperties: false })

export const RevocationInput = Type.Object({
  jti: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  sub: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  reason: Type.String({ minLength: 1, maxLength: 1024 })
}, { additionalProperties: false })

export const RevocationLiftInput = Type.Object({
  reason: Type.String({ minLength: 1, maxLength: 1024 })
}, { additionalProperties: false })

export const RevocationLift = Type.Object({
  id: Type.Number(),
  revocationId: Type.Number(),
  reason: Type.String(),
  actor: Type.String(),
  at: Type.String({ format: 'date-time' })
})

export const Revocation = Type.Object({
  id: Type.Number(),
  jti: Type.Union([Type.String(), Type.Null()]),
  sub: Type.Union([Type.String(), Type.Null()]),
  reason: Type.String(),
  actor: Type.String(),
  at: Type.String({ format: 'date-time' }),
  lifted: Type.Union([RevocationLift, Type.Null()], { description: 'the lift that ended this revocation; null while it is in force' })
})

/** Revocation ids are positive bigserials; a pattern, because path parameters are not coerced. */
export const RevocationIdParams = Type.Object({ id: Type.String({ pattern: '^[1-9][0-9]{0,14}$' }) })

export const TokenRevocationInput = Type.Object({
  jti: Type.String({ minLength: 1, maxLength: 256 }),
  reason: Type.String({ minLength: 1, maxLength: 1024 })
}, { additionalProperties: false })

export const TokenRevocation = Type.Object({
  id: Type.Number(),
  jti: Type.String(),
  reason: Type.String(),
  actor: Type.String(),
  at: Type.String({ format: 'date-time' })
})

export const AuditEntry = Type.Object({
  id: Type.Number(),
  at: Type.String({ format: 'date-time' }),
  actor: Type.String(),
  action: Type.String(),
  target: Type.String(),
  detail: Type.Record(Type.String(), Type.Unknown())
})

export const PageQuery = Type.Object({
  limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })),
  before: Type.Optional(Type.String({ pattern: '^[0-9]{1,18}$', description: 'return entries with an id lower than this (the previous page\'s nextBefore)' }))
}, { additionalProperties: false })

export const ReleasePageQuery = Type.Object({
  limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$', description: 'releases per page (default 100, at most 1000)' })),
  before: Type.Optional(Type.String({ ...VersionText, description: 'return releases with a lower version than this (the previous page\'s nextBefore)' })),
  q: Type.Optional(Type.String({ maxLength: 128, description: 'only releases whose version contains this text (case-insensitive), e.g. 1.4 or rc' }))
}, { additionalProperties: false })

export const SpecQuery = Type.Object({ version: Type.Optional(VersionText) }, { additionalProperties: false })

export const Spec = Type.Object({
  channel: Type.String(),
  version: Type.String(),
  chart: ChartRef,
  values: Values,
  metadata: Type.Record(Type.String(), Type.String())
})

export const OperatorSpec = Type.Object({
  chart: ChartRef,
  values: Values,
  metadata: Type.Record(Type.String(), Type.String())
})

export const Problem = Type.Object({
  type: Type.String(),
  title: Type.String(),
  status: Type.Number(),
  detail: Type.String(),
  code: Type.String()
})

/** An agent's apply report (POST /channels/:name/reports). */
export const ReportInput = Type.Object({
  version: VersionText,
  outcome: Type.Union([Type.Literal('applied'), Type.Literal('failed'), Type.Literal('skipped')], { description: 'applied; failed (detail: the error); skipped (detail: why the agent did not apply)' }),
  detail: Type.Optional(Type.String({ maxLength: 4096, description: 'helm\'s error text, or why the apply was skipped; at most 4,096 characters' })),
  digest: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'digest of what was applied' }))
}, { additionalProperties: false })

export const ReportAccepted = Type.Object({ accepted: Type.Literal(true) })

const Timestamp = Type.String({ format: 'date-time' })

export const LastReport = Type.Object({
  version: Type.String(),
  outcome: Type.Union([Type.Literal('applied'), Type.Literal('failed'), Type.Literal('skipped')]),
  detail: Type.Union([Type.String(), Type.Null()]),
  at: Timestamp
})

export const FleetDeployment = Type.Object({
  id: Type.String({ description: 'the license sub' }),
  channel: Type.String({ description: 'the channel it pulled last' }),
  appliedVersion: Type.Union([Type.String(), Type.Null()], { description: 'Chartcast-Applied of its last pull; null when it did not say' }),
  servedVersion: Type.Union([Type.String(), Type.Null()], { description: 'the version its last pull was given' }),
  lastSeenAt: Timestamp,
  agent: Type.Union([Type.String(), Type.Null()], { description: 'User-Agent of its last pull' }),
  stale: Type.Boolean({ description: 'not seen for longer than 3x the channel\'s poll interval (24 h without one)' }),
  lastReport: Type.Union([LastReport, Type.Null()])
})

export const DeploymentQuery = Type.Object({
  channel: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  version: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'applied version' })),
  status: Type.Optional(Type.Union([Type.Literal('ok'), Type.Literal('failed'), Type.Literal('stale')])),
  limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })),
  before: Type.Optional(Type.String({ minLength: 1, maxLength: 600, description: 'the previous page\'s nextBefore' }))
}, { additionalProperties: false })

export const DeploymentList = Type.Object({
  items: Type.Array(FleetDeployment),
  nextBefore: Type.Union([Type.String(), Type.Null()])
})

export const DeploymentReport = Type.Object({
  channel: Type.String(),
  version: Type.String(),
  outcome: Type.Union([Type.Literal('applied'), Type.Literal('failed'), Type.Literal('skipped')]),
  detail: Type.Union([Type.String(), Type.Null()]),
  digest: Type.Union([Type.String(), Type.Null()]),
  at: Timestamp
})

export const DeploymentDetail = Type.Intersect([FleetDeployment, Type.Object({ reports: Type.Array(DeploymentReport, { description: 'the 50 latest, newest first' }) })])

export const ChannelFleet = Type.Object({
  channel: Type.String(),
  total: Type.Integer(),
  stale: Type.Integer(),
  staleAfterSeconds: Type.Integer(),
  byVersion: Type.Record(Type.String(), Type.Object({
    deployments: Type.Integer({ description: 'deployments whose applied version this is ("unknown": never said)' }),
    applied: Type.Integer({ description: 'deployments whose latest report applied this version' }),
    failed: Type.Integer({ description: 'deployments whose latest report failed to apply this version' })
  }))
})
